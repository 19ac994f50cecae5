"""One payment at a time for the same fees (docs/architecture.md#payments-in-progress).

A fee is held while a payment covering it is in progress: `pending` and younger than the hold,
or `paid` with its share still to post to Alma. A new payment may cover no held fee, and a
patron may have only so many pending payments open at once. Both are decided in the write
transaction that inserts the payment (`BEGIN IMMEDIATE`), so two tabs, two processes, or the
web and a kiosk at the same instant cannot both start a payment for the same fee.

A patron may also cancel a pending payment of theirs: our side forgets it (`cancelled`), and a
success CashNet sends for it later still counts, as for any cancelled payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proxy.database.base import Connection
from proxy.ledger.entries import insert_payment
from proxy.ledger.reads import Reads
from proxy.ledger.records import PaymentRecord, payment_from
from proxy.ledger.store import Store
from proxy.states import OPEN_ALLOCATIONS, AllocationState, PaymentState

PATRON_CANCELLED = "cancelled by the patron"


@dataclass(frozen=True)
class HoldRules:
    """How long a pending payment holds its fees, and how many may be open per patron."""

    pending_hold_seconds: float = 20 * 60
    max_open: int = 3


@dataclass(frozen=True)
class InProgress:
    """A payment in progress and the fees it holds."""

    payment: PaymentRecord
    fee_ids: frozenset[str]

    @property
    def open(self) -> bool:
        """Still at CashNet (the patron may go back to it, or cancel it)."""
        return self.payment.state == PaymentState.PENDING


class PaymentInProgress(Exception):
    """A new payment was refused: `reason` is "overlap" (it covers a held fee) or "too_many"
    (the patron has the most open payments allowed); `payments` are the ones in the way."""

    def __init__(self, reason: str, payments: Sequence[InProgress]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.payments = tuple(payments)


class Holds:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

    def in_progress(self, patron_id: str, rules: HoldRules) -> list[InProgress]:
        """The patron's payments in progress, oldest first, each with the fees it holds."""
        return _in_progress(self.store.db.connection(), patron_id, rules,
                            self.store.clock())

    def start(self, rules: HoldRules, **payment: Any) -> PaymentRecord:
        """Insert a pending payment (the fields of `insert_payment`) unless it overlaps a
        payment in progress or the patron has `max_open` pending payments open; raises
        PaymentInProgress then, having written nothing."""
        wanted = {fee_id for fee_id, *_ in payment["allocations"]}
        with self.store.transaction() as tx:
            current = _in_progress(tx.conn, payment["patron_id"], rules, tx.clock())
            overlapping = [p for p in current if p.fee_ids & wanted]
            if overlapping:
                raise PaymentInProgress("overlap", overlapping)
            still_open = [p for p in current if p.open]
            if len(still_open) >= rules.max_open:
                raise PaymentInProgress("too_many", still_open)
            insert_payment(tx, **payment)
        record = self.reads.payment(payment["payment_id"])
        assert record is not None
        return record

    def cancel(self, payment_id: str, patron_id: str, source: str) -> PaymentRecord:
        """The patron gives up a pending payment of theirs. Raises LookupError (none of
        theirs) or ValueError (no longer pending: CashNet already answered)."""
        with self.store.transaction() as tx:
            row = tx.execute("SELECT state, patron_id FROM payments WHERE id = ?",
                             (payment_id,)).fetchone()
            if row is None or row["patron_id"] != patron_id:
                raise LookupError(payment_id)
            if row["state"] != PaymentState.PENDING:
                raise ValueError(f"payment is {row['state']}")
            tx.set_state(payment_id, PaymentState.CANCELLED, PATRON_CANCELLED, source,
                         {"from": PaymentState.PENDING})
        return self.reads.payment(payment_id)  # type: ignore[return-value]


def _in_progress(conn: Connection, patron_id: str, rules: HoldRules,
                 now: float) -> list[InProgress]:
    rows = conn.execute(
        "SELECT * FROM payments WHERE patron_id = ? AND ((state = ? AND created_at > ?)"
        " OR state = ?) ORDER BY created_at, id",
        (patron_id, PaymentState.PENDING, now - rules.pending_hold_seconds,
         PaymentState.PAID)).fetchall()
    found = []
    for row in rows:
        payment = payment_from(row, conn)
        # A paid payment holds only the fees whose share is not in Alma yet: once posted,
        # Alma's own balance tells the truth.
        holding = (AllocationState.PLANNED,) if payment.state == PaymentState.PENDING \
            else OPEN_ALLOCATIONS
        fee_ids = frozenset(a.fee_id for a in payment.allocations if a.state in holding)
        if fee_ids:
            found.append(InProgress(payment, fee_ids))
    return found
