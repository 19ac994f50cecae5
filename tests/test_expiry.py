"""Expiry (docs/architecture.md#payment-states): a pending payment with no CashNet notification for
the configured hours becomes `expired` by the posting worker's sweep; a verified success that comes
later still wins, because the money was taken, and is posted to Alma."""

import time
from decimal import Decimal

import pytest
from support.alma import payments_carrying

D = Decimal
LOST, OVERDUE = "7730018830004146", "7730012450004146"
HOUR = 3600.0


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        return time.time() + self.offset


@pytest.fixture
def clocked(deploy):
    """A deployment whose ledger and posting worker read a clock the test can move, and whose
    worker looks every 0.1 s (its expiry sweep runs once a minute of that clock)."""

    def start(**overrides):
        d = deploy(**overrides)
        clock = Clock()
        d.services.ledger.clock = clock
        d.services.worker.clock = clock
        d.services.worker.idle_poll_seconds = 0.1
        return d, clock

    return start


def states(d, *payment_ids):
    return [d.ledger.payment(p).state for p in payment_ids]


def test_pending_payments_expire_after_24_hours_not_before(clocked):
    d, clock = clocked()
    older, _ = d.checkout()
    clock.offset += 1 * HOUR
    newer, _ = d.checkout(patron="tlee")
    clock.offset += 23 * HOUR + 60  # older: 24 h 1 min, newer: 23 h 1 min
    d.wait_for_state(older, "expired")
    assert states(d, older, newer) == ["expired", "pending"]  # decided in the same sweep
    payment = d.ledger.payment(older)
    assert payment.reason == "no CashNet notification"
    assert d.ledger.events(older)[-1]["kind"] == "expired"
    assert d.ledger.events(older)[-1]["source"] == "timer"
    clock.offset += 1 * HOUR
    d.wait_for_state(newer, "expired")
    assert d.alma_calls("POST") == []


def test_the_configured_hours_are_honoured(clocked):
    d, clock = clocked(cashnet_expiry_hours="2")
    first, _ = d.checkout()
    clock.offset += 1 * HOUR
    second, _ = d.checkout(patron="tlee")
    clock.offset += 1 * HOUR + 60
    d.wait_for_state(first, "expired")
    assert states(d, first, second) == ["expired", "pending"]


def test_a_late_success_after_expiry_is_paid_and_posted(clocked):
    d, clock = clocked()
    payment_id, cid = d.checkout(amount="62.00")
    clock.offset += 25 * HOUR
    d.wait_for_state(payment_id, "expired")
    completion = d.cashnet.complete(cid)  # CashNet's notification, a day late
    assert [n["status"] for n in completion["notifications"]] == [200]
    payment = d.wait_for_state(payment_id, "posted")
    tx = completion["tx"]
    assert (payment.cashnet_tx, payment.applied, payment.unapplied) == (tx, D("62.00"), D("0.00"))
    assert [e["kind"] for e in d.ledger.events(payment_id)] == [
        "created", "expired", "notification", "paid", "allocation_posted", "allocation_posted",
        "posted"]
    assert d.ledger.events(payment_id)[3]["detail"]["from"] == "expired"
    assert payments_carrying(d.alma, tx) == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}


def test_a_late_failure_after_expiry_is_only_recorded(clocked):
    d, clock = clocked()
    payment_id, cid = d.checkout()
    clock.offset += 25 * HOUR
    d.wait_for_state(payment_id, "expired")
    completion = d.cashnet.complete(cid, outcome="decline", code=209)
    assert [n["status"] for n in completion["notifications"]] == [200]
    assert d.ledger.payment(payment_id).state == "expired"
    assert [(n["kind"], n["outcome"]) for n in d.ledger.notifications(payment_id)] == [
        ("failure", "recorded only")]
    assert d.ledger.events(payment_id)[-1]["kind"] == "failure_ignored"


def test_paid_declined_and_cancelled_payments_never_expire(clocked):
    d, clock = clocked()
    paid, paid_cid = d.checkout(amount="62.00")
    declined, declined_cid = d.checkout(patron="tlee")
    d.cashnet.complete(paid_cid)
    d.cashnet.complete(declined_cid, outcome="decline")
    d.wait_for_state(paid, "posted")
    pending, _ = d.checkout(patron="dokafor")
    clock.offset += 48 * HOUR
    d.wait_for_state(pending, "expired")
    assert states(d, paid, declined, pending) == ["posted", "declined", "expired"]
