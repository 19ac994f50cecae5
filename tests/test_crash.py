"""Crash safety (docs/guarantees.md#crash-tests): `patronpay serve` killed with SIGKILL at each
dangerous moment of a payment, then restarted on the same ledger, ends with every allocation applied
in Alma exactly once. The proxy runs as a child process (a real process to kill); the sandbox runs
in the test and opens the timing windows with its faults (slow and dropped Alma calls, CashNet
re-delivery).

After each restart the test asserts the exact ledger state and the exact PAYMENT transactions
in Alma carrying the CashNet transaction number.
"""

from __future__ import annotations

import signal
import sqlite3
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from support.alma import payments_carrying
from support.postgres import BOTH
from support.rig import Rig
from support.waiting import wait_for

pytestmark = pytest.mark.slow

D = Decimal
LOST, OVERDUE = "7730018830004146", "7730012450004146"
FEES = "/almaws/v1/users/*/fees"
EXPECTED_62 = {LOST: [D("60.00")], OVERDUE: [D("2.00")]}


def connections_to(port: int) -> list[tuple[int, int, int | None]]:
    """Established TCP connections into `port`: (peer port, bytes the receiver has not read
    yet, bytes the sender has not had acknowledged), from /proc/net/tcp."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        tx_queue, rx_queue = (int(x, 16) for x in fields[4].split(":"))
        rows.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16),
                     state, tx_queue, rx_queue))
    unsent = {lport: tx for lport, rport, state, tx, _ in rows if rport == port and state == "01"}
    return [(rport, rx, unsent.get(rport)) for lport, rport, state, _, rx in rows
            if lport == port and state == "01"]


@pytest.fixture
def rig(tmp_path, ledger_target):
    built = Rig(tmp_path, ledger_target("ledger"))
    try:
        yield built
    finally:
        built.close()


def slow(path: str, method: str = "POST", latency_ms: int = 1500) -> dict:
    return {"match": {"method": method, "path": path}, "mode": "slow",
            "latency_ms": latency_ms, "next": 1}


def assert_posted_exactly_once(rig: Rig, payment_id: str, outcomes: list[str]) -> None:
    payment = rig.payment(payment_id)
    tx = payment.cashnet_tx
    assert payment.state == "posted"
    assert (payment.applied, payment.unapplied) == (D("62.00"), D("0.00"))
    assert rig.allocations(payment_id) == [
        (LOST, D("60.00"), "posted", outcomes[0]), (OVERDUE, D("2.00"), "posted", outcomes[1])]
    assert payments_carrying(rig.alma, tx) == EXPECTED_62


# --- before the notification is recorded ---


@BOTH
def test_killed_before_reading_the_notification(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.proxy.signal(signal.SIGSTOP)  # frozen: CashNet's delivery waits in the socket
    delivery = rig.complete_in_background(cid)
    wait_for(lambda: any(unread for _, unread, _ in connections_to(rig.proxy.port)),
             "the notification to wait unread in the proxy's socket", timeout=10)
    rig.proxy.kill()
    delivery.join(15)
    # Nothing of it reached the ledger; CashNet saw a failed delivery.
    assert (rig.payment(payment_id).state, rig.ledger.notifications()) == ("pending", [])
    first = rig.cashnet.notifications(cid)[0]
    assert (first["attempt"], first["status"]) == (1, None) and first["error"]
    rig.proxy.start()
    rig.wait_for_state(payment_id, "posted")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    assert rig.notification_outcomes(payment_id) == ["paid"]
    attempts = rig.cashnet.notifications(cid)
    assert [a["status"] for a in attempts][-1] == 200
    assert all(a["status"] is None for a in attempts[:-1])
    assert len(rig.pays()) == 2


def test_killed_while_recording_the_notification(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    # Hold the ledger's write lock: the proxy gets the notification but cannot commit it.
    lock = sqlite3.connect(rig.database, isolation_level=None, timeout=5)
    lock.execute("BEGIN IMMEDIATE")
    try:
        delivery = rig.complete_in_background(cid)

        def inside_the_write():
            # The proxy has read the whole notification (nothing left unread or unacknowledged
            # on one connection), and its event loop is blocked on the ledger's write lock:
            # it no longer answers /healthz.
            read = [c for c in connections_to(rig.proxy.port) if c[1] == 0 and c[2] == 0]
            if not read:
                return False
            try:
                httpx.get(f"http://127.0.0.1:{rig.proxy.port}/healthz", timeout=0.3)
            except httpx.TimeoutException:
                return True
            return False

        wait_for(inside_the_write, "the proxy to be inside the notification's write", timeout=10)
        rig.proxy.kill()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    delivery.join(15)
    # The transaction died with the process: no notification row, no state, nothing queued.
    payment = rig.payment(payment_id)
    assert (payment.state, payment.cashnet_tx, rig.ledger.notifications()) == (
        "pending", None, [])
    assert [a.state for a in payment.allocations] == ["planned", "planned"]
    rig.proxy.start()
    rig.wait_for_state(payment_id, "posted")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    assert rig.notification_outcomes(payment_id) == ["paid"]
    assert len(rig.pays()) == 2


# --- after the notification is recorded ---


@BOTH
def test_killed_after_recording_before_posting(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [slow(FEES, method="GET", latency_ms=3000)]})
    completion = rig.cashnet.complete(cid)
    assert [n["status"] for n in completion["notifications"]] == [200]
    # The worker is reading the patron's fees (slowly) when the process dies.
    wait_for(lambda: any(r["path"].endswith("/fees") and r["status"] is None
                         for r in rig.alma.requests()), "the worker's LIST in flight", timeout=10)
    rig.proxy.kill()
    payment = rig.payment(payment_id)
    assert (payment.state, [a.state for a in payment.allocations]) == ("paid", ["queued", "queued"])
    assert rig.pays() == []
    rig.proxy.start()
    rig.wait_for_state(payment_id, "posted")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    # CashNet never saw our 200 (say) and sends the notification again: a duplicate, nothing more.
    body = urlencode([tuple(pair) for pair in completion["fields"]])
    again = httpx.post(f"{rig.proxy.url}/cashnet/postback/{'t' * 40}", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (again.status_code, again.text) == (200, "OK")
    assert rig.notification_outcomes(payment_id) == ["paid", "same"]
    assert len(rig.pays()) == 2
    assert payments_carrying(rig.alma, payment.cashnet_tx) == EXPECTED_62


@BOTH
def test_killed_between_two_fee_postings_after_alma_applied_the_second(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [slow(f"{FEES}/{OVERDUE}")]})
    rig.cashnet.complete(cid)
    wait_for(lambda: rig.allocations(payment_id)[0][2:] == ("posted", "applied")
             and rig.allocations(payment_id)[1][2] == "sending"
             and [r["status"] for r in rig.pays(OVERDUE)] == [None],
             "the first fee posted and the second payment call inside Alma", timeout=10)
    rig.proxy.kill()
    # Alma finishes the call after the caller died: applied, and the ledger does not know.
    wait_for(lambda: [(r["status"], r["committed"]) for r in rig.pays(OVERDUE)] == [(200, True)],
             "Alma to apply the orphaned payment call", timeout=10)
    assert rig.allocations(payment_id) == [
        (LOST, D("60.00"), "posted", "applied"), (OVERDUE, D("2.00"), "sending", "")]
    assert payments_carrying(rig.alma, rig.payment(payment_id).cashnet_tx) == EXPECTED_62
    rig.proxy.start()
    rig.wait_for_state(payment_id, "posted")
    # Found by looking before paying: no second payment call for that fee.
    assert_posted_exactly_once(rig, payment_id, ["applied", "found in Alma"])
    assert [len(rig.pays(LOST)), len(rig.pays(OVERDUE))] == [1, 1]
    assert [e["kind"] for e in rig.ledger.events(payment_id)].count("lease_broken") == 1


@BOTH
def test_killed_while_waiting_to_look_after_a_lost_answer(rig):
    rig.proxy.start()
    payment_id, cid = rig.start_payment(amount="62.00")
    rig.alma.set_faults({"rules": [{"match": {"method": "POST", "path": f"{FEES}/{OVERDUE}"},
                                    "mode": "drop", "next": 1}]})
    rig.cashnet.complete(cid)
    wait_for(lambda: rig.allocations(payment_id)[1][2:] == (
        "sending", "payment may have been applied: RemoteProtocolError"),
        "the dropped payment call to be recorded as unknown", timeout=10)
    rig.proxy.kill()
    rig.proxy.start()
    rig.wait_for_state(payment_id, "posted")
    assert_posted_exactly_once(rig, payment_id, ["applied", "applied"])
    # The dropped call never reached Alma's state; after looking, exactly one more was sent.
    assert [(r["status"], r["committed"]) for r in rig.pays(OVERDUE)] == [
        (None, False), (200, True)]
    assert len(rig.pays(LOST)) == 1


@BOTH
def test_repeated_kills_during_a_burst_lose_nothing_and_post_nothing_twice(rig):
    """Ten payments, the proxy killed four times at moments the sandbox makes likely to be
    mid-posting (every Alma call slowed), then left to finish."""
    rig.proxy.start()
    patrons = [f"crash{i:02d}" for i in range(10)]
    for patron in patrons:
        rig.alma.add_user({"primary_id": patron, "first_name": "Crash", "last_name": patron,
                           "fees": [{"type": "OVERDUEFINE", "original_amount": "3.10",
                                     "owner": "MAIN"},
                                    {"type": "DAMAGEDITEMFINE", "original_amount": "7.25",
                                     "owner": "LAW"}]})
    started = [rig.start_payment(patron) for patron in patrons]
    rig.alma.set_faults({"latency_ms": 150, "latency_jitter_ms": 300})
    for _, cid in started:
        rig.complete_in_background(cid)
    for _ in range(4):
        posted_before = len([r for r in rig.pays() if r["committed"]])
        wait_for(lambda n=posted_before: len([r for r in rig.pays() if r["committed"]]) > n
                 or all(rig.payment(p).state == "posted" for p, _ in started),
                 "some progress", timeout=30)
        rig.proxy.kill()
        rig.proxy.start()
    rig.alma.set_faults({})
    for payment_id, _ in started:
        wait_for(lambda p=payment_id: rig.payment(p).state == "posted",
                 f"payment {payment_id} posted", timeout=60)
    for (payment_id, _), patron in zip(started, patrons, strict=True):
        payment = rig.payment(payment_id)
        assert (payment.applied, payment.unapplied) == (D("10.35"), D("0.00"))
        fees = {a.fee_id: [a.amount] for a in payment.allocations}
        assert payments_carrying(rig.alma, payment.cashnet_tx, patron) == fees
        assert [a.state for a in payment.allocations] == ["posted", "posted"]
    # Every payment call that Alma applied was for an allocation, once.
    applied = [r["path"] for r in rig.pays() if r["committed"]]
    assert len(applied) == len(set(applied)) == 20
