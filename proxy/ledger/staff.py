"""What staff do to a payment the service could not finish: retry it, or record that they
settled it by hand."""

from __future__ import annotations

import sqlite3

from proxy.ledger.reads import Reads
from proxy.ledger.records import PaymentRecord
from proxy.ledger.store import Store, Transaction
from proxy.states import RETRYABLE_ALLOCATIONS, AllocationState, EventKind, PaymentState


class StaffActions:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

    def retry(self, payment_id: str, actor: str) -> PaymentRecord:
        """Send a payment in attention back to the worker: failed allocations are queued
        again (their unapplied money with them). The worker looks at Alma before paying, as
        always, and gets a new give-up horizon."""
        with self.store.transaction() as tx:
            row = _payment_row(tx, payment_id)
            if row["state"] != PaymentState.ATTENTION or not row["cashnet_tx"]:
                raise ValueError(f"payment {payment_id} is {row['state']}; only a payment in "
                                 "attention with a CashNet transaction can be retried")
            now = self.store.clock()
            tx.execute(
                "UPDATE allocations SET state = ?, next_attempt_at = ?, attempts = 0,"
                " amount_cents = amount_cents + unapplied_cents, unapplied_cents = 0"
                " WHERE payment_id = ? AND state IN (?, ?)",
                (AllocationState.QUEUED, now, payment_id, *RETRYABLE_ALLOCATIONS))
            tx.set_state(payment_id, PaymentState.PAID, "", f"staff:{actor}",
                         {"action": "retry"})
        return self.reads.payment(payment_id)  # type: ignore[return-value]

    def resolve(self, payment_id: str, note: str, actor: str) -> PaymentRecord:
        """Staff settled it outside patronpay (refund, manual posting): record and close."""
        if not note.strip():
            raise ValueError("a note saying what was done is required")
        with self.store.transaction() as tx:
            row = _payment_row(tx, payment_id)
            if row["state"] != PaymentState.ATTENTION and not row["review"]:
                raise ValueError(f"payment {payment_id} is {row['state']} and needs nothing")
            tx.execute("UPDATE payments SET review = '' WHERE id = ?", (payment_id,))
            if row["state"] == PaymentState.ATTENTION:
                tx.set_state(payment_id, PaymentState.RESOLVED, note, f"staff:{actor}",
                             {"note": note})
            else:
                tx.event(payment_id, EventKind.REVIEW_CLEARED, f"staff:{actor}",
                         {"note": note})
        return self.reads.payment(payment_id)  # type: ignore[return-value]


def _payment_row(tx: Transaction, payment_id: str) -> sqlite3.Row:
    row = tx.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
    if row is None:
        raise LookupError(f"no payment {payment_id}")
    return row
