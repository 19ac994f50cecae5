"""What the posting worker records about each allocation as it goes, and the settling of a
payment once none of its allocations is left to post.

`sending` is written before a payment call (while the lease is confirmed held), so after a
crash the worker knows the call may have reached Alma and looks there before paying again.
"""

from __future__ import annotations

from decimal import Decimal

from proxy.database.base import Row
from proxy.ledger.queue import holds_lease
from proxy.ledger.store import Store, Transaction
from proxy.money import format_amount, from_cents, to_cents
from proxy.states import OPEN_ALLOCATIONS, AllocationState, EventKind, PaymentState


class Allocations:
    def __init__(self, store: Store) -> None:
        self.store = store

    def mark_sending(self, allocation_id: int, owner: str, lease_seconds: float,
                     recheck_seconds: float) -> bool:
        """Before a payment call: confirm we still hold the lease and record that the call
        may reach Alma. Returns False (send nothing) if another worker took over."""
        now = self.store.clock()
        with self.store.transaction() as tx:
            alloc = tx.execute("SELECT * FROM allocations WHERE id = ?",
                               (allocation_id,)).fetchone()
            if alloc is None or not holds_lease(tx.conn, alloc["payment_id"], owner, now):
                return False
            tx.execute("UPDATE leases SET until = ? WHERE payment_id = ?",
                       (now + lease_seconds, alloc["payment_id"]))
            tx.execute(
                "UPDATE allocations SET state = ?, last_attempt_at = ?, next_attempt_at = ?"
                " WHERE id = ?", (AllocationState.SENDING, now, now + recheck_seconds,
                                  allocation_id))
            return True

    def mark_posted(self, allocation_id: int, outcome: str) -> None:
        with self.store.transaction() as tx:
            alloc = _allocation_row(tx, allocation_id)
            tx.execute("UPDATE allocations SET state = ?, outcome = ?, next_attempt_at = NULL"
                       " WHERE id = ?", (AllocationState.POSTED, outcome, allocation_id))
            tx.event(alloc["payment_id"], EventKind.ALLOCATION_POSTED, "worker",
                     {"fee_id": alloc["fee_id"],
                      "amount": format_amount(from_cents(alloc["amount_cents"])),
                      "outcome": outcome})

    def mark_retry(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        """A transient failure: try again later. The state is kept: a `sending` allocation
        still needs a look at Alma before any new payment call."""
        with self.store.transaction() as tx:
            alloc = _allocation_row(tx, allocation_id)
            tx.execute("UPDATE allocations SET outcome = ?, next_attempt_at = ?,"
                       " attempts = attempts + 1 WHERE id = ?",
                       (outcome, next_attempt_at, allocation_id))
            tx.event(alloc["payment_id"], EventKind.ALLOCATION_RETRY, "worker",
                     {"fee_id": alloc["fee_id"], "outcome": outcome,
                      "next_attempt_at": next_attempt_at})

    def mark_not_sent(self, allocation_id: int, next_attempt_at: float, outcome: str) -> None:
        """The payment call certainly never reached Alma: back to queued, no look needed."""
        with self.store.transaction() as tx:
            alloc = _allocation_row(tx, allocation_id)
            tx.execute("UPDATE allocations SET state = ?, outcome = ?, next_attempt_at = ?,"
                       " attempts = attempts + 1 WHERE id = ?",
                       (AllocationState.QUEUED, outcome, next_attempt_at, allocation_id))
            tx.event(alloc["payment_id"], EventKind.ALLOCATION_RETRY, "worker",
                     {"fee_id": alloc["fee_id"], "outcome": outcome,
                      "next_attempt_at": next_attempt_at})

    def mark_failed(self, allocation_id: int, outcome: str) -> None:
        """Nothing more can be applied automatically; what is left waits for staff."""
        with self.store.transaction() as tx:
            alloc = _allocation_row(tx, allocation_id)
            tx.execute(
                "UPDATE allocations SET state = ?, outcome = ?, next_attempt_at = NULL,"
                " unapplied_cents = unapplied_cents + amount_cents, amount_cents = 0"
                " WHERE id = ?", (AllocationState.FAILED, outcome, allocation_id))
            tx.event(alloc["payment_id"], EventKind.ALLOCATION_FAILED, "worker",
                     {"fee_id": alloc["fee_id"], "outcome": outcome,
                      "unapplied": format_amount(from_cents(alloc["amount_cents"]))})

    def reduce_allocation(self, allocation_id: int, applicable: Decimal, reason: str,
                          moves: list[tuple[str, str, str, Decimal]], *, lease: str) -> bool:
        """The fee holds less than we meant to pay: apply only `applicable` here, send the
        `moves` (fee id, fee type, amount) to other fees, and hold any rest for staff.
        Returns False (changing nothing) when `lease` no longer holds the payment."""
        with self.store.transaction() as tx:
            alloc = _allocation_row(tx, allocation_id)
            if not holds_lease(tx.conn, alloc["payment_id"], lease, self.store.clock()):
                return False
            surplus = alloc["amount_cents"] - to_cents(applicable)
            moved = sum(to_cents(amount) for *_, amount in moves)
            if surplus <= 0 or moved > surplus:
                raise ValueError("reduce_allocation needs a smaller applicable amount")
            now = self.store.clock()
            rest = surplus - moved
            if applicable > 0:
                tx.execute("UPDATE allocations SET amount_cents = ?, state = ?, outcome = ?,"
                           " next_attempt_at = ? WHERE id = ?",
                           (to_cents(applicable), AllocationState.QUEUED, reason, now,
                            allocation_id))
                if rest:
                    # The rest waits for staff in a row of its own, so its reason survives
                    # the posting of the part that fits (and `retry` can try it again).
                    tx.execute(
                        "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label,"
                        " planned_cents, amount_cents, unapplied_cents, state, origin, outcome)"
                        " VALUES (?, ?, ?, ?, 0, 0, ?, ?, 'rest the fee could not take', ?)",
                        (alloc["payment_id"], alloc["fee_id"], alloc["fee_type"],
                         alloc["fee_label"], rest, AllocationState.FAILED, reason))
            else:
                state = AllocationState.MOVED if moved == surplus else AllocationState.FAILED
                tx.execute(
                    "UPDATE allocations SET amount_cents = 0, unapplied_cents = unapplied_cents"
                    " + ?, state = ?, outcome = ?, next_attempt_at = NULL WHERE id = ?",
                    (rest, state, reason, allocation_id))
            tx.executemany(
                "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
                " amount_cents, state, origin, next_attempt_at)"
                " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [(alloc["payment_id"], fee_id, fee_type, label, to_cents(amount),
                  AllocationState.QUEUED, f"moved from fee {alloc['fee_id']}", now)
                 for fee_id, fee_type, label, amount in moves])
            tx.event(alloc["payment_id"], EventKind.ALLOCATION_REDUCED, "worker", {
                "fee_id": alloc["fee_id"], "reason": reason,
                "applicable": format_amount(applicable),
                "moved": [{"fee_id": f, "amount": format_amount(a)} for f, _, _, a in moves],
                "unapplied": format_amount(from_cents(surplus - moved))})
        return True

    def settle_if_done(self, payment_id: str) -> str:
        """When no allocation is left to post: posted, or attention if money is unapplied.
        Returns the payment's state afterwards ("" for no such payment)."""
        with self.store.transaction() as tx:
            payment = tx.execute("SELECT state FROM payments WHERE id = ?",
                                 (payment_id,)).fetchone()
            if payment is None or payment["state"] != PaymentState.PAID:
                return PaymentState(payment["state"]) if payment else ""
            rows = tx.execute("SELECT state, unapplied_cents, outcome FROM allocations"
                              " WHERE payment_id = ?", (payment_id,)).fetchall()
            if any(row["state"] in OPEN_ALLOCATIONS for row in rows):
                return PaymentState.PAID
            unapplied = sum(row["unapplied_cents"] for row in rows)
            if unapplied:
                reasons = sorted({row["outcome"] for row in rows if row["unapplied_cents"]})
                reason = f"{format_amount(from_cents(unapplied))} not applied in Alma: " \
                         + "; ".join(reasons)
                tx.set_state(payment_id, PaymentState.ATTENTION, reason, "worker",
                             {"unapplied": format_amount(from_cents(unapplied))})
                return PaymentState.ATTENTION
            tx.execute("UPDATE payments SET posted_at = ? WHERE id = ?",
                       (self.store.clock(), payment_id))
            tx.set_state(payment_id, PaymentState.POSTED, "", "worker", {})
            return PaymentState.POSTED


def _allocation_row(tx: Transaction, allocation_id: int) -> Row:
    row = tx.execute("SELECT * FROM allocations WHERE id = ?", (allocation_id,)).fetchone()
    if row is None:
        raise LookupError(f"no allocation {allocation_id}")
    return row
