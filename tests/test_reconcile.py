"""`patronpay reconcile`: per payment, does Alma show exactly what the ledger says? Run against
the sandbox Alma with mismatches made on purpose; it reads, it never writes."""

import asyncio
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from patronpay.cli import main
from patronpay.demo import sandbox_environment
from proxy.posting import PostingWorker
from proxy.reconcile import reconcile
from proxy.runtime import alma_client, posting_policy
from proxy.staff import day_start
from sandbox.app import ALMA_API_KEY

D = Decimal
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"


def today() -> date:
    """Read when used, not at import: a run may cross midnight UTC."""
    return datetime.now(UTC).date()


@pytest.fixture
def cli(monkeypatch, capsys):
    def run(d, *argv):
        for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
            monkeypatch.delenv(name)
        env = sandbox_environment(d.settings.public_url, d.sandbox.url, d.settings.database,
                                  d.settings.cashnet_postback_token)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def window_of_today() -> tuple[float, float]:
    return day_start(today()), day_start(today() + timedelta(days=1))


def check(d, since=None, until=None):
    if since is None and until is None:
        since, until = window_of_today()

    async def go():
        alma = alma_client(d.settings)
        try:
            return await reconcile(d.ledger, alma, since=since, until=until)
        finally:
            await alma.aclose()

    return asyncio.run(go())


def drain(d):
    """One posting round by a worker of our own (the deployment runs none)."""
    async def go():
        alma = alma_client(d.settings)
        try:
            await PostingWorker(d.ledger, alma, posting_policy(d.settings)).drain()
        finally:
            await alma.aclose()

    asyncio.run(go())


def paid(d, patron="mkowalski", **body):
    client = d.sign_in_sso(patron)
    created, completion = d.pay(client, **body)
    return created["payment"]["id"], completion["tx"]


def pay_in_alma_directly(d, patron, fee_id, amount, tx):
    """Someone posts to Alma behind patronpay's back, with the same external id."""
    response = httpx.post(
        f"{d.settings.alma_api_url}/users/{patron}/fees/{fee_id}",
        params={"op": "pay", "amount": amount, "method": "ONLINE",
                "external_transaction_id": tx},
        headers={"Authorization": f"apikey {ALMA_API_KEY}", "Accept": "application/json"})
    assert response.status_code == 200, response.text


def test_everything_posted_matches_to_the_cent(deploy, cli):
    d = deploy()
    first, first_tx = paid(d, amount="62.00")
    second, second_tx = paid(d, patron="tlee", amount="100.00")
    d.wait_for_state(first, "posted")
    d.wait_for_state(second, "posted")
    since, until = window_of_today()
    report = check(d, since, until)
    tlee_fee = d.ledger.payment(second).allocations[0].fee_id
    assert report.to_json() == {
        "since": datetime.fromtimestamp(since, UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "until": datetime.fromtimestamp(until, UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "patrons": 2, "alma_calls": 4, "counts": {"ok": 2}, "needs_staff": False,
        "payments": [
            {**_head(d, first), "status": "ok", "alma_total": "62.00", "problems": [],
             "advice": [], "fees": [_fee(LOST, "60.00"), _fee(OVERDUE, "2.00")]},
            {**_head(d, second), "status": "ok", "alma_total": "100.00", "problems": [],
             "advice": [], "fees": [_fee(tlee_fee, "100.00")]}]}
    code, out, err = cli(d, "reconcile", "--since", today().isoformat())
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == [
        f"Reconciliation of payments created {today()} to now (UTC)",
        "2 payment(s) of 2 patron(s) checked against Alma (4 Alma calls)."]
    assert lines[3].split() == ["CREATED", "(UTC)", "PAYMENT", "PATRON", "CASHNET", "TX",
                                "STATE", "AMOUNT", "POSTED", "IN", "ALMA", "RESULT"]
    assert lines[4].split()[2:] == [first, "mkowalski", first_tx, "posted", "62.00", "62.00",
                                    "62.00", "ok"]
    assert lines[5].split()[2:] == [second, "tlee", second_tx, "posted", "100.00", "100.00",
                                    "100.00", "ok"]
    assert lines[6:] == ["", "ok 2"]


def _head(d, payment_id):
    p = d.ledger.payment(payment_id)
    return {"id": p.id, "patron_id": p.patron_id, "cashnet_tx": p.cashnet_tx,
            "created_at": datetime.fromtimestamp(p.created_at, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "state": p.state, "amount": f"{p.amount:.2f}", "ledger_applied": f"{p.applied:.2f}"}


def _fee(fee_id, amount, alma=None, count=1, alma_count=None, in_progress=False):
    return {"fee_id": fee_id, "ledger": amount, "ledger_postings": count,
            "alma": alma or amount, "alma_transactions": count if alma_count is None else alma_count,
            "in_progress": in_progress}


def test_a_double_posting_in_alma_is_a_mismatch_with_what_to_do(deploy, cli):
    d = deploy()
    payment_id, tx = paid(d, amount="62.00")
    d.wait_for_state(payment_id, "posted")
    pay_in_alma_directly(d, "mkowalski", OVERDUE, "2.00", tx)
    report = check(d)
    finding = report.findings[0]
    assert (finding.status, report.needs_staff) == ("mismatch", True)
    assert [f.to_json() for f in finding.fees] == [
        _fee(LOST, "60.00"), _fee(OVERDUE, "2.00", alma="4.00", alma_count=2)]
    assert finding.problems == [
        f"Alma shows 4.00 in 2 PAYMENT transaction(s) carrying {tx} on fee {OVERDUE}; "
        "patronpay posted 2.00 in 1"]
    assert finding.advice == [
        f"Posted more than once: reverse the extra 2.00 on fee {OVERDUE} in Alma (the PAYMENT "
        f"transactions carrying {tx}), so the patron is not credited twice."]
    code, out, _ = cli(d, "reconcile", "--since", today().isoformat(), "--until",
                       today().isoformat())
    assert code == 1
    assert out.splitlines()[-6:] == [
        "mismatch 1", "", "Needs staff:",
        f"- {payment_id} (mkowalski, CashNet {tx}): mismatch",
        f"    {finding.problems[0]}",
        f"    what to do: {finding.advice[0]}"]


def test_a_posting_alma_does_not_show_is_a_mismatch(deploy):
    d = deploy(run_worker=False)
    payment_id, tx = paid(d, amount="62.00")
    payment = d.wait_for_state(payment_id, "paid")
    # The ledger believes both fees were posted; Alma never got them (reversed there, say).
    for allocation in payment.allocations:
        d.ledger.mark_posted(allocation.id, "applied")
    d.ledger.settle_if_done(payment_id)
    finding = check(d).findings[0]
    assert finding.status == "mismatch"
    assert finding.problems == [
        f"Alma shows 0.00 in 0 PAYMENT transaction(s) carrying {tx} on fee {LOST}; "
        "patronpay posted 60.00 in 1",
        f"Alma shows 0.00 in 0 PAYMENT transaction(s) carrying {tx} on fee {OVERDUE}; "
        "patronpay posted 2.00 in 1"]
    assert finding.advice[1] == (
        f"patronpay posted 2.00 to fee {OVERDUE} that Alma does not show (reversed or deleted "
        f"in Alma?): if the payment stands, pay 2.00 on fee {OVERDUE} in Alma with external "
        f"transaction id {tx}.")


def test_money_alma_has_but_the_ledger_holds_as_unapplied_is_fixed_by_retry(deploy, cli):
    d = deploy(run_worker=False)
    payment_id, tx = paid(d, amount="62.00")
    payment = d.wait_for_state(payment_id, "paid")
    # The worker gave up on both fees (an outage), but the last payment call to OVERDUE had
    # reached Alma after all.
    for allocation in payment.allocations:
        d.ledger.mark_failed(allocation.id, "gave up: Alma could not be reached")
    d.ledger.settle_if_done(payment_id)
    pay_in_alma_directly(d, "mkowalski", OVERDUE, "2.00", tx)
    finding = check(d).findings[0]
    assert finding.status == "mismatch"
    assert finding.advice == [
        f"Alma already has 2.00 on fee {OVERDUE} that patronpay holds as not applied: "
        f"`patronpay payments retry {payment_id}` finds it in Alma and records it."]
    assert cli(d, "payments", "retry", payment_id)[0] == 0
    drain(d)
    payment = d.ledger.payment(payment_id)
    assert payment.state == "posted"
    assert [(a.fee_id, a.outcome) for a in payment.allocations] == [
        (LOST, "applied"), (OVERDUE, "found in Alma")]
    assert check(d).counts() == {"ok": 1}


def test_in_progress_attention_review_and_unconfirmed_payments(deploy):
    d = deploy(run_worker=False)
    posting_id, _ = paid(d, amount="62.00")            # paid, the worker has not run yet
    d.wait_for_state(posting_id, "paid")
    attention_id, _ = paid(d, patron="tlee", faults={"tamper_amount": "+1.00"})
    d.wait_for_state(attention_id, "attention")
    client = d.sign_in_sso("dokafor")
    created = d.start_payment(client)
    unconfirmed = created["payment"]["id"]
    completion = d.cashnet.complete(d.hand_off(created["checkout"]), faults={"drop": True})
    d.follow_signout(completion)  # the browser says success; CashNet never notified us
    quiet_id = d.start_payment(d.sign_in_sso("ana.rivera@example.edu"))["payment"]["id"]
    report = check(d)
    by_id = {f.payment.id: f for f in report.findings}
    assert quiet_id not in by_id  # pending, no claim: nothing to reconcile yet
    assert {pid: f.status for pid, f in by_id.items()} == {
        posting_id: "posting", attention_id: "attention", unconfirmed: "check_cashnet"}
    assert by_id[posting_id].fees[0].in_progress is True
    assert by_id[attention_id].advice == [
        f"{d.ledger.payment(attention_id).reason} (see `patronpay payments show "
        f"{attention_id}`)"]
    assert by_id[unconfirmed].problems == [
        "the patron's browser returned from CashNet with success, but no CashNet notification "
        "arrived"]
    assert by_id[unconfirmed].advice[0].startswith(
        f"Look the payment up in CashNet (reference {unconfirmed}).")
    assert report.counts() == {"posting": 1, "attention": 1, "check_cashnet": 1}
    assert report.patrons == 3


def test_alma_unreachable_is_reported_not_guessed(deploy):
    d = deploy()
    payment_id, _ = paid(d, amount="62.00")
    d.wait_for_state(payment_id, "posted")
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "/almaws/*"},
                                  "mode": "drop"}]})
    finding = check(d).findings[0]
    assert finding.status == "unreadable"
    assert finding.problems == [
        "Alma could not be read for mkowalski: Alma could not be reached: RemoteProtocolError"]
    assert finding.advice == ["Run the reconciliation again later."]


def test_a_window_before_the_payments_finds_nothing(deploy, cli):
    d = deploy()
    payment_id, _ = paid(d)
    d.wait_for_state(payment_id, "posted")
    yesterday = (today() - timedelta(days=1)).isoformat()
    assert cli(d, "reconcile", "--since", yesterday, "--until", yesterday) == (0, "\n".join([
        f"Reconciliation of payments created {yesterday} to {yesterday} (UTC)",
        "0 payment(s) of 0 patron(s) checked against Alma (0 Alma calls)."]) + "\n", "")


def test_reconcile_changes_nothing(deploy, cli):
    d = deploy()
    payment_id, tx = paid(d, amount="62.00")
    d.wait_for_state(payment_id, "posted")
    pay_in_alma_directly(d, "mkowalski", DAMAGED, "5.00", tx)  # a mismatch to report
    before = (d.ledger.payment(payment_id), d.ledger.events(payment_id),
              d.alma.user_state("mkowalski"))
    d.alma.clear_requests()
    code, out, _ = cli(d, "reconcile", "--since", today().isoformat(), "--json")
    report = json.loads(out)
    assert code == 1 and report["counts"] == {"mismatch": 1}
    assert report["payments"][0]["fees"][2] == {
        "fee_id": DAMAGED, "ledger": "0.00", "ledger_postings": 0, "alma": "5.00",
        "alma_transactions": 1, "in_progress": False}
    assert report["payments"][0]["advice"] == [
        f"Alma has 5.00 more on fee {DAMAGED} than patronpay posted (posted by hand?): check "
        "the fee's transactions in Alma and reverse what does not belong."]
    assert (d.ledger.payment(payment_id), d.ledger.events(payment_id),
            d.alma.user_state("mkowalski")) == before
    assert {(r["method"], r["query"].get("status", [""])[0]) for r in d.alma_calls()} == {
        ("GET", "ACTIVE"), ("GET", "CLOSED")}


def test_a_double_charge_in_cashnet_is_for_review(deploy):
    d = deploy()
    payment_id, tx = paid(d, patron="tlee", amount="100.00")
    d.wait_for_state(payment_id, "posted")
    second = d.cashnet.complete(d.hand_off(d.ledger.payment(payment_id).checkout))["tx"]
    finding = check(d).findings[0]
    assert (finding.status, finding.problems) == ("review", [])
    assert finding.advice == [
        f"Flagged for review: second CashNet success (transaction {second}) for a payment "
        f"already settled by {tx}: refund (then `patronpay payments resolve {payment_id} "
        "--note '...'`)"]
