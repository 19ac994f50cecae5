"""A patron's request, at a kiosk, for the e-mailed receipt of one payment
(docs/kiosk.md#e-mailed-receipt): one event on the payment's trail, at most one per payment.

The event is the request: the mail outbox derives the receipt from it (proxy/mail/outbox.py),
so the request is as durable, and the mail as exactly-once, as any other receipt.
"""

from __future__ import annotations

from proxy.ledger.store import Store
from proxy.states import EventKind, PaymentState

_REQUESTED = "SELECT 1 FROM events WHERE payment_id = ? AND kind = ? LIMIT 1"
# The money was taken: the receipt is mailed once the payment is posted.
REQUESTABLE_STATES = frozenset({PaymentState.PAID, PaymentState.POSTED})


class ReceiptRequests:
    def __init__(self, store: Store) -> None:
        self.store = store

    def requested(self, payment_id: str) -> bool:
        return self.store.db.read_one(_REQUESTED, (payment_id, EventKind.RECEIPT_REQUESTED)) \
            is not None

    def request(self, payment_id: str, source: str, detail: dict) -> bool:
        """Record the request; False when this payment's receipt was already requested or the
        payment is not (or no longer) paid. Checked and written in one transaction, so two
        requests at once record one."""
        with self.store.transaction() as tx:
            row = tx.execute("SELECT state FROM payments WHERE id = ?", (payment_id,)).fetchone()
            if row is None or row["state"] not in REQUESTABLE_STATES:
                return False
            if tx.execute(_REQUESTED, (payment_id, EventKind.RECEIPT_REQUESTED)).fetchone():
                return False
            tx.event(payment_id, EventKind.RECEIPT_REQUESTED, source, detail)
            return True
