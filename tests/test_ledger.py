"""The ledger's state machine for CashNet notifications and staff actions
(docs/architecture.md#payment-states, docs/cashnet.md#notification-checks), on a real SQLite
file."""

from decimal import Decimal

import pytest
from support.postgres import BOTH

from proxy.db import Database
from proxy.ledger import Ledger, LineRecord
from proxy.notification import parse_message

PID = "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9"


class Clock:
    def __init__(self):
        self.now = 1_760_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


pytestmark = BOTH  # on SQLite and on PostgreSQL


@pytest.fixture
def ledger(ledger_target, clock):
    return Ledger(Database(ledger_target("ledger")), clock)


def make_payment(ledger, payment_id=PID):
    return ledger.create_payment(
        payment_id=payment_id, patron_id="mkowalski", patron_name="Maria Kowalski",
        channel="web", session_id="s", amount=Decimal("62.00"), currency="USD",
        custcode="mkowalski",
        lines=[LineRecord(1, "LIB-LOST", Decimal("60.00"), "Lost item replacement fee"),
               LineRecord(2, "LIB-OVERDUE", Decimal("2.00"), "Overdue fine")],
        allocations=[("7730018830004146", "LOSTITEMREPLACEMENTFEE", "Lost item", Decimal("60.00")),
                     ("7730012450004146", "OVERDUEFINE", "Overdue fine", Decimal("2.00"))],
        checkout={"action": "x", "method": "POST", "fields": {}})


def notice(result="0", tx="100001", payment_id=PID, amount2="2.00", failedtx=None, extra=""):
    body = (f"result={result}&itemcnt=2&itemcode1=LIB-LOST&amount1=60.00&itemcode2=LIB-OVERDUE"
            f"&amount2={amount2}&custcode=mkowalski&batchno=7&ref1type1=PAYMENT_ID&ref1val1={payment_id}")
    body += f"&tx={tx}" if failedtx is None else f"&failedtx={failedtx}"
    return parse_message((body + extra).encode())


def record(ledger, message):
    return ledger.record_notification(message, peer="127.0.0.1", ref_type="PAYMENT_ID")


def test_new_payment_is_pending_with_planned_allocations(ledger):
    payment = make_payment(ledger)
    assert payment.state == "pending"
    assert [(a.fee_id, a.amount, a.state) for a in payment.allocations] == [
        ("7730018830004146", Decimal("60.00"), "planned"),
        ("7730012450004146", Decimal("2.00"), "planned")]


def test_success_makes_it_paid_and_queues_allocations(ledger):
    make_payment(ledger)
    outcome = record(ledger, notice())
    payment = ledger.payment(PID)
    assert (outcome.effect, payment.state, payment.cashnet_tx, payment.batchno) == ("paid", "paid", "100001", "7")
    assert [a.state for a in payment.allocations] == ["queued", "queued"]


def test_duplicates_change_nothing(ledger):
    make_payment(ledger)
    record(ledger, notice())
    before = ledger.payment(PID)
    for _ in range(4):
        assert record(ledger, notice()).effect == "duplicate"
    after = ledger.payment(PID)
    assert (after.state, after.allocations, after.review) == (before.state, before.allocations, "")
    assert [n["outcome"] for n in ledger.notifications(PID)] == ["paid"] + ["same"] * 4


def test_duplicate_with_different_contents_is_flagged(ledger):
    make_payment(ledger)
    record(ledger, notice())
    assert record(ledger, notice(extra="&pmtcode=CC")).effect == "duplicate"
    assert "different contents" in ledger.payment(PID).review


def test_duplicate_with_conflicting_repeated_fields_is_flagged(ledger):
    make_payment(ledger)
    record(ledger, notice())
    # What the payer typed beside our echo is not a difference; a second amount is.
    assert record(ledger, notice(extra="&LNAME=Kowalska&batchno=8")).effect == "duplicate"
    assert ledger.payment(PID).review == ""
    assert record(ledger, notice(extra="&AMOUNT2=0.01")).effect == "duplicate"
    assert "different contents" in ledger.payment(PID).review


def test_tampered_amount_goes_to_attention_and_queues_nothing(ledger):
    make_payment(ledger)
    outcome = record(ledger, notice(amount2="0.01"))
    payment = ledger.payment(PID)
    assert (outcome.effect, payment.state) == ("attention", "attention")
    assert payment.reason == "amount mismatch: line 2: amount 0.01, issued 2.00"
    assert payment.cashnet_tx == "100001"
    assert [a.state for a in payment.allocations] == ["planned", "planned"]


def test_decline_then_success_wins(ledger):
    make_payment(ledger)
    assert record(ledger, notice(result="209", failedtx="100001")).effect == "declined"
    assert ledger.payment(PID).state == "declined"
    assert record(ledger, notice(result="209", failedtx="100001")).effect == "duplicate"
    assert record(ledger, notice(tx="100002")).effect == "paid"
    assert ledger.payment(PID).state == "paid"


def test_cancel_is_cancelled(ledger):
    make_payment(ledger)
    assert record(ledger, notice(result="902", failedtx="5")).effect == "cancelled"


def test_expired_then_late_success_is_paid(ledger, clock):
    make_payment(ledger)
    clock.now += 25 * 3600
    assert ledger.expire_pending(24 * 3600) == [PID]
    assert ledger.payment(PID).state == "expired"
    assert record(ledger, notice()).effect == "paid"


def test_failure_after_paid_changes_nothing(ledger):
    make_payment(ledger)
    record(ledger, notice())
    assert record(ledger, notice(result="209", failedtx="9")).effect == "recorded"
    assert ledger.payment(PID).state == "paid"


def test_second_success_with_another_tx_is_a_double_charge(ledger):
    make_payment(ledger)
    record(ledger, notice())
    assert record(ledger, notice(tx="100099")).effect == "double_charge"
    payment = ledger.payment(PID)
    assert payment.state == "paid" and payment.cashnet_tx == "100001"
    assert "refund" in payment.review


def test_unknown_and_missing_references_are_unmatched(ledger):
    make_payment(ledger)
    assert record(ledger, notice(payment_id="f" * 32)).effect == "unmatched"
    assert record(ledger, parse_message(b"result=0&tx=5")).effect == "unmatched"
    assert ledger.payment(PID).state == "pending"
    assert [n["kind"] for n in ledger.notifications()] == ["unmatched", "unmatched"]


def test_success_without_tx_needs_attention(ledger):
    make_payment(ledger)
    message = parse_message(b"result=0&itemcnt=2&itemcode1=LIB-LOST&amount1=60.00"
                            b"&itemcode2=LIB-OVERDUE&amount2=2.00&ref1type1=PAYMENT_ID&ref1val1="
                            + PID.encode())
    assert record(ledger, message).effect == "attention"
    assert ledger.payment(PID).reason == "success without a CashNet transaction number"


def test_staff_retry_and_resolve(ledger):
    make_payment(ledger)
    record(ledger, notice(amount2="0.01"))
    with pytest.raises(ValueError):
        ledger.resolve(PID, "  ", "ana")
    retried = ledger.retry(PID, "ana")
    assert retried.state == "paid" and [a.state for a in retried.allocations] == ["queued", "queued"]
    with pytest.raises(ValueError):
        ledger.retry(PID, "ana")


def test_events_trail(ledger):
    make_payment(ledger)
    record(ledger, notice())
    kinds = [e["kind"] for e in ledger.events(PID)]
    assert kinds == ["created", "notification", "paid"]


def test_each_claim_has_its_own_lease_even_within_one_worker(ledger, clock):
    make_payment(ledger)
    record(ledger, notice())
    first = "host:1:worker:claim-a"
    assert ledger.claim_due_payment(first, lease_seconds=120) == PID
    assert ledger.claim_due_payment("host:1:worker:claim-b", lease_seconds=120) is None
    clock.now += 121  # the first lane got stuck longer than its lease
    second = "host:1:worker:claim-c"
    assert ledger.claim_due_payment(second, lease_seconds=120) == PID
    allocation = ledger.payment(PID).allocations[0]
    assert ledger.mark_sending(allocation.id, first, 120, 25) is False   # the stuck lane sends nothing
    assert ledger.reduce_allocation(allocation.id, Decimal("1.00"), "test", [], lease=first) is False
    assert ledger.mark_sending(allocation.id, second, 120, 25) is True
    ledger.release(PID, first)  # the stuck lane's release does not free the new lease
    assert ledger.claim_due_payment("host:1:worker:claim-d", lease_seconds=120) is None


def test_paid_payment_with_nothing_left_to_post_is_found_for_settling(ledger):
    make_payment(ledger)
    record(ledger, notice())
    for allocation in ledger.payment(PID).allocations:
        ledger.mark_posted(allocation.id, "applied")  # then the process died before settling
    assert ledger.payment(PID).state == "paid"
    assert ledger.paid_with_nothing_left() == [PID]
    assert ledger.settle_if_done(PID) == "posted"
    assert ledger.paid_with_nothing_left() == []


def test_a_success_naming_no_payment_waits_for_staff_with_its_candidate(ledger):
    """Staff's list of successes with no reference works on both backends (it reads the
    candidates noted on the notification's event), and attaching one makes the payment paid."""
    make_payment(ledger)
    body = ("result=0&tx=100077&itemcnt=2&itemcode1=LIB-LOST&amount1=60.00&itemcode2=LIB-OVERDUE"
            "&amount2=2.00&custcode=MKOWALSKI&batchno=7")
    record(ledger, parse_message(body.encode()))
    [waiting] = ledger.unmatched_successes()
    assert waiting.candidates == (PID,)
    assert ledger.payment(PID).state == "pending"
    paid = ledger.attach_notification(waiting.notice_id, PID, "jdoe")
    assert (paid.state, paid.cashnet_tx, paid.amount) == ("paid", "100077", Decimal("62.00"))
    assert ledger.unmatched_successes() == []
