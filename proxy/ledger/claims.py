"""What a patron's browser claims on its way back from CashNet: a hint for reconciliation that
never changes a payment's state (docs/cashnet.md#the-browser-return).

The return route is open to anyone, so it may write at most one note per payment: the first
claim of success for a payment still `pending`. Later claims, and claims for payments that
have moved on, write nothing.
"""

from __future__ import annotations

from proxy.ledger.store import Store
from proxy.states import EventKind, PaymentState

_CLAIMED = "SELECT 1 FROM events WHERE payment_id = ? AND kind = ? LIMIT 1"


class ReturnClaims:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, payment_id: str, detail: dict) -> bool:
        """Note the browser's claim of success once per pending payment; True when noted."""
        # Read first: a flood of returns for one payment must not queue for the write lock.
        if self.store.db.read_one(_CLAIMED, (payment_id, EventKind.RETURN_CLAIMS_SUCCESS)):
            return False
        with self.store.transaction() as tx:
            row = tx.execute("SELECT state FROM payments WHERE id = ?", (payment_id,)).fetchone()
            if row is None or row["state"] != PaymentState.PENDING:
                return False
            if tx.execute(_CLAIMED, (payment_id, EventKind.RETURN_CLAIMS_SUCCESS)).fetchone():
                return False
            tx.event(payment_id, EventKind.RETURN_CLAIMS_SUCCESS, "browser", detail)
            return True
