"""How far a patron's payments have moved: a marker that changes whenever one of them changes
state, so that a fee list read from Alma before the change is not used after it
(proxy/fee_cache.py)."""

from __future__ import annotations

from proxy.ledger.store import Store
from proxy.states import PaymentState


class PatronChanges:
    def __init__(self, store: Store) -> None:
        self.store = store

    def marker(self, patron_id: str) -> tuple[int, float]:
        """(payments that have left `pending`, when the latest of them changed). Starting a
        payment changes neither: its fees in Alma are as they were."""
        row = self.store.db.read_one(
            "SELECT COUNT(*) AS moved, COALESCE(MAX(updated_at), 0) AS latest FROM payments"
            " WHERE patron_id = ? AND state != ?", (patron_id, PaymentState.PENDING.value))
        return (row["moved"], row["latest"]) if row else (0, 0.0)
