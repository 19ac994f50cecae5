"""The session and patron request buckets kept in the PostgreSQL ledger, so that several
instances behind one load balancer give a patron one budget between them, not one each
(docs/security.md#rate-limits, docs/deploy.md#two-nodes).

A bucket is one row of `rate_buckets`: its tokens at a time read from the database's clock
(hosts' clocks need not agree); a missing row is a full bucket. A request locks its buckets'
rows (in name order, so two requests never wait on each other in a circle), tops them up for
the time passed, and takes a token from each or from none, as the in-memory buckets do
(proxy/rate_limit.py `take_all`). The rows' own locks serialise this, not the ledger's write
lock: a flood of page reloads never queues behind payments.

Rows idle long enough to have refilled mean the same as no row; every `PRUNE_EVERY` requests
an instance deletes them, so the table holds only recently active sessions and patrons.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

from proxy.database.postgres import PostgresDatabase
from proxy.rate_limit import TokenBuckets

PRUNE_EVERY = 500
_HOLD = ("INSERT INTO rate_buckets AS b (name, tokens, at)"
         " VALUES (?, ?, extract(epoch FROM clock_timestamp())::float8)"
         " ON CONFLICT (name) DO UPDATE SET tokens = b.tokens"  # takes the row's lock
         " RETURNING b.tokens, b.at, extract(epoch FROM clock_timestamp())::float8")
_SPEND = "UPDATE rate_buckets SET tokens = ?, at = ? WHERE name = ?"
_PRUNE = "DELETE FROM rate_buckets WHERE at < extract(epoch FROM clock_timestamp())::float8 - ?"


def patron_key(patron_id: str) -> str:
    """A patron's bucket name: the table holds no patron identifiers."""
    return hashlib.sha256(patron_id.encode()).hexdigest()[:32]


class SharedBuckets:
    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self._requests = itertools.count(1)

    def take_all(self, claims: Sequence[tuple[TokenBuckets, str]]) -> float:
        """One token from each (buckets, name), or none from any: 0.0, or the seconds to
        wait. The buckets give each bucket's burst and rate; the tokens are in the table."""
        ordered = sorted(claims, key=lambda claim: claim[1])
        with self.db.unlocked() as tx:
            levels = []
            for buckets, name in ordered:
                tokens, at, now = tx.execute(_HOLD, (name, buckets.burst)).fetchone()
                level = min(buckets.burst, tokens + max(0.0, now - at) * buckets.per_second)
                levels.append((buckets, name, level, now))
            wait = max(((1.0 - level) / buckets.per_second
                        for buckets, _, level, _ in levels if level < 1.0), default=0.0)
            if wait == 0.0:
                for _, name, level, now in levels:
                    tx.execute(_SPEND, (level - 1.0, now, name))
        if next(self._requests) % PRUNE_EVERY == 0:
            self.prune([buckets for buckets, _ in claims])
        return wait

    def prune(self, kinds: Sequence[TokenBuckets]) -> None:
        """Forget the buckets idle long enough to be full again, whatever their kind."""
        idle = max(buckets.burst / buckets.per_second for buckets in kinds)
        with self.db.unlocked() as tx:
            tx.execute(_PRUNE, (idle,))
