"""How far a patron's payments have moved: a marker that changes whenever one of them changes
state, so that a fee list read from Alma before the change is not used after it
(proxy/fee_cache.py)."""

from __future__ import annotations

from proxy.ledger.store import Store
from proxy.states import OPEN_ALLOCATIONS, AllocationState, PaymentState

WAITING_SHARES = (AllocationState.PLANNED, *OPEN_ALLOCATIONS)


class PatronChanges:
    def __init__(self, store: Store) -> None:
        self.store = store

    def marker(self, patron_id: str) -> tuple[int, float, int]:
        """(payments that have left `pending`, when the latest of them changed, shares that
        have left the posting queue). Starting a payment changes none: its fees in Alma are
        as they were. A share posted while its payment stays `paid` releases its fee's hold,
        so it must move the marker too."""
        row = self.store.db.read_one(
            "SELECT COUNT(*) AS moved, COALESCE(MAX(updated_at), 0) AS latest FROM payments"
            " WHERE patron_id = ? AND state != ?", (patron_id, PaymentState.PENDING.value))
        shares = self.store.db.read_one(
            "SELECT COUNT(*) AS settled FROM allocations JOIN payments"
            " ON payments.id = allocations.payment_id WHERE payments.patron_id = ?"
            " AND allocations.state NOT IN (?, ?, ?)",
            (patron_id, *(state.value for state in WAITING_SHARES)))
        if row is None or shares is None:
            return (0, 0.0, 0)
        return (row["moved"], row["latest"], shares["settled"])
