"""What staff do to a payment the service could not finish: retry it, record that they
settled it by hand, or record the money CashNet took when its notification never came."""

from __future__ import annotations

from decimal import Decimal

from proxy.database.base import Row
from proxy.ledger.reads import Reads
from proxy.ledger.records import PaymentRecord
from proxy.ledger.store import Store, Transaction
from proxy.ledger.unmatched import tx_owner
from proxy.money import format_amount, from_cents, to_cents
from proxy.states import (
    RETRYABLE_ALLOCATIONS,
    UNSETTLED,
    AllocationState,
    EventKind,
    PaymentState,
)


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

    def record_paid(self, payment_id: str, *, cashnet_tx: str, amount: Decimal, note: str,
                    actor: str, amount_differs: bool = False) -> PaymentRecord:
        """Staff saw the money in CashNet but no usable notification came: record it as CashNet
        would have (`paid`, transaction `cashnet_tx`), and the worker posts it to Alma once.
        Refused (ValueError, nothing changed) for a payment CashNet already settled, a
        transaction already in the ledger, or, without `amount_differs`, an amount other than
        the one issued. A different amount is spread over the payment's fees oldest first;
        more than was issued is held for staff (the payment ends in attention)."""
        cashnet_tx = cashnet_tx.strip()
        if not note.strip():
            raise ValueError("a note saying what you saw in CashNet is required")
        if not cashnet_tx or not cashnet_tx.isascii() or not cashnet_tx.isprintable():
            raise ValueError("--tx must be CashNet's transaction number")
        if amount <= 0:
            raise ValueError("--amount must be above zero")
        with self.store.transaction() as tx:
            row = _payment_row(tx, payment_id)
            waiting = row["state"] in UNSETTLED or (
                row["state"] == PaymentState.ATTENTION and not row["cashnet_tx"])
            if not waiting or row["cashnet_tx"]:
                raise ValueError(f"payment {payment_id} is {row['state']}; only a payment "
                                 "CashNet never confirmed can be recorded as paid")
            owner = tx_owner(tx.conn, cashnet_tx)
            if owner is not None:
                raise ValueError(f"CashNet transaction {cashnet_tx} is already in the ledger"
                                 + (f" (payment {owner})" if owner else ""))
            issued = from_cents(row["amount_cents"])
            if amount != issued and not amount_differs:
                raise ValueError(f"payment {payment_id} was issued for {format_amount(issued)}, "
                                 f"not {format_amount(amount)}; check CashNet, then add "
                                 "--amount-differs to record what it took")
            now = self.store.clock()
            tx.execute("UPDATE payments SET cashnet_tx = ?, amount_cents = ?, paid_at = ?,"
                       " updated_at = ? WHERE id = ?",
                       (cashnet_tx, to_cents(amount), now, now, payment_id))
            respread = _spread(tx, payment_id, amount) if amount != issued else []
            tx.execute("UPDATE allocations SET state = ?, next_attempt_at = ?"
                       " WHERE payment_id = ? AND state = ?",
                       (AllocationState.QUEUED, now, payment_id, AllocationState.PLANNED))
            tx.set_state(payment_id, PaymentState.PAID, "", f"staff:{actor}", {
                "action": "record_paid", "from": row["state"], "tx": cashnet_tx,
                "amount": format_amount(amount), "issued": format_amount(issued),
                "note": note, "allocations": respread})
        return self.reads.payment(payment_id)  # type: ignore[return-value]


def _spread(tx: Transaction, payment_id: str, amount: Decimal) -> list[dict]:
    """Re-spread the planned shares over what CashNet took, oldest fee first (the order they
    were planned in); a share left with nothing is dropped (the trail keeps the plan). Money
    beyond the plan waits for staff in a failed row of its own. Returns the new shares."""
    remaining = to_cents(amount)
    rows = tx.execute("SELECT id, fee_id, amount_cents FROM allocations"
                      " WHERE payment_id = ? AND state = ? ORDER BY id",
                      (payment_id, AllocationState.PLANNED)).fetchall()
    shares = []
    for row in rows:
        share = min(remaining, row["amount_cents"])
        remaining -= share
        if share:
            tx.execute("UPDATE allocations SET amount_cents = ? WHERE id = ?",
                       (share, row["id"]))
            shares.append({"fee_id": row["fee_id"], "amount": format_amount(from_cents(share))})
        else:
            tx.execute("DELETE FROM allocations WHERE id = ?", (row["id"],))
    if remaining and rows:
        last = rows[-1]
        tx.execute(
            "INSERT INTO allocations (payment_id, fee_id, fee_type, fee_label, planned_cents,"
            " amount_cents, unapplied_cents, state, origin, outcome)"
            " SELECT payment_id, fee_id, fee_type, fee_label, 0, 0, ?, ?, 'staff',"
            " 'CashNet took more than was issued' FROM allocations WHERE id = ?",
            (remaining, AllocationState.FAILED, last["id"]))
        shares.append({"fee_id": last["fee_id"], "unapplied": format_amount(from_cents(remaining))})
    return shares


def _payment_row(tx: Transaction, payment_id: str) -> Row:
    row = tx.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
    if row is None:
        raise LookupError(f"no payment {payment_id}")
    return row
