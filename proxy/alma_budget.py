"""Alma's per-second limit held for all instances sharing one PostgreSQL ledger
(docs/alma.md#call-budget, docs/deploy.md#two-nodes).

Each process paces its own calls (proxy/alma_pace.py: evenly, posting first). With several
instances, each call also takes the next free slot of one shared schedule, a row of the
`alma_pace` table: one statement moves the row's next free time on by 1/`per_second`, under
the row's lock and by the database's clock (hosts' clocks need not agree), and says how long
this call must wait for its slot. So the instances together never start more than `per_second`
calls in any second. On SQLite (one machine) there is nothing to share and this is not used.

While the database cannot be reached (a restart, a failover) there is no slot to take, and a
call does not go without one: each process pacing itself alone would let the instances
together call at several times the limit (three at 20 a second is 60), and Alma, whose limit
every other integration of the institution shares, answers the excess with 429s for everyone.
So the call waits, asking again every half second (the pool's own wait while the database is
down, and at most one attempt per process per half second), and if no slot comes within the
Alma client's connect timeout it fails as AlmaUnavailable before anything is sent, exactly as
if Alma could not be reached: the posting worker records the allocation as not sent and
retries later (and if that record cannot be written either, the allocation is left `sending`
and the look-before-pay recheck finds nothing applied); a page answers 503. Both already
depend on the same database, so an outage long enough to exhaust the wait stops them anyway.
"""

from __future__ import annotations

import hashlib
import logging
import time

from proxy.database.errors import Unavailable
from proxy.database.postgres import DOWN_WAIT_SECONDS, PostgresDatabase

log = logging.getLogger("patronpay.alma")

_RESERVE = (
    "INSERT INTO alma_pace AS p (name, next_at)"
    " VALUES (%(name)s, extract(epoch FROM clock_timestamp()) + %(gap)s)"
    " ON CONFLICT (name) DO UPDATE SET next_at ="
    " GREATEST(p.next_at, extract(epoch FROM clock_timestamp())) + %(gap)s"
    " RETURNING next_at - %(gap)s - extract(epoch FROM clock_timestamp())")


class SharedBudget:
    """`reserve()`: seconds this call waits for its slot in the shared schedule, or None
    when the schedule cannot be reached (the call must not go yet)."""

    def __init__(self, db: PostgresDatabase, api_key: str, per_second: int) -> None:
        self.db = db
        # One schedule per Alma institution (its API key), without storing the key.
        self.name = "alma:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.gap = 1.0 / per_second
        self._down_until = 0.0  # after a failure, callers are told None without asking
        self._warned = False

    def reserve(self) -> float | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            row = self.db.run_native(_RESERVE, {"name": self.name, "gap": self.gap})
        except Unavailable:
            self._down_until = time.monotonic() + DOWN_WAIT_SECONDS
            if not self._warned:
                log.warning("shared Alma budget unreachable: Alma calls wait for it",
                            extra={"event": "alma_budget_unavailable"})
                self._warned = True
            return None
        self._warned = False
        return max(0.0, float(row[0]))
