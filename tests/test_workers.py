"""Several posting workers on one ledger
(docs/guarantees.md#several-workers-and-hostile-notifications): two `patronpay serve` processes
sharing a SQLite file, with Alma slow and faulty, never post the same allocation twice; and a worker
whose lease ran out while it waited on Alma sends nothing once another has taken over."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import socket
from collections import Counter
from decimal import Decimal

import pytest
from support.alma import payments_carrying
from support.postgres import BOTH
from support.rig import ProxyProcess, Rig, free_port
from support.waiting import wait_for

from proxy.alma import AlmaClient
from proxy.posting import PostingWorker, owner_is_dead, this_host
from proxy.runtime import posting_policy
from sandbox.app import CASHNET_STORE

pytestmark = pytest.mark.slow

D = Decimal
LOST, OVERDUE = "7730018830004146", "7730012450004146"
PAY = {"method": "POST", "path": "/almaws/v1/users/*/fees/*"}


@pytest.fixture
def two(tmp_path, ledger_target):
    """A rig with a second `patronpay serve` on the same ledger, behind its own port."""
    rig = Rig(tmp_path, ledger_target("ledger"))
    second = ProxyProcess(dict(rig.proxy.env), free_port(), tmp_path / "proxy-b.log")
    second.env["PATRONPAY_PUBLIC_URL"] = second.url
    try:
        yield rig, second
    finally:
        second.stop()
        rig.close()


def notify(rig, proxy):
    """Point CashNet's store notifications at one of the two processes."""
    postback = f"{proxy.url}/cashnet/postback/{rig.settings.cashnet_postback_token}"
    rig.cashnet.configure_store(CASHNET_STORE, notify_success_url=postback,
                                notify_failure_url=postback)


@BOTH
def test_two_serve_processes_on_one_ledger_post_each_allocation_once(two):
    rig, second = two
    first = rig.proxy
    first.start()
    second.start()
    patrons = [f"duo{i:02d}" for i in range(24)]
    rng = random.Random(7)
    for patron in patrons:
        rig.alma.add_user({"primary_id": patron, "first_name": "Duo", "last_name": patron,
                           "fees": [{"type": "OVERDUEFINE", "owner": "MAIN",
                                     "original_amount": f"{rng.randint(100, 999) / 100:.2f}"},
                                    {"type": "LOSTITEMREPLACEMENTFEE", "owner": "SCI",
                                     "original_amount": f"{rng.randint(1000, 9999) / 100:.2f}"}]})
    started = [rig.start_payment(patron) for patron in patrons]
    # Alma slow and unreliable: calls overlap across the two processes, and answers get lost
    # after Alma applied the payment, so both must look before paying.
    rig.alma.set_faults({"seed": 11, "latency_ms": 20, "latency_jitter_ms": 80, "rules": [
        {"match": PAY, "mode": "commit_then_500", "probability": 0.15},
        {"match": PAY, "mode": "commit_then_drop", "probability": 0.1},
        {"match": PAY, "mode": "http_5xx", "status": 503, "probability": 0.1}]})
    for number, (_, cid) in enumerate(started):
        notify(rig, (first, second)[number % 2])
        completion = rig.cashnet.complete(cid)
        assert [n["status"] for n in completion["notifications"]] == [200]
    for payment_id, _ in started:
        wait_for(lambda p=payment_id: rig.payment(p).state == "posted",
                 f"payment {payment_id} posted", timeout=60)

    applied = Counter(r["path"].rsplit("/", 1)[1] for r in rig.pays() if r["committed"])
    for (payment_id, _), patron in zip(started, patrons, strict=True):
        payment = rig.payment(payment_id)
        expected = {a.fee_id: [a.amount] for a in payment.allocations}
        assert payments_carrying(rig.alma, payment.cashnet_tx, patron) == expected
        assert [a.state for a in payment.allocations] == ["posted", "posted"]
        assert all(applied[fee] == 1 for fee in expected)  # one applied payment call per fee
        posted_events = [e for e in rig.ledger.events(payment_id)
                         if e["kind"] == "allocation_posted"]
        assert len(posted_events) == 2
    # Both processes did part of the work.
    by_first, by_second = len(first.posted_lines()), len(second.posted_lines())
    found = sum(1 for p, _ in started for a in rig.payment(p).allocations
                if a.outcome == "found in Alma")
    assert by_first > 0 and by_second > 0
    assert by_first + by_second + found == 48
    faults = Counter(r["fault"] for r in rig.pays())
    assert faults["commit_then_500"] + faults["commit_then_drop"] > 0
    print(f"\ntwo workers: {by_first} + {by_second} payment calls applied, {found} found in "
          f"Alma after a lost answer, PAY faults {dict(faults)}")


@BOTH
def test_a_worker_whose_lease_ran_out_sends_nothing(deploy, caplog):
    d = deploy(run_worker=False)
    client = d.sign_in_sso("mkowalski")
    created, completion = d.pay(client, amount="62.00")
    payment_id = created["payment"]["id"]
    d.wait_for_state(payment_id, "paid")
    # A's look at the fees outlasts its lease; B's first payment call is slow, so when A is
    # back Alma still shows nothing paid and A would pay, were it not for the lease.
    d.alma.set_faults({"rules": [
        {"match": {"method": "GET", "path": "/almaws/v1/users/*/fees"}, "mode": "slow",
         "latency_ms": 1000, "next": 1},
        {"match": PAY, "mode": "slow", "latency_ms": 2000, "next": 1}]})
    policy = posting_policy(d.settings)
    settings = d.settings

    def alma():
        return AlmaClient(settings.alma_api_url, settings.alma_api_key, read_timeout=5.0)

    async def race():
        alma_a, alma_b = alma(), alma()
        a = PostingWorker(d.ledger, alma_a, dataclasses.replace(policy, lease_seconds=0.5))
        b = PostingWorker(d.ledger, alma_b, dataclasses.replace(policy, lease_seconds=30))

        async def b_after_a_lease():
            while True:  # bounded by the wait_for(..., 30) below; A's lease lasts 0.5 s
                lease = d.ledger.db.read_one("SELECT until FROM leases")
                if lease is not None and lease["until"] < d.ledger.clock():
                    break
                await asyncio.sleep(0.02)
            return await b.drain()

        try:
            return await asyncio.wait_for(asyncio.gather(a.drain(), b_after_a_lease()), 30)
        finally:
            await alma_a.aclose()
            await alma_b.aclose()

    with caplog.at_level(logging.WARNING, logger="patronpay.posting"):
        asyncio.run(race())
    payment = d.ledger.payment(payment_id)
    assert payment.state == "posted"
    assert [(a.fee_id, a.state, a.outcome) for a in payment.allocations] == [
        (LOST, "posted", "applied"), (OVERDUE, "posted", "applied")]
    assert len(d.alma_calls("POST", "pay")) == 2  # B's two; A sent none
    assert [r.getMessage() for r in caplog.records] == ["lease lost; another worker continues"]
    assert payments_carrying(d.alma, completion["tx"]) == {LOST: [D("60.00")], OVERDUE: [D("2.00")]}


def test_the_lease_of_a_dead_process_is_broken_but_a_live_one_is_kept(deploy):
    d = deploy(run_worker=False)
    ledger = d.ledger
    now = ledger.clock()
    host = this_host()
    # Another container with this host name but its own process ids: never judged from here.
    other_namespace = f"{socket.gethostname()}/4026500000:{2**22 + 12345}:dddd"
    with ledger.db.write() as conn:
        conn.executemany("INSERT INTO leases (payment_id, owner, until) VALUES (?, ?, ?)", [
            ("p-dead", f"{host}:{2**22 + 12345}:aaaa", now + 100),
            ("p-live", f"{host}:{os.getppid()}:bbbb", now + 100),
            ("p-other-host", "elsewhere.example.edu:1:cccc", now + 100),
            ("p-other-namespace", other_namespace, now + 100)])
    assert ledger.break_leases(owner_is_dead) == ["p-dead"]
    remaining = [row["payment_id"] for row in ledger.db.read(
        "SELECT payment_id FROM leases ORDER BY payment_id")]
    assert remaining == ["p-live", "p-other-host", "p-other-namespace"]
    assert json.loads(ledger.db.read_one(
        "SELECT detail FROM events WHERE kind = 'lease_broken'")["detail"]) == {
        "owner": f"{host}:{2**22 + 12345}:aaaa"}
