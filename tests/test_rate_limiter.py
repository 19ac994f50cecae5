"""The pace of Alma calls (proxy/alma_pace.py) on a clock the test moves: calls evenly spaced
at the limit (no burst then a stall), posting before pages when calls queue, pages never
starved, slower while Alma throttles. No wall-clock timing is asserted."""

from __future__ import annotations

import asyncio

from proxy.alma_pace import Priority, RateLimiter

POSTING, PAGE = Priority.POSTING, Priority.PAGE


class FakeTime:
    """A clock that moves only when a task sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # callers let through so far run (and look at the clock) first
        self.now += seconds


def limiter(per_second: int = 20) -> tuple[RateLimiter, FakeTime]:
    time = FakeTime()
    return RateLimiter(per_second, clock=time.clock, sleep=time.sleep), time


def run_calls(calls: list[Priority], per_second: int = 20,
              before=None) -> list[tuple[Priority, int, float]]:
    """Start every call at once (in this order); (priority, index, when let through), in
    the order they were let through."""
    rate, time = limiter(per_second)
    if before:
        before(rate)
    through: list[tuple[Priority, int, float]] = []

    async def call(priority: Priority, index: int) -> None:
        await rate.acquire(priority)
        through.append((priority, index, round(time.now - 1000.0, 6)))

    async def main() -> None:
        await asyncio.gather(*(call(p, i) for i, p in enumerate(calls)))

    asyncio.run(main())
    return through


def test_calls_are_spread_evenly_at_the_limit_not_let_through_in_a_burst():
    times = [at for _, _, at in run_calls([PAGE] * 40)]
    assert times == [round(n * 0.05, 6) for n in range(40)]
    # Never more than 20 in any one-second window.
    assert all(sum(1 for t in times if start <= t < start + 1) <= 20 for start in times)


def test_a_call_after_a_quiet_spell_goes_at_once():
    rate, time = limiter()

    async def main() -> list[float]:
        seen = []
        for _ in range(3):
            await rate.acquire()
            seen.append(time.now)
            time.now += 0.2  # more than the 0.05 s spacing
        return seen

    assert [round(at - 1000.0, 6) for at in asyncio.run(main())] == [0.0, 0.2, 0.4]


def test_queued_posting_goes_before_queued_pages():
    order = run_calls([PAGE, PAGE, PAGE, POSTING, POSTING])
    # The first page call found the limiter free; of the queued ones, posting first.
    assert [(p, i) for p, i, _ in order[:3]] == [(PAGE, 0), (POSTING, 3), (POSTING, 4)]


def test_pages_still_get_one_call_in_four_under_a_posting_backlog():
    order = run_calls([POSTING] * 30 + [PAGE] * 10)
    queued = [p for p, _, _ in order[1:]]  # the first posting call found the limiter free
    assert queued[:8] == [POSTING, POSTING, POSTING, PAGE] * 2
    assert queued[:20].count(PAGE) == 5  # one call in every four, while pages wait
    # Pages are served in the order they came.
    assert [i for p, i, _ in order if p == PAGE] == list(range(30, 40))


def test_pages_alone_use_the_whole_rate():
    order = run_calls([PAGE] * 10)
    assert [at for _, _, at in order] == [round(n * 0.05, 6) for n in range(10)]


def test_throttling_widens_the_spacing_and_answers_narrow_it_again():
    rate, _ = limiter()
    rate.throttled()
    assert rate.spacing() == 0.25
    rate.throttled()
    assert rate.spacing() == 0.5
    for _ in range(20):
        rate.answered()
    assert rate.spacing() == 0.05
    order = run_calls([PAGE] * 3, before=lambda r: r.throttled())
    assert [at for _, _, at in order] == [0.0, 0.25, 0.5]


def test_a_caller_that_gives_up_does_not_take_a_turn():
    rate, time = limiter()
    through: list[str] = []

    async def call(name: str) -> None:
        await rate.acquire(PAGE)
        through.append(name)

    async def main() -> None:
        await rate.acquire()  # the limiter is now busy for 0.05 s
        impatient = asyncio.ensure_future(call("impatient"))
        patient = asyncio.ensure_future(call("patient"))
        await asyncio.sleep(0)
        impatient.cancel()
        await asyncio.gather(impatient, patient, return_exceptions=True)

    asyncio.run(main())
    assert through == ["patient"]
    assert time.now == 1000.05
