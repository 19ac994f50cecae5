"""Failed sign-in attempts, counted per key (an account, an address) in a sliding window, in
the database so every proxy process sees the same count."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from proxy.db import Database


class FailureLimiter:
    def __init__(self, db: Database, max_failures: int, window_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until another attempt is allowed for all of `keys`; 0 means now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            rows = self.db.read(
                "SELECT at FROM auth_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (key, now - self.window_seconds, self.max_failures))
            if len(rows) >= self.max_failures:
                # Allowed again once the oldest of the last `max_failures` leaves the window.
                wait = max(wait, rows[-1]["at"] + self.window_seconds - now)
        return math.ceil(wait)

    def record_failure(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            conn.executemany("INSERT INTO auth_failures (key, at) VALUES (?, ?)",
                             [(key, now) for key in keys])
            conn.execute("DELETE FROM auth_failures WHERE at < ?", (now - self.window_seconds,))

    def clear(self, key: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM auth_failures WHERE key = ?", (key,))
