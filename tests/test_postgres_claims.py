"""Claims of due work on PostgreSQL (docs/architecture.md#the-ledger): claimers on several
instances take different payments at the same time, with `FOR ... SKIP LOCKED` on the payment's
row instead of the ledger's write lock, and each paid payment is claimed once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from test_ledger import make_payment, notice, record

from proxy.db import Database
from proxy.ledger import Ledger

ON_POSTGRES = pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)
PAYMENTS = 24
CLAIMERS = 6


def paid_payments(ledger: Ledger, count: int) -> list[str]:
    ids = [f"{i:032x}" for i in range(1, count + 1)]
    for n, payment_id in enumerate(ids):
        make_payment(ledger, payment_id)
        record(ledger, notice(payment_id=payment_id, tx=str(200000 + n)))
    return ids


def claim_until_none(ledger: Ledger, owner: str, start: threading.Barrier,
                     claimed: list[str]) -> None:
    start.wait(30)
    for n in range(PAYMENTS + 1):  # bounded: never more claims than payments
        payment_id = ledger.claim_due_payment(f"{owner}:{n}", lease_seconds=120)
        if payment_id is None:
            return
        claimed.append(payment_id)


@ON_POSTGRES
def test_claimers_at_once_take_disjoint_payments_and_every_one(ledger_target):
    url = ledger_target("ledger")
    ledger = Ledger(Database(url))
    ids = paid_payments(ledger, PAYMENTS)
    # One database per claimer, as separate instances have.
    ledgers = [Ledger(Database(url)) for _ in range(CLAIMERS)]
    start = threading.Barrier(CLAIMERS)
    results: list[list[str]] = [[] for _ in range(CLAIMERS)]
    threads = [threading.Thread(target=claim_until_none,
                                args=(ledgers[i], f"host:{i}:worker", start, results[i]))
               for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    claimed = Counter(p for result in results for p in result)
    assert sorted(claimed) == sorted(ids)
    assert set(claimed.values()) == {1}  # disjoint: no payment claimed twice
    owners = {row["payment_id"]: row["owner"]
              for row in ledger.db.read("SELECT payment_id, owner FROM leases")}
    assert len(owners) == PAYMENTS


@ON_POSTGRES
def test_a_claim_does_not_wait_for_the_write_lock(ledger_target):
    url = ledger_target("ledger")
    ledger = Ledger(Database(url))
    [payment_id] = paid_payments(ledger, 1)
    claimer = Ledger(Database(url))
    got: list[str | None] = []
    with ledger.db.write():  # another instance's write transaction, holding the lock
        thread = threading.Thread(
            target=lambda: got.append(claimer.claim_due_payment("host:9:worker:a", 120)))
        thread.start()
        thread.join(10)
        assert got == [payment_id]
