"""Tokens that work once (a Primo token's `jti`): spent in the ledger database, so every proxy
process refuses a replay, and remembered until the token would have expired anyway."""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.db import Database

PURGE_EVERY_SECONDS = 600.0


class SpentTokens:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def is_spent(self, token_id: str) -> bool:
        """True when `token_id` was spent and is still remembered. Only a read, for refusing a
        replay early (before it costs anything); `spend` alone decides who wins a race."""
        row = self.db.read_one("SELECT 1 AS spent FROM spent_tokens WHERE token_id = ? AND "
                               "until >= ?", (token_id, self.clock()))
        return row is not None

    def spend(self, token_id: str, until: float) -> bool:
        """Mark `token_id` used until `until` (epoch seconds). False when it already was: the
        insert is the check, so two requests racing with one token cannot both win."""
        now = self.clock()
        with self.db.write() as conn:
            oldest = conn.execute("SELECT MIN(until) FROM spent_tokens").fetchone()[0]
            if oldest is not None and oldest < now - PURGE_EVERY_SECONDS:
                conn.execute("DELETE FROM spent_tokens WHERE until < ?", (now,))
            else:
                conn.execute("DELETE FROM spent_tokens WHERE token_id = ? AND until < ?",
                             (token_id, now))
            inserted = conn.execute(
                "INSERT INTO spent_tokens (token_id, until) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (token_id, max(until, now))).rowcount
        return inserted == 1
