"""`patronpay payments list|show|retry|resolve|export` against a real deployment, and the money
that cannot be applied automatically (fee gone, only part of a remainder movable), which is
what staff meet in `attention` (docs/staff.md#when-a-payment-needs-staff)."""

import csv
import io
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from support.alma import payments_carrying

from patronpay.cli import main
from patronpay.demo import sandbox_environment
from proxy.staff import when

D = Decimal
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"
FEE_PATH = "/almaws/v1/users/*/fees/"


def today() -> date:
    """Read when used, not at import: a run may cross midnight UTC."""
    return datetime.now(UTC).date()


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `patronpay ...` in-process with the deployment's settings in the environment."""

    def run(d, *argv, database=None):
        for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
            monkeypatch.delenv(name)
        env = sandbox_environment(d.settings.public_url, d.sandbox.url,
                                  database or d.settings.database,
                                  d.settings.cashnet_postback_token)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def pay(d, patron="mkowalski", faults=None, **body):
    client = d.sign_in_sso(patron)
    created, completion = d.pay(client, faults=faults, **body)
    return created["payment"]["id"], completion


def columns(line):
    return re.split(r"\s{2,}", line.strip())


# --- list ---


def test_list_shows_every_payment_aligned_with_a_count(deploy, cli):
    d = deploy()
    posted_id, _ = pay(d, amount="62.00")
    d.wait_for_state(posted_id, "posted")
    declined_id, _ = pay(d, patron="tlee", outcome="decline", code=209)
    d.wait_for_state(declined_id, "declined")
    code, out, err = cli(d, "payments", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert columns(lines[0]) == ["CREATED (UTC)", "PAYMENT", "PATRON", "STATE", "AMOUNT",
                                 "CASHNET TX", "NOTE"]
    posted, declined = d.ledger.payment(posted_id), d.ledger.payment(declined_id)
    assert columns(lines[1]) == [when(posted.created_at), posted_id, "mkowalski", "posted",
                                 "62.00", posted.cashnet_tx]
    assert columns(lines[2]) == [when(declined.created_at), declined_id, "tlee", "declined",
                                 "1250.00", "-", "CashNet result 209"]
    assert lines[3:] == ["2 payment(s)"]
    # Aligned: each column starts at the same offset on every line; amounts end together.
    assert lines[1].index(posted_id) == lines[2].index(declined_id) == lines[0].index("PAYMENT")
    assert lines[1].index("posted") == lines[2].index("declined") == lines[0].index("STATE")
    assert lines[1].index("62.00") + 5 == lines[2].index("1250.00") + 7 == \
        lines[0].index("AMOUNT") + 6


def test_list_filters_and_json(deploy, cli):
    d = deploy()
    posted_id, completion = pay(d, amount="62.00")
    d.wait_for_state(posted_id, "posted")
    tx = completion["tx"]
    other_id, _ = pay(d, patron="tlee", outcome="cancel")
    d.wait_for_state(other_id, "cancelled")

    code, out, _ = cli(d, "payments", "list", "--patron", "mkowalski", "--json")
    payment = d.ledger.payment(posted_id)
    assert code == 0
    assert json.loads(out) == [{
        "id": posted_id, "created_at": datetime.fromtimestamp(payment.created_at, UTC)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "patron_id": "mkowalski", "patron_name": "Maria Kowalski", "channel": "web",
        "state": "posted", "amount": "62.00", "currency": "USD", "applied": "62.00",
        "unapplied": "0.00", "cashnet_tx": tx, "batchno": payment.batchno, "reason": "",
        "review": ""}]

    def ids(*argv):
        code, out, err = cli(d, "payments", "list", "--json", *argv)
        assert (code, err) == (0, "")
        return [p["id"] for p in json.loads(out)]

    assert ids() == [posted_id, other_id]
    assert ids("--state", "cancelled") == [other_id]
    assert ids("--tx", tx) == [posted_id]
    assert ids("--tx", "999999") == []
    assert ids("--since", today().isoformat()) == [posted_id, other_id]
    assert ids("--until", today().isoformat()) == [posted_id, other_id]  # the whole day counts
    assert ids("--until", (today() - timedelta(days=1)).isoformat()) == []
    assert ids("--since", (today() + timedelta(days=1)).isoformat()) == []
    assert ids("--attention") == []
    code, out, _ = cli(d, "payments", "list", "--state", "attention")
    assert (code, out) == (0, "no payments match\n")


def test_attention_and_review_flags_are_listed_for_staff(deploy, cli):
    d = deploy()
    waived_id, cid = d.checkout(amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    d.cashnet.complete(cid)
    d.wait_for_state(waived_id, "attention")
    # A second checkout of the same hand-off: CashNet charges the patron twice.
    double_id, _ = pay(d, patron="tlee", amount="10.00")
    d.wait_for_state(double_id, "posted")
    checkout = d.ledger.payment(double_id).checkout
    second = d.hand_off(checkout)
    d.cashnet.complete(second)
    assert "refund" in d.ledger.payment(double_id).review

    code, out, _ = cli(d, "payments", "list", "--attention")
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "2 payment(s)"
    assert columns(lines[1])[3:] == ["attention", "62.00", d.ledger.payment(waived_id).cashnet_tx,
                                     f"2.00 not applied in Alma: fee {OVERDUE} is closed"]
    assert columns(lines[2])[3] == "posted"
    assert columns(lines[2])[6].startswith("REVIEW: second CashNet success (transaction")
    assert columns(lines[2])[6].endswith("...")  # long notes are shortened; `show` has all


# --- show ---


def test_show_prints_the_payment_its_allocations_and_the_event_trail(deploy, cli):
    d = deploy()
    payment_id, completion = pay(d, amount="62.00")
    payment = d.wait_for_state(payment_id, "posted")
    tx = completion["tx"]
    code, out, err = cli(d, "payments", "show", payment_id)
    assert (code, err) == (0, "")
    head, lines, allocations, events = out.rstrip("\n").split("\n\n")
    assert head.splitlines() == [
        f"payment   {payment_id}",
        "patron    mkowalski (Maria Kowalski)",
        "channel   web",
        "amount    62.00 USD (applied in Alma 62.00, not applied 0.00)",
        "state     posted",
        "review    -",
        f"cashnet   transaction {tx}, batch {payment.batchno}, date {payment.effdate}, "
        "payment code CC",
        f"created   {_utc(payment.created_at)}",
        f"paid      {_utc(payment.paid_at)}",
        f"posted    {_utc(payment.posted_at)}",
    ]
    assert [columns(x) for x in lines.splitlines()] == [
        ["lines"], ["NO", "ITEM CODE", "AMOUNT", "DESCRIPTION"],
        ["1", "LIB-LOST", "60.00", "Lost item replacement fee"],
        ["2", "LIB-OVERDUE", "2.00", "Overdue fine"]]
    assert [columns(x) for x in allocations.splitlines()] == [
        ["allocations"], ["FEE", "TYPE", "AMOUNT", "UNAPPLIED", "STATE", "TRIES", "OUTCOME"],
        [LOST, "LOSTITEMREPLACEMENTFEE", "60.00", "0.00", "posted", "0", "applied"],
        [OVERDUE, "OVERDUEFINE", "2.00", "0.00", "posted", "0", "applied"]]
    trail = [columns(x)[1:3] for x in events.splitlines()[2:]]
    assert trail == [["created", "patron"], ["notification", "cashnet:127.0.0.1"],
                     ["paid", "cashnet:127.0.0.1"], ["allocation_posted", "worker"],
                     ["allocation_posted", "worker"], ["posted", "worker"]]
    notification = events.splitlines()[3]
    assert notification.endswith(f"kind=success outcome=paid result=0 tx={tx} "
                                 f"batchno={payment.batchno}")


def _utc(moment):
    """A time as `show` prints it: UTC to the millisecond."""
    moment = datetime.fromtimestamp(moment, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def test_show_json_has_everything_and_advice_for_attention(deploy, cli):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "attention")
    code, out, _ = cli(d, "payments", "show", payment_id, "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["state"], info["applied"], info["unapplied"], info["cashnet_tx"]) == (
        "attention", "60.00", "2.00", tx)
    assert [(a["fee_id"], a["amount"], a["unapplied"], a["state"], a["outcome"])
            for a in info["allocations"]] == [
        (LOST, "60.00", "0.00", "posted", "applied"),
        (OVERDUE, "0.00", "2.00", "failed", f"fee {OVERDUE} is closed")]
    assert [e["kind"] for e in info["events"]] == [
        "created", "notification", "paid", "allocation_posted", "allocation_reduced",
        "attention"]
    assert info["events"][-1]["detail"] == {
        "reason": f"2.00 not applied in Alma: fee {OVERDUE} is closed", "unapplied": "2.00"}
    assert info["advice"].startswith(f"2.00 taken by CashNet (transaction {tx}) is not in Alma.")
    code, out, _ = cli(d, "payments", "show", payment_id)
    assert out.rstrip().endswith(f"`patronpay payments resolve {payment_id} --note '...'`.")
    assert "\n\nwhat to do\n  2.00 taken by CashNet" in out


def test_unknown_payment_and_bad_dates_exit_2_without_a_traceback(deploy, cli):
    d = deploy()
    for argv, message in [
        (("payments", "show", "nope"), "patronpay: no payment 'nope' in the ledger\n"),
        (("payments", "retry", "nope"), "patronpay: no payment 'nope' in the ledger\n"),
        (("payments", "resolve", "nope", "--note", "x"),
         "patronpay: no payment 'nope' in the ledger\n"),
        (("payments", "list", "--since", "14/03/2025"),
         "patronpay: --since must be a date like 2025-03-14 (UTC), not '14/03/2025'\n"),
        (("payments", "list", "--until", "2025-02-30"),
         "patronpay: --until must be a date like 2025-03-14 (UTC), not '2025-02-30'\n"),
        (("payments", "list", "--since", "2025-03-02", "--until", "2025-03-01"),
         "patronpay: --until is before --since\n"),
        (("payments", "list", "--state", "lost"),
         "patronpay: --state must be one of pending, paid, posted, declined, cancelled, "
         "expired, attention, resolved\n"),
        (("payments", "export", "--since", "2025-W11-5", "--until", "2025-03-01"),
         "patronpay: --since must be a date like 2025-03-14 (UTC), not '2025-W11-5'\n"),
        (("reconcile", "--since", "yesterday"),
         "patronpay: --since must be a date like 2025-03-14 (UTC), not 'yesterday'\n"),
    ]:
        assert cli(d, *argv) == (2, "", message), argv


def test_a_missing_ledger_is_an_error_not_a_new_empty_one(deploy, cli, tmp_path):
    d = deploy()
    missing = tmp_path / "typo.sqlite3"
    assert cli(d, "payments", "list", database=missing) == (
        2, "", f"patronpay: no ledger at {missing} (PATRONPAY_DATABASE)\n")
    assert not missing.exists()


# --- retry and resolve ---


def test_retry_after_staff_fix_the_fee_posts_exactly_once(deploy, cli):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    tx = d.cashnet.complete(cid)["tx"]
    d.wait_for_state(payment_id, "attention")
    # Staff find the fee was closed by mistake and restore it in Alma, then retry.
    d.alma.set_fee("mkowalski", OVERDUE, balance="4.75", status="ACTIVE")
    assert cli(d, "payments", "retry", payment_id, "--actor", "ana") == (
        0, f"payment {payment_id}: sent back to the posting worker; it reads Alma before "
           "paying; state is now paid\n", "")
    d.services.worker.wake()
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}
    assert (payment.applied, payment.unapplied) == (D("62.00"), D("0.00"))
    assert [e["source"] for e in d.ledger.events(payment_id) if e["kind"] == "paid"] == [
        "cashnet:127.0.0.1", "staff:ana"]
    # Nothing to retry any more.
    assert cli(d, "payments", "retry", payment_id) == (
        2, "", f"patronpay: payment {payment_id} is posted; only a payment in attention with "
               "a CashNet transaction can be retried\n")


def test_retry_tries_the_rest_a_fee_could_not_take(deploy, cli):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    d.alma.set_fee("mkowalski", LOST, balance="50.00")  # someone paid 10.00 at the desk
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "attention")
    assert payment.reason == f"10.00 not applied in Alma: fee {LOST} balance is only 50.00"
    # The desk payment is reversed in Alma; staff retry and the rest goes to the same fee.
    d.alma.set_fee("mkowalski", LOST, balance="10.00", status="ACTIVE")
    assert cli(d, "payments", "retry", payment_id, "--json")[0] == 0
    d.services.worker.wake()
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {LOST: [D("50.00"), D("10.00")], OVERDUE: [D("2.00")]}
    assert [(a.fee_id, a.amount, a.unapplied, a.state, a.origin) for a in payment.allocations] == [
        (LOST, D("50.00"), D("0.00"), "posted", "patron"),
        (OVERDUE, D("2.00"), D("0.00"), "posted", "patron"),
        (LOST, D("10.00"), D("0.00"), "posted", "rest the fee could not take")]


def test_retry_after_the_give_up_horizon_gets_a_horizon_of_its_own(deploy, cli):
    d = deploy(posting_give_up_hours="0.0005")  # 1.8 s of trying
    d.alma.set_faults({"rules": [{"match": {"method": "POST", "path": FEE_PATH + "*"},
                                  "mode": "http_5xx", "status": 503}]})
    payment_id, completion = pay(d, amount="62.00")
    payment = d.wait_for_state(payment_id, "attention", timeout=30)
    assert payment.reason == ("62.00 not applied in Alma: gave up: Alma could not be reached "
                              "(Alma answered 503)")
    d.alma.set_faults({})  # Alma is back
    assert cli(d, "payments", "retry", payment_id)[0] == 0
    d.services.worker.wake()
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, completion["tx"]) == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}


def test_resolve_closes_attention_and_clears_a_review_flag(deploy, cli):
    d = deploy(alma_api_key="sandbox-alma-readonly")
    payment_id, _ = pay(d, amount="62.00")
    d.wait_for_state(payment_id, "attention")
    assert cli(d, "payments", "resolve", payment_id, "--note", "  ", "--actor", "ana") == (
        2, "", "patronpay: a note saying what was done is required\n")
    code, out, _ = cli(d, "payments", "resolve", payment_id, "--note",
                       "refunded in CashNet, ticket 4411", "--actor", "ana", "--json")
    assert code == 0
    assert (json.loads(out)["state"], json.loads(out)["reason"]) == (
        "resolved", "refunded in CashNet, ticket 4411")
    event = d.ledger.events(payment_id)[-1]
    assert (event["kind"], event["source"], event["detail"]) == (
        "resolved", "staff:ana", {"note": "refunded in CashNet, ticket 4411",
                                  "reason": "refunded in CashNet, ticket 4411"})
    assert cli(d, "payments", "resolve", payment_id, "--note", "again") == (
        2, "", f"patronpay: payment {payment_id} is resolved and needs nothing\n")
    # The --note is required by the command line itself.
    with pytest.raises(SystemExit) as exit_info:
        cli(d, "payments", "resolve", payment_id)
    assert exit_info.value.code == 2


# --- export ---


def test_export_is_the_money_taken_in_the_window_as_csv(deploy, cli, tmp_path):
    d = deploy()
    first_id, first = pay(d, amount="62.00")
    second_id, second = pay(d, patron="tlee", amount="100.00")
    pay(d, patron="dokafor", outcome="decline")  # no money taken: not exported
    d.wait_for_state(first_id, "posted")
    d.wait_for_state(second_id, "posted")
    since, until = today().isoformat(), today().isoformat()
    code, out, err = cli(d, "payments", "export", "--since", since, "--until", until)
    assert (code, err) == (0, "")
    batch = d.ledger.payment(first_id).batchno
    tlee_fee = d.ledger.payment(second_id).allocations[0].fee_id
    assert list(csv.reader(io.StringIO(out))) == [
        ["date", "payment_id", "patron_id", "cashnet_tx", "batchno", "amount", "currency",
         "fees", "unapplied", "state"],
        [since, first_id, "mkowalski", first["tx"], batch, "62.00", "USD",
         f"{LOST}=60.00;{OVERDUE}=2.00", "0.00", "posted"],
        [since, second_id, "tlee", second["tx"], batch, "100.00", "USD",
         f"{tlee_fee}=100.00", "0.00", "posted"]]
    assert out.endswith("\r\n")
    target = tmp_path / "bursar.csv"
    assert cli(d, "payments", "export", "--since", since, "--until", until,
               "--output", target) == (0, f"2 payment(s) written to {target}\n", "")
    assert target.read_bytes().decode() == out
    yesterday = (today() - timedelta(days=1)).isoformat()
    code, out, _ = cli(d, "payments", "export", "--since", yesterday, "--until", yesterday)
    assert (code, out.splitlines()) == (0, [",".join(
        ["date", "payment_id", "patron_id", "cashnet_tx", "batchno", "amount", "currency",
         "fees", "unapplied", "state"])])


# --- money that cannot be applied automatically ---


def test_fee_gone_from_alma_holds_the_money_for_staff(deploy):
    d = deploy()
    payment_id, cid = d.checkout("mkowalski", amount="62.00")
    # The fee is deleted in Alma: absent from the list, and FEE says it does not exist.
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": FEE_PATH + OVERDUE},
                                  "mode": "alma_error", "code": "401665"}]})
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "attention")
    assert payment.reason == f"2.00 not applied in Alma: fee {OVERDUE} is gone"
    assert (payment.applied, payment.unapplied) == (D("60.00"), D("2.00"))
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")]}


def test_fee_gone_moves_the_money_when_configured(deploy):
    d = deploy(reallocate_remainder="true")
    payment_id, cid = d.checkout("mkowalski", fee_ids=[LOST, OVERDUE], amount="62.00")
    d.alma.set_fee("mkowalski", OVERDUE, balance="0.00", status="CLOSED")
    d.alma.set_faults({"rules": [{"match": {"method": "GET", "path": FEE_PATH + OVERDUE},
                                  "mode": "alma_error", "code": "401665"}]})
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], DAMAGED: [D("2.00")]}
    assert [(a.fee_id, a.amount, a.unapplied, a.state) for a in payment.allocations] == [
        (LOST, D("60.00"), D("0.00"), "posted"), (OVERDUE, D("0.00"), D("0.00"), "moved"),
        (DAMAGED, D("2.00"), D("0.00"), "posted")]


def test_a_remainder_larger_than_the_other_fees_moves_in_part_and_waits_for_staff(deploy):
    d = deploy(reallocate_remainder="true")
    payment_id, cid = d.checkout("mkowalski", fee_ids=[LOST], amount="60.00")
    d.alma.set_fee("mkowalski", LOST, balance="0.00", status="CLOSED")  # waived meanwhile
    tx = d.cashnet.complete(cid)["tx"]
    payment = d.wait_for_state(payment_id, "attention")
    # 60.00 to place; the other payable fees hold 4.75 and 12.50, oldest first.
    assert payments_carrying(d.alma, tx) == {OVERDUE: [D("4.75")], DAMAGED: [D("12.50")]}
    assert [(a.fee_id, a.amount, a.unapplied, a.state) for a in payment.allocations] == [
        (LOST, D("0.00"), D("42.75"), "failed"), (OVERDUE, D("4.75"), D("0.00"), "posted"),
        (DAMAGED, D("12.50"), D("0.00"), "posted")]
    assert payment.reason == f"42.75 not applied in Alma: fee {LOST} is closed"
    assert (payment.applied, payment.unapplied) == (D("17.25"), D("42.75"))


# --- record-paid, unmatched, attach (issues 12 and 13) ---


def test_record_paid_posts_once_with_the_staff_member_and_refuses_a_second_time(deploy, cli):
    d = deploy()
    created, completion = d.pay(d.sign_in_sso("mkowalski"), faults={"drop": True},
                                fee_ids=[OVERDUE])
    payment_id, tx = created["payment"]["id"], completion["tx"]
    assert d.ledger.payment(payment_id).state == "pending"  # CashNet took it, never told us
    code, _, err = cli(d, "payments", "record-paid", payment_id, "--tx", tx, "--amount", "5.00",
                       "--note", "seen in CashNet")
    assert code == 2
    assert "issued for 4.75, not 5.00" in err and "--amount-differs" in err
    code, out, err = cli(d, "payments", "record-paid", payment_id, "--tx", tx, "--amount",
                         "4.75", "--note", "seen in CashNet, batch 3", "--actor", "jdoe")
    assert (code, err) == (0, "")
    assert out == (f"payment {payment_id}: recorded as paid; the service posts it to Alma; "
                   "state is now paid\n")
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {OVERDUE: [D("4.75")]}
    [pay_call] = d.alma_calls("POST", "pay")
    assert pay_call["query"]["comment"] == [f"CashNet payment: tx {tx}; ref {payment_id}; web"]
    paid = next(e for e in d.ledger.events(payment_id) if e["kind"] == "paid")
    assert paid["source"] == "staff:jdoe"
    assert (paid["detail"]["note"], paid["detail"]["tx"]) == ("seen in CashNet, batch 3", tx)

    code, _, err = cli(d, "payments", "record-paid", payment_id, "--tx", tx, "--amount", "4.75",
                       "--note", "again")
    assert code == 2 and f"payment {payment_id} is posted" in err
    other = d.start_payment(d.sign_in_sso("mkowalski"), fee_ids=[LOST])["payment"]["id"]
    code, _, err = cli(d, "payments", "record-paid", other, "--tx", tx, "--amount", "60.00",
                       "--note", "wrong tx")
    assert code == 2
    assert err == (f"patronpay: CashNet transaction {tx} is already in the ledger (payment "
                   f"{payment_id})\n")
    assert d.ledger.payment(other).state == "pending"
    assert payments_carrying(d.alma, tx) == {OVERDUE: [D("4.75")]}  # still once


def test_record_paid_with_less_than_issued_spreads_it_oldest_first(deploy, cli):
    d = deploy()
    created, completion = d.pay(d.sign_in_sso("mkowalski"), faults={"drop": True},
                                fee_ids=[LOST, OVERDUE])
    payment_id, tx = created["payment"]["id"], completion["tx"]
    code, _, err = cli(d, "payments", "record-paid", payment_id, "--tx", tx, "--amount",
                       "50.00", "--note", "CashNet shows 50.00", "--amount-differs")
    assert code == 0, err
    payment = d.wait_for_state(payment_id, "posted")
    assert [(a.fee_id, a.amount) for a in payment.allocations] == [(LOST, D("50.00"))]
    assert payment.amount == D("50.00")
    assert payments_carrying(d.alma, tx) == {LOST: [D("50.00")]}


def test_a_success_without_reference_waits_for_staff_and_is_attached_once(deploy, cli):
    d = deploy()
    created, completion = d.pay(d.sign_in_sso("mkowalski"), faults={"missing_refs": True},
                                fee_ids=[OVERDUE])
    payment_id, tx = created["payment"]["id"], completion["tx"]
    assert d.ledger.payment(payment_id).state == "pending"
    assert d.alma_calls("POST") == []  # nothing posted on a guess
    code, out, _ = cli(d, "payments", "unmatched", "--json")
    [waiting] = json.loads(out)
    assert (waiting["tx"], waiting["amount"], waiting["custcode"]) == (tx, "4.75", "mkowalski")
    assert [c["id"] for c in waiting["candidates"]] == [payment_id]
    code, out, _ = cli(d, "payments", "unmatched")
    assert f"patronpay payments attach {waiting['notice']} --to PAYMENT" in out
    assert payment_id in out
    assert "unmatched_candidate" in [e["kind"] for e in d.ledger.events(payment_id)]

    code, out, err = cli(d, "payments", "attach", waiting["notice"], "--to", payment_id,
                         "--actor", "jdoe")
    assert (code, err) == (0, "")
    assert out.startswith(f"payment {payment_id}: notification {waiting['notice']} attached")
    d.wait_for_state(payment_id, "posted")
    assert payments_carrying(d.alma, tx) == {OVERDUE: [D("4.75")]}
    kinds = [(e["kind"], e["source"]) for e in d.ledger.events(payment_id)]
    assert ("attached", "staff:jdoe") in kinds and ("paid", "staff:jdoe") in kinds

    code, _, err = cli(d, "payments", "attach", waiting["notice"], "--to", payment_id)
    assert code == 2 and "no unmatched notification" in err
    code, out, _ = cli(d, "payments", "unmatched", "--json")
    assert json.loads(out) == []
    assert payments_carrying(d.alma, tx) == {OVERDUE: [D("4.75")]}
