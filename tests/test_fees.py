"""A patron's fees as patronpay reads them from Alma (proxy/fees.py, proxy/credits.py): credits
and what they do to the charge, fees it cannot take (institution-level, sent to the bursar, not
exact cents), and dates of the old API (issue 12, items 8 to 10)."""

from decimal import Decimal

import pytest

from proxy.allocation import PaymentRequestError, allocate, choose_amount, choose_fees
from proxy.credits import CreditPolicy, charge_for, credit_taken_off, parse_credit_policy
from proxy.fees import FeeRules, alma_timestamp, normalise_fees

D = Decimal
INST = "01PATRON_INST"


def fee(fee_id, balance, created, fee_type="OVERDUEFINE", status="ACTIVE", owner="MAIN"):
    raw = {"id": fee_id, "type": {"value": fee_type, "desc": fee_type.title()},
           "status": {"value": status, "desc": status.title()}, "balance": balance,
           "original_amount": balance, "creation_time": created}
    if owner is not None:
        raw["owner"] = {"value": owner, "desc": owner.title()}
    return raw


RAW = {"fee": [
    fee("1", D("9.0"), "2025-02-10T14:20:00.000Z"),
    fee("2", D("-4.0"), "2025-03-01T10:00:00.000Z", "CREDIT"),
    fee("3", D("2.125"), "2025-03-20T09:30:00.000Z", "OTHER"),
    fee("4", D("5.0"), "2025-04-01T08:00:00.000Z", "CARDRENEWAL", owner=INST),
    fee("5", D("3.5"), "2025-04-15T16:45:00.000Z", "LOCKERKEY", owner=None),
], "total_sum": D("15.625"), "currency": "USD"}
BILLED = {"fee": [fee("6", D("45.0"), "2024-12-02T11:00:00.000Z", "LOSTITEMREPLACEMENTFEE",
                      status="EXPORTED", owner="SCI")], "currency": "USD"}


def test_what_is_owed_the_credit_and_the_fees_in_no_total():
    fees = normalise_fees(RAW, FeeRules(), "USD")
    assert [f.id for f in fees.fees] == ["1", "2", "4", "5"]
    assert [f.id for f in fees.inexact] == ["3"]
    assert (fees.owed_total, fees.credit_total, fees.payable_total, fees.total) == (
        D("17.50"), D("4.00"), D("17.50"), D("13.50"))
    body = fees.to_json("USD")
    assert {k: body[k] for k in ("owed_total", "credit_total", "credit_policy", "charge_total",
                                 "inexact_count")} == {
        "owed_total": "17.50", "credit_total": "4.00", "credit_policy": "show",
        "charge_total": "17.50", "inexact_count": 1}
    assert [(f["id"], f["note"], f["balance"]) for f in body["fees"]] == [
        ("1", None, "9.00"), ("2", "credit", "-4.00"), ("3", "inexact", None),
        ("4", None, "5.00"), ("5", None, "3.50")]
    assert fees.to_json("USD", CreditPolicy.NET)["charge_total"] == "13.50"


def test_fees_sent_to_the_bursar_are_billed_never_payable_and_in_no_total():
    fees = normalise_fees(RAW, FeeRules(), "USD").with_billed(
        normalise_fees(BILLED, FeeRules(), "USD"))
    assert [f.id for f in fees.fees] == ["6", "1", "2", "4", "5"]
    billed = fees.by_id()["6"]
    assert (billed.payable, billed.note, billed.status) == (False, "billed", "EXPORTED")
    assert (fees.owed_total, fees.total, fees.payable_total) == (D("17.50"), D("13.50"), D("17.50"))


@pytest.mark.parametrize("libraries, institution, payable", [
    ([], "", ["1", "4", "5"]),                     # every library, the institution's too
    (["MAIN", "SCI"], INST, ["1"]),                # libraries only
    (["MAIN", INST], "", ["1", "4"]),              # owned by the code; no owner: unknown
    (["MAIN", INST], INST, ["1", "4", "5"]),       # no owner is the institution's
    ([INST], INST, ["4", "5"]),
])
def test_institution_level_fees_are_taken_when_the_list_names_the_institution(
        libraries, institution, payable):
    rules = FeeRules.from_lists([], libraries, institution)
    fees = normalise_fees(RAW, rules, "USD")
    assert [f.id for f in fees.payable] == payable
    assert {f.id: f.note for f in fees.fees if not f.payable and f.balance > 0} == {
        fee_id: "not_payable" for fee_id in {"1", "4", "5"} - set(payable)}


def test_the_credit_policy():
    assert [parse_credit_policy(v) for v in ("show", " NET ")] == [CreditPolicy.SHOW,
                                                                    CreditPolicy.NET]
    with pytest.raises(ValueError, match="show or net"):
        parse_credit_policy("deduct")
    assert charge_for(CreditPolicy.SHOW, D("4.00"), D("17.50")) == D("17.50")
    assert charge_for(CreditPolicy.NET, D("4.00"), D("17.50")) == D("13.50")
    assert charge_for(CreditPolicy.NET, D("40.00"), D("17.50")) == D("0.00")  # never a refund
    assert credit_taken_off(CreditPolicy.NET, D("0.00"), D("17.50")) == D("0.00")


def test_net_charges_less_and_spreads_it_over_fees_never_over_the_credit():
    fees = normalise_fees(RAW, FeeRules(), "USD")
    chosen = choose_fees(fees, None)
    credit = credit_taken_off(CreditPolicy.NET, fees.credit_total, D("17.50"))
    amount = choose_amount(chosen, None, D("1.00"), credit)
    assert amount == D("13.50")
    shares = allocate(chosen, amount)
    assert [(a.fee_id, a.amount) for a in shares] == [("1", D("9.00")), ("4", D("4.50"))]
    left_open = sum(f.balance for f in chosen) - sum(a.amount for a in shares)
    assert left_open == fees.credit_total  # exactly what the credit covers, left in Alma
    with pytest.raises(PaymentRequestError) as too_much:
        choose_amount(chosen, "13.51", D("1.00"), credit)
    assert too_much.value.code == "amount_too_large"
    locker = choose_fees(fees, ["5"])
    with pytest.raises(PaymentRequestError) as covered:
        choose_amount(locker, None, D("1.00"),
                      credit_taken_off(CreditPolicy.NET, fees.credit_total, D("3.50")))
    assert covered.value.code == "credit_covers"


@pytest.mark.parametrize("value, shown", [
    (1447174746987, "2015-11-10T16:59:06.987Z"),
    ("1447174746987", "2015-11-10T16:59:06.987Z"),
    (D("1739197200000"), "2025-02-10T14:20:00.000Z"),
    ("2025-01-21T15:02:11.420Z", "2025-01-21T15:02:11.420Z"),
    (None, ""), (True, ""), (-5, ""), (99999999999999999, ""),
])
def test_old_api_epoch_milliseconds_become_dates(value, shown):
    assert alma_timestamp(value) == shown


def test_epoch_dates_sort_with_iso_ones():
    fees = normalise_fees({"fee": [fee("1", D("1"), "2025-01-01T00:00:00.000Z"),
                                   fee("2", D("1"), 1447174746987)]}, FeeRules(), "USD")
    assert [(f.id, f.created[:10]) for f in fees.fees] == [("2", "2015-11-10"), ("1", "2025-01-01")]
