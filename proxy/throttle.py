"""Failed sign-in attempts, counted per key (an account, an address) in a sliding window, in
the database so every proxy process sees the same count.

A guest sign-in (`begin_sign_in`) counts against the Alma account, whatever identifier was
typed, and against the address (an IPv6 /64 counts as one). Since anyone may type anyone's
user name, a locked account must cost its owner little: from an address that has not failed, an
attempt is still allowed, one per `pace_seconds` for the account, so the owner can sign in while
a guesser elsewhere is held to that pace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from proxy.database.base import Connection
from proxy.db import Database
from proxy.rate_limit import address_key

MAX_KEY_LENGTH = 300


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
            rows = [_count(conn, key, now) for key in keys]
        return 0, [row for row in rows if row is not None]

    @property
    def pace_seconds(self) -> float:
        """While an account is locked, one attempt per this long from addresses that have
        not failed: the window spread over the failures it allows."""
        return self.window_seconds / self.max_failures

    def begin_sign_in(self, account: str, address: str) -> tuple[int, list[int]]:
        """`begin_attempt` for a guest sign-in to `account` (the Alma primary id) from
        `address`: a locked address waits; a locked account waits only where this address
        has failed, and otherwise goes at the account's slow pace."""
        account_key = "account:" + account.casefold()[:MAX_KEY_LENGTH]
        address_key_ = "address:" + address_key(address)[:MAX_KEY_LENGTH]
        now = self.clock()
        with self.db.write() as conn:
            address_wait = self._retry_after(conn, [address_key_], now)
            if address_wait:
                return address_wait, []
            account_wait = self._retry_after(conn, [account_key], now)
            if account_wait:
                if self._failed_lately(conn, address_key_, now):
                    return account_wait, []
                pace_wait = self._slow_lane(conn, "pace:" + account_key, now)
                if pace_wait:
                    return pace_wait, []
            conn.execute("DELETE FROM auth_failures WHERE at < ?", (now - self.window_seconds,))
            rows = [_count(conn, key, now) for key in (account_key, address_key_)]
        return 0, [row for row in rows if row is not None]

    def address_wait(self, address: str) -> int:
        """Seconds before `address` may try again (0: now), without counting anything."""
        key = "address:" + address_key(address)[:MAX_KEY_LENGTH]
        return self._retry_after(self.db.connection(), [key], self.clock())

    def signed_in(self, account: str, rows: Sequence[int]) -> None:
        """The attempt succeeded: it was no failure, and the account starts afresh."""
        account_key = "account:" + account.casefold()[:MAX_KEY_LENGTH]
        with self.db.write() as conn:
            conn.executemany("DELETE FROM auth_failures WHERE id = ?", [(r,) for r in rows])
            conn.execute("DELETE FROM auth_failures WHERE key IN (?, ?)",
                         (account_key, "pace:" + account_key))

    def _failed_lately(self, conn: Connection, key: str, now: float) -> bool:
        return conn.execute("SELECT 1 FROM auth_failures WHERE key = ? AND at > ? LIMIT 1",
                            (key, now - self.window_seconds)).fetchone() is not None

    def _slow_lane(self, conn: Connection, pace_key: str, now: float) -> int:
        """Seconds until the locked account's next attempt from a clean address; 0 takes the
        turn now."""
        last = conn.execute("SELECT MAX(at) AS at FROM auth_failures WHERE key = ?",
                            (pace_key,)).fetchone()["at"]
        if last is not None and now - last < self.pace_seconds:
            return max(1, math.ceil(last + self.pace_seconds - now))
        conn.execute("INSERT INTO auth_failures (key, at) VALUES (?, ?)", (pace_key, now))
        return 0

    def forget(self, rows: Sequence[int]) -> None:
        with self.db.write() as conn:
            conn.executemany("DELETE FROM auth_failures WHERE id = ?", [(r,) for r in rows])

    def clear(self, key: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM auth_failures WHERE key = ?", (key,))

    def _retry_after(self, conn: Connection, keys: Sequence[str], now: float) -> int:
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


def _count(conn: Connection, key: str, now: float) -> int:
    """One failure counted against `key`; its row's id."""
    return conn.execute("INSERT INTO auth_failures (key, at) VALUES (?, ?) RETURNING id",
                        (key, now)).fetchone()[0]
