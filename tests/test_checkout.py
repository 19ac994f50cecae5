"""The CashNet hand-off form: lines per item code, exact fields and amounts."""

from decimal import Decimal

import pytest

from proxy.allocation import Allocation
from proxy.checkout import (
    Payer,
    TooManyLines,
    ascii_text,
    build_checkout,
    build_lines,
    custcode_for,
    item_code_for,
    line_libraries,
    parse_custcode_choice,
    parse_item_code_rules,
)

CODES = {"OVERDUEFINE": "LIB-OVERDUE", "LOSTITEMREPLACEMENTFEE": "LIB-LOST"}
LABELS = {"OVERDUEFINE": "Overdue fine", "LOSTITEMREPLACEMENTFEE": "Lost item replacement fee",
          "LOCKERKEY": "Locker key", "CARDRENEWAL": "Card renewal"}


def code_for(fee_type, library=""):
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
        build_lines(allocations, lambda t, library: t, {}, 2)


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


RULES = parse_item_code_rules({"LAW/*": "LAW-FINES", "LAW/LOSTITEMREPLACEMENTFEE": "LAW-LOST",
                               "LOSTITEMREPLACEMENTFEE": "LIB-LOST", "overduefine": "LIB-OVERDUE"})


@pytest.mark.parametrize("fee_type, library, code", [
    ("LOSTITEMREPLACEMENTFEE", "LAW", "LAW-LOST"),  # library and type
    ("OVERDUEFINE", "LAW", "LAW-FINES"),  # the library's own code beats the type's
    ("OVERDUEFINE", "law", "LAW-FINES"),
    ("LOSTITEMREPLACEMENTFEE", "MAIN", "LIB-LOST"),  # the type
    ("OverdueFine", "SCI", "LIB-OVERDUE"),
    ("LOCKERKEY", "MAIN", "LIB-FINE"),  # the default
    ("LOCKERKEY", "", "LIB-FINE"),  # no owner: never a library's code
])
def test_the_most_specific_item_code_wins(fee_type, library, code):
    assert item_code_for(RULES, "LIB-FINE", fee_type, library) == code


@pytest.mark.parametrize("key", ["*", "*/OVERDUEFINE", "LAW/", "/OVERDUEFINE", "A/B/C", "LAW FINES"])
def test_item_code_rules_of_another_shape_are_refused(key):
    with pytest.raises(ValueError, match="FEETYPE"):
        parse_item_code_rules({key: "X"})


def test_a_law_library_fee_gets_a_line_of_its_own_and_lines_know_their_libraries():
    owners = {"1": "MAIN", "2": "SCI", "3": "LAW"}
    lines = build_lines([
        Allocation("1", "OVERDUEFINE", Decimal("4.00")),
        Allocation("2", "OVERDUEFINE", Decimal("0.75")),
        Allocation("3", "OVERDUEFINE", Decimal("12.50")),
    ], lambda t, library: item_code_for(RULES, "LIB-FINE", t, library), LABELS, 9, owners,
        {"LAW-FINES": "1-2345-LAW"})
    assert [(ln.item_code, ln.amount, ln.gl) for ln in lines] == [
        ("LIB-OVERDUE", Decimal("4.75"), ""), ("LAW-FINES", Decimal("12.50"), "1-2345-LAW")]
    assert line_libraries(lines) == {"1": {"MAIN": "4.00", "SCI": "0.75"}, "2": {"LAW": "12.50"}}
    fields = build_checkout(action="https://x", payment_id="abc", lines=lines,
                            payer=Payer("p", "", "", ""), return_url="https://r/cashnet/return",
                            ref_type="PAYMENT_ID").fields
    assert [name for name, _ in fields if name.startswith("gl")] == ["gl2"]
    assert dict(fields)["gl2"] == "1-2345-LAW"


USER = {"primary_id": "MKOWALSKI@EXAMPLE.EDU", "user_identifier": [
    {"id_type": {"value": "BARCODE"}, "value": "23191000105866", "status": "ACTIVE"},
    {"id_type": {"value": "UNIV_ID"}, "value": "900000001", "status": "INACTIVE"},
    {"id_type": {"value": "UNIV_ID"}, "value": "900123456", "status": "ACTIVE"}]}


def test_the_custcode_is_the_primary_id_an_identifier_or_nothing():
    assert custcode_for("primary_id", "MKOWALSKI@EXAMPLE.EDU") == "MKOWALSKI@EXAMPLE.EDU"
    assert custcode_for("UNIV_ID", "MKOWALSKI@EXAMPLE.EDU", USER) == "900123456"
    assert custcode_for("OTHER_ID", "mk", USER) == "mk"  # no such identifier: the primary id
    assert custcode_for("none", "mk", USER) == ""
    assert [parse_custcode_choice(v) for v in ("Primary_ID", "NONE", "univ_id")] == [
        "primary_id", "none", "UNIV_ID"]
    with pytest.raises(ValueError):
        parse_custcode_choice("univ id; drop")


def test_custcode_none_is_not_sent():
    lines = build_lines([Allocation("1", "OVERDUEFINE", Decimal("1"))], code_for, LABELS, 9)
    checkout = build_checkout(action="https://x", payment_id="abc", lines=lines,
                              payer=Payer("p", "", "", ""), return_url="https://r/cashnet/return",
                              ref_type="PAYMENT_ID", custcode="")
    assert "custcode" not in dict(checkout.fields)
