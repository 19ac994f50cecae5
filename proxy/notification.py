"""CashNet's messages: tolerant parsing and the content checks of
docs/cashnet.md#notification-checks.

The checks themselves, in order and with what each failure does, are listed in
proxy/cashnet_checks.py.

Both the store notification (which moves money state) and the browser's sign-out data (which
never does) are parsed here. Reading the raw bytes ourselves means a wrong Content-Type, a
windows-1252 body, upper-case names or a leading `&` cannot hide a payment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import unquote_plus

from proxy import cashnet_checks
from proxy.money import parse_echoed

_INDEXED = re.compile(r"(itemcode|amount)([0-9]+)")
_ITEM_REF = re.compile(r"ref([0-9]+)type([0-9]+)")
# Payer details some stores echo: kept out of our records, we have no use for them.
_DROPPED = re.compile(r".*_g|email|addr.*|city|state|zip|acctname|cardname.*")


@dataclass(frozen=True)
class Message:
    """A parsed CashNet message: lower-case names, values decoded once."""

    fields: dict[str, str]
    conflicts: tuple[str, ...] = field(default=())

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    @property
    def result(self) -> str:
        return self.get("result")

    @property
    def succeeded(self) -> bool:
        return self.result == "0"

    @property
    def cancelled(self) -> bool:
        return self.result == "902"

    @property
    def tx(self) -> str:
        return self.get("tx")

    @property
    def failedtx(self) -> str:
        return self.get("failedtx")

    def lines(self) -> list[tuple[str, Decimal | None]]:
        """(item code, amount) for lines 1..itemcnt; an un-indexed pair is line 1."""
        numbers = {int(m.group(2)) for name in self.fields if (m := _INDEXED.fullmatch(name))}
        count = _int(self.get("itemcnt"))
        if count is None:
            count = max(numbers, default=1 if "itemcode" in self.fields else 0)
        lines = []
        for n in range(1, min(count, 99) + 1):
            code = self.fields.get(f"itemcode{n}")
            amount = self.fields.get(f"amount{n}")
            if n == 1:
                code = self.fields.get("itemcode") if code is None else code
                amount = self.fields.get("amount") if amount is None else amount
            lines.append(((code or "").strip(), parse_echoed(amount or "")))
        return lines

    def recordable(self) -> dict[str, str]:
        """The fields worth keeping in the audit trail (payer contact details left out)."""
        return {k: v for k, v in self.fields.items() if not _DROPPED.fullmatch(k)}


def parse_message(body: bytes, query: str = "") -> Message:
    """Parse a form-urlencoded body (or, when the body is empty, the query string)."""
    if not body.strip():
        body = query.encode("latin-1", "replace")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")
    fields: dict[str, str] = {}
    conflicts: list[str] = []
    for pair in text.strip().lstrip("?&").split("&"):
        if not pair.strip():
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = unquote_plus(raw_name).strip().lstrip("&?").lower()
        value = unquote_plus(raw_value)
        if not name:
            continue
        if name in fields and fields[name] != value:
            conflicts.append(name)
            continue
        fields[name] = value
    return Message(fields, tuple(sorted(set(conflicts))))


def payment_ids(message: Message, ref_type: str, txn_ref_name: str = "") -> set[str]:
    """Our payment id(s) in the message: by reference type name on any item, then the
    transaction-level name, then by position (safe only because a 128-bit id is itself
    strong evidence)."""
    ref_type = ref_type.lower()
    found = set()
    for name, value in message.fields.items():
        match = _ITEM_REF.fullmatch(name)
        if match and value.strip().lower() == ref_type:
            ref_value = message.get(f"ref{match.group(1)}val{match.group(2)}")
            if ref_value:
                found.add(ref_value)
    if not found and txn_ref_name and message.get(txn_ref_name.lower()):
        found.add(message.get(txn_ref_name.lower()))
    if not found:
        for slot in ("ref1val1", "ref1val2"):
            if message.get(slot):
                found.add(message.get(slot))
                break
    return found


@dataclass(frozen=True)
class StoredLine:
    item_code: str
    amount: Decimal


def line_mismatch(message: Message, stored: list[StoredLine], custcode: str) -> str:
    """Why the echoed lines differ from the hand-off we stored, or "" when they agree: the
    first failing attention check of proxy/cashnet_checks.py."""
    return cashnet_checks.echo_mismatch(cashnet_checks.Echo(message, stored, custcode))


def _int(text: str) -> int | None:
    # isdigit() alone accepts '²', which int() refuses.
    return int(text) if text.isascii() and text.isdigit() else None
