"""Reading what landed in the sandbox Alma."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def payments_carrying(alma: Any, tx: str, patron: str = "mkowalski") -> dict[str, list[Decimal]]:
    """{fee id: amounts of the PAYMENT transactions carrying CashNet's transaction number
    `tx`} in the sandbox Alma (`alma` is its in-process state), for the patron's fees that
    have any. The proxy only ever pays, so the number on any other kind of transaction fails
    the test."""
    found: dict[str, list[Decimal]] = {}
    for fee in alma.user_state(patron)["fees"]:
        carrying = [t for t in fee.get("transactions", [])
                    if t.get("external_transaction_id") == tx]
        assert all(t.get("type") == "PAYMENT" for t in carrying), (fee["id"], carrying)
        if carrying:
            found[fee["id"]] = [t["amount"] for t in carrying]
    return found
