"""Alma's per-second limit held for all instances sharing one PostgreSQL ledger
(docs/alma.md#call-budget, docs/deploy.md#two-nodes).

Each process paces its own calls (proxy/alma_pace.py: evenly, posting first). With several
instances, each call also takes the next free slot of one shared schedule, a row of the
`alma_pace` table: one statement moves the row's next free time on by 1/`per_second`, under
the row's lock and by the database's clock (hosts' clocks need not agree), and says how long
this call must wait for its slot. So the instances together never start more than `per_second`
calls in any second. On SQLite (one machine) there is nothing to share and this is not used.

If the database cannot be reached the call goes at the process's own pace: Alma's limit is a
courtesy worth keeping, not a reason to stop posting money.
"""

from __future__ import annotations

import hashlib
import logging

from proxy.database.errors import Unavailable
from proxy.database.postgres import PostgresDatabase

log = logging.getLogger("patronpay.alma")

_RESERVE = (
    "INSERT INTO alma_pace AS p (name, next_at)"
    " VALUES (%(name)s, extract(epoch FROM clock_timestamp()) + %(gap)s)"
    " ON CONFLICT (name) DO UPDATE SET next_at ="
    " GREATEST(p.next_at, extract(epoch FROM clock_timestamp())) + %(gap)s"
    " RETURNING next_at - %(gap)s - extract(epoch FROM clock_timestamp())")


class SharedBudget:
    """`reserve()`: seconds this call waits for its slot in the shared schedule."""

    def __init__(self, db: PostgresDatabase, api_key: str, per_second: int) -> None:
        self.db = db
        # One schedule per Alma institution (its API key), without storing the key.
        self.name = "alma:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.gap = 1.0 / per_second
        self._warned = False

    def reserve(self) -> float:
        try:
            row = self.db.run_native(_RESERVE, {"name": self.name, "gap": self.gap})
        except Unavailable:
            if not self._warned:
                log.warning("shared Alma budget unreachable: pacing this process alone",
                            extra={"event": "alma_budget_unavailable"})
                self._warned = True
            return 0.0
        self._warned = False
        return max(0.0, float(row[0]))
