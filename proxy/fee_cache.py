"""A patron's fee list, kept for a few seconds after it was read from Alma
(docs/security.md#rate-limits): a reload of the fees page and the start of a payment within
`PATRONPAY_FEES_FRESH_SECONDS` cost no Alma call, and requests that arrive while a read is in
flight wait for that read instead of starting their own.

The list is dropped the moment any payment of the patron changes state: every use first reads a
small marker of the patron's payments from the ledger (how many have left `pending`, and when
the latest changed), and a marker that differs from the one taken before the Alma read means
the list is read again. The ledger is shared by every proxy process and the staff commands, so
a change made anywhere is seen here; the lists themselves live in this process's memory.

A stale amount cannot cost money: a payment started from a kept list is checked again by the
posting worker, which reads each fee before paying it (docs/alma.md#posting-exactly-once).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_PATRONS = 10_000


@dataclass(frozen=True)
class _Kept(Generic[T]):
    value: T
    marker: Hashable
    read_at: float


class FeeCache(Generic[T]):
    def __init__(self, fresh_seconds: float, marker: Callable[[str], Hashable], *,
                 clock: Callable[[], float] = time.monotonic,
                 max_patrons: int = MAX_PATRONS) -> None:
        """`marker(patron_id)` reads the patron's payment-state marker from the ledger."""
        self.fresh_seconds = fresh_seconds
        self.marker = marker
        self.clock = clock
        self.max_patrons = max_patrons
        self._kept: OrderedDict[str, _Kept[T]] = OrderedDict()
        self._reading: dict[str, asyncio.Task[_Kept[T]]] = {}
        self._offered: dict[str, asyncio.Task[None]] = {}

    async def get(self, patron_id: str, read: Callable[[], Awaitable[T]]) -> T:
        """The patron's fee list: the kept one while fresh and unchanged, else `read()`'s,
        shared with every request waiting meanwhile. `read`'s exceptions reach every waiter
        and nothing is kept."""
        if self.fresh_seconds <= 0:
            return await read()
        offered = self._offered.get(patron_id)
        if offered is not None:  # never raises: a failed offer only keeps nothing
            await asyncio.shield(offered)
        marker = self.marker(patron_id)
        kept = self._kept.get(patron_id)
        if kept is not None and kept.marker == marker and \
                self.clock() - kept.read_at < self.fresh_seconds:
            return kept.value
        task = self._reading.get(patron_id)
        if task is None:
            task = asyncio.ensure_future(self._read(patron_id, marker, read))
            self._reading[patron_id] = task
            task.add_done_callback(lambda done: self._finished(patron_id, done))
        # Shielded: a waiter whose client went away must not cancel the others' read.
        return (await asyncio.shield(task)).value

    def _finished(self, patron_id: str, task: asyncio.Task) -> None:
        self._reading.pop(patron_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter has gone

    def offer(self, patron_id: str, marker: Hashable, read: Awaitable[T | None]) -> None:
        """Keep a read that started before the patron was known (the kiosk reads the fee list
        by the card beside the card lookup), if it gives a list (None: discard it) and the
        marker, taken by the caller once the patron was known, has not moved by the time it
        ends. Requests meanwhile wait for it, then use it or read for themselves."""
        if self.fresh_seconds <= 0:
            raise ValueError("no fee list is kept (fresh_seconds is 0): there is nothing to offer")
        task = asyncio.ensure_future(self._take(patron_id, marker, read))
        self._offered[patron_id] = task
        task.add_done_callback(lambda done: self._offer_finished(patron_id, done))

    def _offer_finished(self, patron_id: str, task: asyncio.Task) -> None:
        if self._offered.get(patron_id) is task:
            del self._offered[patron_id]

    async def _take(self, patron_id: str, marker: Hashable, read: Awaitable[T | None]) -> None:
        try:
            value = await read
        except Exception:  # noqa: BLE001 - whatever failed, whoever waits reads for itself
            return
        if value is not None and self.marker(patron_id) == marker:
            self._keep(patron_id, _Kept(value, marker, self.clock()))

    def drop(self, patron_id: str) -> None:
        self._kept.pop(patron_id, None)

    async def _read(self, patron_id: str, marker: Hashable,
                    read: Callable[[], Awaitable[T]]) -> _Kept[T]:
        # The marker was taken before the read: a change during the read makes the next
        # request read again rather than trust a list that may predate it.
        kept = _Kept(await read(), marker, self.clock())
        self._keep(patron_id, kept)
        return kept

    def _keep(self, patron_id: str, kept: _Kept[T]) -> None:
        self._kept[patron_id] = kept
        self._kept.move_to_end(patron_id)
        while len(self._kept) > self.max_patrons:
            self._kept.popitem(last=False)
