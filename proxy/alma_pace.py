"""The pace of Alma calls from one process (docs/alma.md#call-budget): evenly spaced, posting
first, pages never starved.

Alma's per-second limit is per institution and shared with every other integration, so calls
are spread out at `per_second` (one every 1/per_second seconds) rather than let through in a
burst that then stalls everyone for the rest of the second. While Alma answers 429 the spacing
grows (each 429 doubles a minimum gap, up to `MAX_GAP`; other answers shrink it).

When calls queue, posting goes first: it is money CashNet has already taken, and a patron
waits on a receipt that says "posted". Pages still get one call in `PAGE_EVERY` while they
wait, so a long posting backlog slows the fees page but never stops it.

The posting worker's calls go through `AlmaClient.for_posting()`; every other call is a page
call.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum

from proxy import metrics
from proxy.alma_errors import AlmaUnavailable


class Priority(StrEnum):
    POSTING = "posting"
    PAGE = "page"


class RateLimiter:
    """One call every 1/`per_second` seconds at most, across all tasks of this process; posting
    calls first when calls queue. `clock` and `sleep` are injectable for tests."""

    MAX_GAP = 5.0
    PAGE_EVERY = 4  # while pages wait, at least one call in four is theirs
    SHARED_RETRY = 0.5  # as the database pool's own wait while the database is down

    def __init__(self, per_second: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.per_second = per_second
        self.gap = 0.0
        self.clock = clock
        self.sleep = sleep
        self._last: float | None = None  # when the latest call was let through
        self._queues: dict[Priority, deque[tuple[asyncio.Future[None], float]]] = {
            Priority.POSTING: deque(), Priority.PAGE: deque()}
        self._postings_in_a_row = 0
        self._dispatcher: asyncio.Task[None] | None = None
        # Several instances on one PostgreSQL ledger: the shared schedule's wait for each call
        # let through here, None while the schedule cannot be reached (proxy/alma_budget.py);
        # no schedule at all for one process alone. A call that finds no slot within
        # `shared_patience` seconds is not sent.
        self.shared: Callable[[], float | None] | None = None
        self.shared_patience = 5.0

    def spacing(self) -> float:
        return max(1.0 / self.per_second, self.gap)

    async def acquire(self, priority: Priority = Priority.PAGE) -> None:
        """Wait for this call's turn (and its slot in the shared schedule, if any)."""
        await self._own_turn(priority)
        if self.shared is not None:
            await self._shared_slot()

    async def _shared_slot(self) -> None:
        """Wait for this call's slot in the shared schedule. While the schedule cannot be
        reached no call goes without a slot (else the instances together would call at several
        times the limit): ask again every SHARED_RETRY seconds. A slot woken up for more than
        one spacing late (the event loop was held up, as by a database call waiting for a
        restarted server) is let go and a new one taken: otherwise every call whose slot passed
        meanwhile would go at once. After `shared_patience` seconds without a slot, give up
        with AlmaUnavailable, before anything is sent to Alma."""
        give_up = self.clock() + self.shared_patience
        while True:
            asked = self.clock()
            # A database round trip: off the event loop, so a slow or failing-over database
            # stalls only this call, not notifications and pages.
            wait = await asyncio.to_thread(self.shared)
            if wait is not None:
                if wait > 0:
                    await self.sleep(wait)
                # The slot began no earlier than asked + wait: lateness is not underestimated.
                if self.clock() - (asked + wait) <= 1.0 / self.per_second:
                    return
            if self.clock() >= give_up:
                raise AlmaUnavailable("Alma call not sent: no slot in the shared call schedule")
            if wait is None:
                await self.sleep(self.SHARED_RETRY)

    async def _own_turn(self, priority: Priority) -> None:
        now = self.clock()
        if not self._waiting() and self._free_at() <= now:
            self._last = now
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append((turn, now))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.ensure_future(self._dispatch())
        await turn

    def throttled(self) -> None:
        self.gap = min(self.MAX_GAP, max(0.25, self.gap * 2))

    def answered(self) -> None:
        self.gap = self.gap * 0.75 if self.gap > 0.05 else 0.0

    def waiting(self, priority: Priority) -> int:
        """Calls of this priority waiting for their turn (for tests and the bench)."""
        return sum(1 for turn, _ in self._queues[priority] if not turn.done())

    # --- the queue ---

    def _free_at(self) -> float:
        return float("-inf") if self._last is None else self._last + self.spacing()

    def _waiting(self) -> bool:
        for queue in self._queues.values():
            while queue and queue[0][0].done():  # a caller that gave up (cancelled)
                queue.popleft()
        return any(self._queues.values())

    async def _dispatch(self) -> None:
        while self._waiting():
            wait = self._free_at() - self.clock()
            if wait > 0:
                await self.sleep(wait)
                continue
            turn, queued_at = self._next_turn()
            self._last = self.clock()
            metrics.rate_limit_wait(max(0.0, self._last - queued_at))
            turn.set_result(None)
        self._dispatcher = None

    def _next_turn(self) -> tuple[asyncio.Future[None], float]:
        postings, pages = self._queues[Priority.POSTING], self._queues[Priority.PAGE]
        pages_due = self._postings_in_a_row >= self.PAGE_EVERY - 1
        if postings and not (pages and pages_due):
            self._postings_in_a_row = self._postings_in_a_row + 1 if pages else 0
            return postings.popleft()
        self._postings_in_a_row = 0
        return pages.popleft()
