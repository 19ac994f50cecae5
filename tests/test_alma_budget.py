"""Alma's per-second limit holds for the sum of all instances on one PostgreSQL ledger
(docs/deploy.md#two-nodes): three instances reserving calls at once never start more than
the limit in any second together, and while the database is down no call goes without a slot
(docs/alma.md#call-budget)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from proxy.alma import AlmaClient, AlmaUnavailable
from proxy.alma_budget import SharedBudget
from proxy.alma_pace import RateLimiter
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


def alma_answering(sent: list[str], budget: SharedBudget) -> AlmaClient:
    """An Alma client on one instance's shared schedule; `sent` gets each request's path."""
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={"primary_id": "mkowalski"})

    alma = AlmaClient("http://alma.invalid", "the-institution's-key", connect_timeout=1.0,
                      requests_per_second=PER_SECOND, transport=httpx.MockTransport(answer))
    alma.share_budget(budget.reserve)
    return alma


@ON_POSTGRES
@pytest.mark.timeout(120)
def test_with_the_database_down_no_call_goes_without_a_slot_and_calls_resume_after(
        ledger_target, postgres_cluster):
    url = ledger_target("ledger")
    sent: list[str] = []
    # Three instances, each with its own connection pool to the one database.
    budgets = [SharedBudget(Database(url), "the-institution's-key", PER_SECOND)
               for _ in range(3)]

    async def scenario() -> None:
        clients = [alma_answering(sent, budget) for budget in budgets]

        async def thirty_calls() -> list[object]:
            return await asyncio.gather(
                *(c.get_user("mkowalski") for c in clients for _ in range(10)),
                return_exceptions=True)

        try:
            assert all(isinstance(r, dict) for r in await thirty_calls())
            assert len(sent) == 30
            postgres_cluster.stop()
            try:
                outcomes = await thirty_calls()
            finally:
                postgres_cluster.start()
            # Each call waited for a slot, then failed as "Alma unavailable", nothing sent.
            assert len(sent) == 30
            assert all(isinstance(r, AlmaUnavailable) for r in outcomes), outcomes
            # The pools reconnect on their own (within seconds) and calls take slots again;
            # until then calls keep failing unsent.
            answered, give_up = 0, time.monotonic() + 60
            while time.monotonic() < give_up:
                outcomes = await thirty_calls()
                answered += sum(isinstance(r, dict) for r in outcomes)
                if all(isinstance(r, dict) for r in outcomes):
                    break
            assert all(isinstance(r, dict) for r in outcomes), outcomes
            assert len(sent) == 30 + answered
        finally:
            for client in clients:
                await client.aclose()

    asyncio.run(scenario())

def test_a_call_waits_for_the_schedule_to_answer_then_goes():
    answers = iter([None, None, 0.0])
    sent: list[str] = []
    waits: list[float] = []

    async def call() -> dict:
        alma = alma_answering(sent, SharedBudget.__new__(SharedBudget))
        alma.share_budget(lambda: next(answers))

        async def no_sleep(seconds: float) -> None:
            waits.append(seconds)

        alma._limiter.sleep = no_sleep
        try:
            return await alma.get_user("mkowalski")
        finally:
            await alma.aclose()

    assert asyncio.run(call()) == {"primary_id": "mkowalski"}
    assert sent == ["/users/mkowalski"]
    assert waits == [RateLimiter.SHARED_RETRY, RateLimiter.SHARED_RETRY]
