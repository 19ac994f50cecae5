"""The CashNet hand-off form: lines per item code, exact fields and amounts."""

from decimal import Decimal

import pytest

from proxy.allocation import Allocation
from proxy.checkout import Payer, TooManyLines, ascii_text, build_checkout, build_lines

CODES = {"OVERDUEFINE": "LIB-OVERDUE", "LOSTITEMREPLACEMENTFEE": "LIB-LOST"}
LABELS = {"OVERDUEFINE": "Overdue fine", "LOSTITEMREPLACEMENTFEE": "Lost item replacement fee",
          "LOCKERKEY": "Locker key", "CARDRENEWAL": "Card renewal"}


def code_for(fee_type):
    return CODES.get(fee_type, "LIB-FINE")


def test_one_line_per_item_code_carrying_the_sum_of_its_fees():
    lines = build_lines([
        Allocation("1", "LOSTITEMREPLACEMENTFEE", Decimal("1080.00")),
        Allocation("2", "OVERDUEFINE", Decimal("4.75")),
        Allocation("3", "LOCKERKEY", Decimal("25.00")),
        Allocation("4", "OVERDUEFINE", Decimal("7.75")),
        Allocation("5", "CARDRENEWAL", Decimal("10.00")),
    ], code_for, LABELS, 9)
    assert [(ln.number, ln.item_code, ln.amount, ln.description) for ln in lines] == [
        (1, "LIB-LOST", Decimal("1080.00"), "Lost item replacement fee"),
        (2, "LIB-OVERDUE", Decimal("12.50"), "Overdue fine"),
        (3, "LIB-FINE", Decimal("35.00"), "Locker key, Card renewal"),
    ]


def test_too_many_item_codes_is_refused():
    allocations = [Allocation(str(i), f"TYPE{i}", Decimal("1.00")) for i in range(3)]
    with pytest.raises(TooManyLines):
        build_lines(allocations, lambda t: t, {}, 2)


def test_checkout_fields_exactly():
    lines = build_lines([Allocation("1", "LOSTITEMREPLACEMENTFEE", Decimal("1080")),
                         Allocation("2", "OVERDUEFINE", Decimal("12.5"))], code_for, LABELS, 9)
    checkout = build_checkout(
        action="https://train.cashnet.com/LIBFINESTEST", payment_id="9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9",
        lines=lines, payer=Payer("ana.rivera@example.edu", "Ána", "Rivera-Müller", "ana.rivera@example.edu"),
        return_url="https://fines.example.edu/cashnet/return", ref_type="PAYMENT_ID")
    assert checkout.to_json() == {
        "action": "https://train.cashnet.com/LIBFINESTEST",
        "method": "POST",
        "fields": {
            "itemcnt": "2",
            "itemcode1": "LIB-LOST", "amount1": "1080.00", "desc1": "Lost item replacement fee", "qty1": "1",
            "itemcode2": "LIB-OVERDUE", "amount2": "12.50", "desc2": "Overdue fine", "qty2": "1",
            "custcode": "ana.rivera@example.edu", "fname": "Ana", "lname": "Rivera-Muller",
            "email": "ana.rivera@example.edu",
            "signouturl": "https://fines.example.edu/cashnet/return?p=9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9",
            "ref1type1": "PAYMENT_ID", "ref1val1": "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9",
        },
    }


def test_transaction_level_reference_when_configured():
    lines = build_lines([Allocation("1", "OVERDUEFINE", Decimal("1"))], code_for, LABELS, 9)
    checkout = build_checkout(action="https://x", payment_id="abc", lines=lines,
                              payer=Payer("p", "", "", ""), return_url="https://r/cashnet/return",
                              ref_type="PAYMENT_ID", txn_ref_name="PAYMENT_REF")
    fields = dict(checkout.fields)
    assert fields["PAYMENT_REF"] == "abc"
    assert "email" not in fields


def test_ascii_text_transliterates_and_limits():
    assert ascii_text("Zoë  Ñúñez\tO'Brien") == "Zoe Nunez O'Brien"
    assert ascii_text("x" * 300) == "x" * 255
    assert ascii_text("李小龍") == ""
