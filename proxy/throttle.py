"""Failed sign-in attempts, counted per key (an account, an address) in a sliding window, in
the database so every proxy process sees the same count."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Sequence

from proxy.db import Database


class FailureLimiter:
    def __init__(self, db: Database, max_failures: int, window_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock

    def begin_attempt(self, keys: Sequence[str]) -> tuple[int, list[int]]:
        """Check the keys and, if an attempt is allowed, count it as a failure at once, in one
        transaction: parallel attempts cannot all slip past the check. Returns (seconds to
        wait, the rows counted); call `forget` with the rows when the attempt did not fail."""
        now = self.clock()
        with self.db.write() as conn:
            wait = self._retry_after(conn, keys, now)
            if wait:
                return wait, []
            conn.execute("DELETE FROM auth_failures WHERE at < ?", (now - self.window_seconds,))
            rows = [conn.execute("INSERT INTO auth_failures (key, at) VALUES (?, ?)",
                                 (key, now)).lastrowid for key in keys]
        return 0, [row for row in rows if row is not None]

    def forget(self, rows: Sequence[int]) -> None:
        with self.db.write() as conn:
            conn.executemany("DELETE FROM auth_failures WHERE rowid = ?", [(r,) for r in rows])

    def clear(self, key: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM auth_failures WHERE key = ?", (key,))

    def _retry_after(self, conn: sqlite3.Connection, keys: Sequence[str], now: float) -> int:
        """Seconds until another attempt is allowed for all of `keys`; 0 means now."""
        wait = 0.0
        for key in keys:
            rows = conn.execute(
                "SELECT at FROM auth_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (key, now - self.window_seconds, self.max_failures)).fetchall()
            if len(rows) >= self.max_failures:
                # Allowed again once the oldest of the last `max_failures` leaves the window.
                wait = max(wait, rows[-1]["at"] + self.window_seconds - now)
        return math.ceil(wait)
