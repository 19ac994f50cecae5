"""The posting queue: which paid payment a worker takes next, and the leases that keep two
workers (in one process or several) off the same payment.

A lease is taken in the same `BEGIN IMMEDIATE` transaction that finds the payment due, so two
workers can never both claim it; it runs out on its own if its worker dies.

On PostgreSQL a claim does not take the ledger's write lock: it locks the payment's row with
`FOR NO KEY UPDATE SKIP LOCKED`, so claimers on every instance take different payments at the
same time instead of queueing behind each other and behind the writers. The lease stays the
claim, and exactly-once still rests where it did: each payment call is preceded by
`mark_sending`, which checks the lease under the write lock (docs/architecture.md#the-ledger).
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.database.base import Connection
from proxy.ledger.store import Store
from proxy.states import OPEN_ALLOCATIONS, EventKind, PaymentState

# The values of `p.state = ? AND a.state IN (?, ?)`: paid payments (p) with an allocation (a)
# still to post. A change in the number of open states fails the statements loudly.
_OPEN = (PaymentState.PAID, *OPEN_ALLOCATIONS)
_DUE = (" FROM allocations a JOIN payments p ON p.id = a.payment_id"
        " LEFT JOIN leases l ON l.payment_id = a.payment_id"
        " WHERE p.state = ? AND a.state IN (?, ?)"
        " AND a.next_attempt_at <= ? AND (l.until IS NULL OR l.until < ?)")
_TAKE = ("INSERT INTO leases (payment_id, owner, until) VALUES (?, ?, ?)"
         " ON CONFLICT (payment_id) DO UPDATE SET owner = excluded.owner, until = excluded.until")
# Claims on PostgreSQL: a claimer that finds its pick taken by another in the meantime tries
# the next one, this many times in all.
SKIP_LOCKED_TRIES = 3


class Queue:
    def __init__(self, store: Store) -> None:
        self.store = store

    def claim_due_payment(self, owner: str, lease_seconds: float) -> str | None:
        """Take the lease on one paid payment with an allocation due, or return None."""
        if self.store.db.dialect == "postgresql":
            return self._claim_skipping_locked(owner, lease_seconds)
        now = self.store.clock()
        with self.store.transaction() as tx:
            row = tx.execute("SELECT a.payment_id" + _DUE + " ORDER BY a.next_attempt_at LIMIT 1",
                             (*_OPEN, now, now)).fetchone()
            if row is None:
                return None
            tx.execute(_TAKE, (row["payment_id"], owner, now + lease_seconds))
            return row["payment_id"]

    def _claim_skipping_locked(self, owner: str, lease_seconds: float) -> str | None:
        """PostgreSQL: the payment's row lock is the claim's mutual exclusion. The first
        statement's snapshot may predate another claimer's commit (its lease unseen), so once
        the row is locked the payment is checked again by a statement that sees every commit
        made before the lock was granted."""
        for _ in range(SKIP_LOCKED_TRIES):
            now = self.store.clock()
            with self.store.db.unlocked() as tx:
                row = tx.execute(
                    "SELECT a.payment_id" + _DUE + " ORDER BY a.next_attempt_at LIMIT 1"
                    " FOR NO KEY UPDATE OF p SKIP LOCKED", (*_OPEN, now, now)).fetchone()
                if row is None:
                    return None
                payment_id = row["payment_id"]
                still_due = tx.execute("SELECT 1" + _DUE + " AND a.payment_id = ? LIMIT 1",
                                       (*_OPEN, now, now, payment_id)).fetchone()
                if still_due is not None:
                    tx.execute(_TAKE, (payment_id, owner, now + lease_seconds))
                    return payment_id
        return None

    def break_leases(self, owner_is_dead: Callable[[str], bool]) -> list[str]:
        """Drop live leases whose owner is known to be dead (a process on this host that
        crashed), so its payments are picked up as soon as they are due instead of when the
        lease runs out. An allocation that was being sent stays untouched until its
        `next_attempt_at`, so a payment call still in flight lands before anyone looks."""
        now = self.store.clock()
        leases = self.store.db.read("SELECT payment_id, owner FROM leases WHERE until >= ?",
                                    (now,))
        dead = [(row["payment_id"], row["owner"]) for row in leases if owner_is_dead(row["owner"])]
        if not dead:
            return []
        broken = []
        with self.store.transaction() as tx:
            for payment_id, owner in dead:
                gone = tx.execute("DELETE FROM leases WHERE payment_id = ? AND owner = ?",
                                  (payment_id, owner)).rowcount
                if gone:
                    broken.append(payment_id)
                    tx.event(payment_id, EventKind.LEASE_BROKEN, "worker", {"owner": owner})
        return broken

    def release(self, payment_id: str, owner: str) -> None:
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM leases WHERE payment_id = ? AND owner = ?",
                       (payment_id, owner))

    def posting_started_at(self, payment_id: str) -> float | None:
        """When the payment last became `paid` (CashNet's notice, or a staff retry): the start
        of the give-up horizon, so a retry after a long outage gets a horizon of its own."""
        row = self.store.db.read_one(
            "SELECT MAX(at) AS at FROM events WHERE payment_id = ? AND kind = ?",
            (payment_id, EventKind.PAID))
        return row["at"] if row else None

    def next_due_at(self) -> float | None:
        row = self.store.db.read_one(
            "SELECT MIN(a.next_attempt_at) AS due FROM allocations a"
            " JOIN payments p ON p.id = a.payment_id"
            " WHERE p.state = ? AND a.state IN (?, ?)", _OPEN)
        return row["due"] if row else None

    def paid_with_nothing_left(self) -> list[str]:
        """Paid payments none of whose allocations is still to post: they only need settling."""
        return [row["id"] for row in self.store.db.read(
            "SELECT id FROM payments p WHERE state = ? AND NOT EXISTS (SELECT 1 FROM"
            " allocations a WHERE a.payment_id = p.id AND a.state IN (?, ?))", _OPEN)]


def holds_lease(conn: Connection, payment_id: str, owner: str, now: float) -> bool:
    lease = conn.execute("SELECT owner, until FROM leases WHERE payment_id = ?",
                         (payment_id,)).fetchone()
    return lease is not None and lease["owner"] == owner and lease["until"] > now
