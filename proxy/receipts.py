"""Receipts: a signed token that names a payment without a session (the patron returns from
CashNet with no cookie), and what a receipt shows."""

from __future__ import annotations

from collections.abc import Sequence

from itsdangerous import BadSignature

from proxy.ledger import PaymentRecord
from proxy.money import format_amount
from proxy.patron_sessions import iso_time, signer
from proxy.states import IN_PROGRESS, AllocationState, PaymentState

# What the patron is told, per payment state.
STATUS_TEXT = {
    PaymentState.PENDING: "Waiting for CashNet to confirm your payment.",
    PaymentState.PAID: "Payment received. Updating your library account.",
    PaymentState.POSTED: "Payment complete. Your library account is updated.",
    PaymentState.DECLINED: "Your card was declined. No money was taken.",
    PaymentState.CANCELLED: "You cancelled the payment. No money was taken.",
    PaymentState.EXPIRED: "This payment was not completed.",
    PaymentState.ATTENTION: "Payment received. Library staff will finish updating your account.",
    PaymentState.RESOLVED: "Payment received and settled by library staff.",
}


class ReceiptTokens:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._signer = signer(secret_keys, "receipt")

    def token(self, payment_id: str) -> str:
        return self._signer.dumps(payment_id)

    def payment_id(self, token: str) -> str | None:
        try:
            value = self._signer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def receipt_json(payment: PaymentRecord, first_name: str = "") -> dict:
    """The receipt: no patron id or e-mail (the link can be shared by accident)."""
    return {
        "payment": {
            "id": payment.id,
            "state": payment.state,
            "status": STATUS_TEXT.get(payment.state, payment.state),
            "final": payment.state not in IN_PROGRESS,
            "amount": format_amount(payment.amount),
            "currency": payment.currency,
            "created": iso_time(payment.created_at),
            "paid": iso_time(payment.paid_at) if payment.paid_at else None,
            "cashnet_tx": payment.cashnet_tx,
            "channel": "kiosk" if payment.channel.startswith("kiosk:") else "web",
            "allocations": [a.to_json() for a in payment.allocations
                            if a.state != AllocationState.MOVED],
        },
        "patron": {"first_name": first_name or payment.patron_name.split(" ")[0]},
    }
