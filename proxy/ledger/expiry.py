"""Timers: a payment CashNet never told us about does not stay pending for ever."""

from __future__ import annotations

from proxy.ledger.store import Store
from proxy.states import PaymentState


class Expiry:
    def __init__(self, store: Store) -> None:
        self.store = store

    def expire_pending(self, older_than_seconds: float) -> list[str]:
        """Pending payments with no notification for too long become expired. A success
        arriving later still settles them (see notices)."""
        cutoff = self.store.clock() - older_than_seconds
        with self.store.transaction() as tx:
            ids = [row["id"] for row in tx.execute(
                "SELECT id FROM payments WHERE state = ? AND created_at < ?",
                (PaymentState.PENDING, cutoff))]
            for payment_id in ids:
                tx.set_state(payment_id, PaymentState.EXPIRED, "no CashNet notification",
                             "timer", {"from": PaymentState.PENDING})
        return ids
