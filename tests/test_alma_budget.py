"""Alma's per-second limit holds for the sum of all instances on one PostgreSQL ledger
(docs/deploy.md#two-nodes): three instances reserving calls at once never start more than
the limit in any second together."""

from __future__ import annotations

import threading
import time

import pytest

from proxy.alma_budget import SharedBudget
from proxy.db import Database

ON_POSTGRES = pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)
PER_SECOND = 20


@ON_POSTGRES
def test_three_instances_together_start_at_most_the_limit_each_second(ledger_target):
    url = ledger_target("ledger")
    instances = [SharedBudget(Database(url), "the-institution's-key", PER_SECOND)
                 for _ in range(3)]
    starts: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(instances))

    def calls(budget: SharedBudget) -> None:
        barrier.wait()
        for _ in range(20):
            start = time.monotonic() + budget.reserve()
            with lock:
                starts.append(start)

    threads = [threading.Thread(target=calls, args=(b,)) for b in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    starts.sort()
    assert len(starts) == 60
    # Any PER_SECOND + 1 consecutive calls span a second (less a little clock noise).
    spans = [starts[i + PER_SECOND] - starts[i] for i in range(len(starts) - PER_SECOND)]
    assert min(spans) > 0.95
    # And the schedule is used, not wasted: 60 calls at 20 a second take about 3 seconds.
    assert starts[-1] - starts[0] < 3.5


@ON_POSTGRES
def test_each_institution_has_its_own_schedule(ledger_target):
    db = Database(ledger_target("ledger"))
    campus_a, campus_b = (SharedBudget(db, key, 1) for key in ("key-a", "key-b"))
    assert campus_a.reserve() == 0.0 and campus_b.reserve() == 0.0
    assert 0.9 < campus_a.reserve() <= 1.0
