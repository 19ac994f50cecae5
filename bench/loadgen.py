"""Closed-loop load: N simulated patrons, each sending its next request as soon as the last one
is answered, for a fixed window after a warm-up. Requests count when they finish inside the
window (throughput is completions per second of window), so the warm-up (connections, caches)
and the drain after the window do not blur the figures, and slow answers are not left out."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.rawhttp import HttpError
from bench.stats import summary_ms

# One call of the request under test for patron `i`; returns the HTTP status.
Request = Callable[[int], Awaitable[int]]


@dataclass
class LoadResult:
    concurrency: int
    window_seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    total: int = 0  # every answered request, warm-up and drain included
    window_start: float = 0.0  # time.monotonic() bounds of the measured window
    window_end: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def figures(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "window_s": round(self.window_seconds, 2),
            "requests": self.completed,
            "non_2xx": self.completed - self.ok,
            "errors": self.errors,
            "rps": round(self.ok / self.window_seconds, 1) if self.window_seconds else 0.0,
            **summary_ms(self.latencies),
            "load_generator_cpu_s": round(self.client_cpu_seconds, 2),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(request: Request, concurrency: int, duration: float, warmup: float,
                      max_requests_per_patron: int = 100_000) -> LoadResult:
    """Run `request` from `concurrency` patrons for `warmup + duration` seconds."""
    began = time.monotonic()
    window_start, window_end = began + warmup, began + warmup + duration
    result = LoadResult(concurrency, duration, window_start=window_start, window_end=window_end)
    cpu_start = _cpu_seconds()

    async def patron(index: int) -> None:
        for _ in range(max_requests_per_patron):
            started = time.monotonic()
            if started >= window_end:
                return
            try:
                status = await request(index)
            except (OSError, asyncio.IncompleteReadError, HttpError, ValueError):
                result.errors += 1
                await asyncio.sleep(0.05)  # do not spin on a refused connection
                continue
            finished = time.monotonic()
            result.total += 1
            if window_start <= finished <= window_end:
                result.latencies.append(finished - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1

    await asyncio.gather(*(patron(i) for i in range(concurrency)))
    result.client_cpu_seconds = _cpu_seconds() - cpu_start
    return result
