"""Choosing fees and amounts, and spreading a payment over fees oldest first
(docs/architecture.md#money-and-allocation)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.allocation import PaymentRequestError, allocate, choose_amount, choose_fees
from proxy.fees import FeeRules, normalise_fees

D = Decimal


def alma_fee(fee_id, balance, created, fee_type="OVERDUEFINE", status="ACTIVE", owner="MAIN"):
    return {"id": fee_id, "type": {"value": fee_type, "desc": fee_type.title()},
            "status": {"value": status, "desc": status.title()}, "balance": D(balance),
            "original_amount": D(balance), "creation_time": created,
            "owner": {"value": owner, "desc": owner.title()}, "title": None}


FEES = normalise_fees({"fee": [
    alma_fee("7730012450004146", "4.75", "2025-01-21T15:02:11.420Z"),
    alma_fee("7730018830004146", "60", "2024-11-04T10:40:00.000Z", "LOSTITEMREPLACEMENTFEE"),
    alma_fee("7730020010004146", "12.50", "2025-03-02T09:15:00.000Z", "DAMAGEDITEMFINE", owner="LAW"),
    alma_fee("7730040010004146", "-5.00", "2025-02-01T10:00:00.000Z", "CREDIT"),
], "total_sum": D("72.25"), "currency": "USD"}, FeeRules(), "USD")


def test_fees_are_ordered_oldest_first_and_credits_are_not_payable():
    assert [f.id for f in FEES.fees] == ["7730018830004146", "7730012450004146",
                                         "7730040010004146", "7730020010004146"]
    assert [f.id for f in FEES.payable] == ["7730018830004146", "7730012450004146",
                                            "7730020010004146"]
    assert FEES.payable_total == D("77.25")
    assert FEES.total == D("72.25")


def test_partial_payment_spreads_oldest_first():
    chosen = choose_fees(FEES, None)
    amount = choose_amount(chosen, "62.00", D("1.00"))
    assert [(a.fee_id, a.amount) for a in allocate(chosen, amount)] == [
        ("7730018830004146", D("60.00")), ("7730012450004146", D("2.00"))]


def test_chosen_fees_only_and_whole_total_by_default():
    chosen = choose_fees(FEES, ["7730020010004146", "7730012450004146"])
    amount = choose_amount(chosen, None, D("1.00"))
    assert amount == D("17.25")
    assert [(a.fee_id, a.amount) for a in allocate(chosen, amount)] == [
        ("7730012450004146", D("4.75")), ("7730020010004146", D("12.50"))]


@pytest.mark.parametrize("fee_ids, code", [
    ([], "no_fees_chosen"), (["nope"], "unknown_fee"), (["7730040010004146"], "unknown_fee"),
    (["7730012450004146", "7730012450004146"], "duplicate_fee_ids"), ("7730012450004146", "invalid_fee_ids"),
    ([7730012450004146], "invalid_fee_ids"),
])
def test_bad_fee_choices(fee_ids, code):
    with pytest.raises(PaymentRequestError) as caught:
        choose_fees(FEES, fee_ids)
    assert caught.value.code == code


@pytest.mark.parametrize("amount, code", [
    ("0.99", "amount_too_small"), ("0", "amount_too_small"), ("0.00", "amount_too_small"),
    ("77.26", "amount_too_large"), ("-1", "invalid_amount"), ("1.001", "invalid_amount"),
    ("ten", "invalid_amount"), (10, "invalid_amount"), (D("10.5"), "invalid_amount"),
])
def test_bad_amounts(amount, code):
    chosen = choose_fees(FEES, None)
    with pytest.raises(PaymentRequestError) as caught:
        choose_amount(chosen, amount, D("1.00"))
    assert (caught.value.code, caught.value.field) == (code, "amount")


def test_minimum_is_the_whole_total_when_that_is_smaller():
    small = normalise_fees({"fee": [alma_fee("1", "0.50", "2025-01-01T00:00:00.000Z")]},
                           FeeRules(), "USD")
    chosen = choose_fees(small, None)
    assert choose_amount(chosen, "0.50", D("1.00")) == D("0.50")
    with pytest.raises(PaymentRequestError):
        choose_amount(chosen, "0.49", D("1.00"))


def test_nothing_payable():
    with pytest.raises(PaymentRequestError) as caught:
        choose_fees(normalise_fees({"total_record_count": 0, "total_sum": 0, "currency": None},
                                   FeeRules(), "USD"), None)
    assert caught.value.code == "nothing_to_pay"


def test_rules_limit_types_and_libraries():
    rules = FeeRules.from_lists(["overduefine", "DAMAGEDITEMFINE"], ["MAIN"])
    fees = normalise_fees({"fee": [
        alma_fee("1", "1.00", "2025-01-01T00:00:00.000Z"),
        alma_fee("2", "2.00", "2025-01-02T00:00:00.000Z", owner="LAW"),
        alma_fee("3", "3.00", "2025-01-03T00:00:00.000Z", "LOCKERKEY"),
        alma_fee("4", "4.00", "2025-01-04T00:00:00.000Z", status="INDISPUTE"),
    ]}, rules, "USD")
    assert [f.id for f in fees.payable] == ["1"]


balances = st.lists(st.integers(min_value=1, max_value=500_000), min_size=1, max_size=9)


@given(balances, st.data())
def test_allocation_properties(cents_list, data):
    raw = [alma_fee(str(1000 + i), D(c) / 100, f"2025-01-{1 + (i * 7) % 28:02d}T00:00:00.000Z")
           for i, c in enumerate(cents_list)]
    fees = normalise_fees({"fee": raw}, FeeRules(), "USD")
    chosen = choose_fees(fees, None)
    total = sum(cents_list)
    amount_cents = data.draw(st.integers(min_value=min(100, total), max_value=total))
    amount = choose_amount(chosen, f"{amount_cents // 100}.{amount_cents % 100:02d}", D("1.00"))
    result = allocate(chosen, amount)
    by_id = {f.id: f for f in chosen}
    assert sum(a.amount for a in result) == amount
    assert all(D("0") < a.amount <= by_id[a.fee_id].balance for a in result)
    # Oldest first: every fee but the last allocated one is paid in full.
    assert all(a.amount == by_id[a.fee_id].balance for a in result[:-1])
    order = [f.id for f in chosen]
    assert [a.fee_id for a in result] == order[:len(result)]
