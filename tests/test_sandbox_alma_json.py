"""The emulator's Decimal JSON writer, and in-process corner cases of the emulator."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.alma import ConnectionDropped, create_app
from sandbox.alma_faults import FaultSettings, Gate
from sandbox.alma_json import dumps, format_decimal


@pytest.mark.parametrize(("value", "mixed", "floaty"), [
    (Decimal("60.00"), "60", "60.0"),
    (Decimal("0.00"), "0", "0.0"),
    (Decimal("-0.00"), "0", "0.0"),
    (Decimal("4.50"), "4.5", "4.5"),
    (Decimal("4.75"), "4.75", "4.75"),
    (Decimal("-5.00"), "-5", "-5.0"),
    (Decimal("1250.00"), "1250", "1250.0"),
    (Decimal("6E+1"), "60", "60.0"),
    (Decimal("0.01"), "0.01", "0.01"),
])
def test_format_decimal(value: Decimal, mixed: str, floaty: str) -> None:
    assert format_decimal(value, "mixed") == mixed
    assert format_decimal(value, "float") == floaty


def test_dumps_writes_documents_and_refuses_float() -> None:
    document = {"a": [Decimal("1.10"), 2, None, True, False, "é\"x"], "b": {}}
    assert dumps(document) == '{"a":[1.1,2,null,true,false,"\\u00e9\\"x"],"b":{}}'
    with pytest.raises(TypeError):
        dumps({"amount": 4.75})
    with pytest.raises(ValueError):
        dumps(Decimal("NaN"))


@given(cents=st.integers(min_value=-10**9, max_value=10**9),
       style=st.sampled_from(["mixed", "float"]))
def test_written_amounts_read_back_exactly(cents: int, style: str) -> None:
    amount = Decimal(cents).scaleb(-2)
    text = dumps({"balance": amount}, style)
    assert json.loads(text, parse_float=Decimal)["balance"] == amount
    number = text.removeprefix('{"balance":').removesuffix("}")
    assert "e" not in number.lower()
    assert ("." in number) == (style == "float" or cents % 100 != 0)
    assert not number.endswith("0") or number.endswith(".0") or "." not in number


def test_throttled_request_does_not_consume_a_rule() -> None:
    gate = Gate(FaultSettings.parse({
        "per_second_limit": 0, "rules": [{"match": {"path": "*"}, "mode": "drop", "next": 1}]}))
    assert gate.admit("GET", "/almaws/v1/users/x", throttled=True).fault == "per_second_limit"
    assert gate.settings.rules[0].remaining == 1
    verdict = gate.admit("GET", "/auth/X/jwks.json", throttled=False)
    assert (verdict.fault, gate.settings.rules[0].remaining) == ("drop", 0)
    assert gate.admit("GET", "/auth/X/jwks.json", throttled=False).fault is None


def test_drop_without_a_socket_raises_in_process() -> None:
    app = create_app()
    app.state.alma.set_faults({"rules": [{"match": {"path": "*"}, "mode": "drop"}]})

    async def call() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://alma.test") as http:
            await http.get("/almaws/v1/users/mkowalski/fees")

    with pytest.raises(ConnectionDropped):
        asyncio.run(call())
    assert [e["fault"] for e in app.state.alma.requests()] == ["drop"]


def test_seed_copies_are_independent() -> None:
    first, second = create_app(), create_app()
    first.state.alma.add_fee("pchen", {"type": "OTHER", "original_amount": "1", "owner": "MAIN"})
    assert len(first.state.alma.user_state("pchen")["fees"]) == 1
    assert second.state.alma.user_state("pchen")["fees"] == []
