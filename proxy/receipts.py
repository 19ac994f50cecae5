"""Receipts: a signed token that names a payment without a session (a receipt link can be kept,
printed or opened on another device), and what a receipt shows.

A token works for `PATRONPAY_RECEIPT_DAYS` (docs/security.md#receipts): long enough to show a
payment to the library or the bank after a month's statement, short enough that a link left in
a shared computer's history or a forwarded e-mail stops showing a patron's payment one day.
A payment id alone never gets a receipt; the patron's own session always does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

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


@dataclass(frozen=True)
class ReceiptLink:
    """What a token names: a payment, and whether the link has expired."""

    payment_id: str
    expired: bool


class ReceiptTokens:
    def __init__(self, secret_keys: Sequence[str], max_age_seconds: float = 30 * 86400,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age_seconds = max_age_seconds
        # itsdangerous signs with the last key of its list; ours signs with the first.
        self._signer = _Timed(list(reversed(secret_keys)), salt="receipt-t")
        self._signer.clock = clock
        self._untimed = signer(secret_keys, "receipt")  # links made before tokens expired

    @property
    def clock(self) -> Callable[[], float]:
        return self._signer.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._signer.clock = clock

    def token(self, payment_id: str) -> str:
        return self._signer.dumps(payment_id)

    def read(self, token: str) -> ReceiptLink | None:
        """The payment a genuine token names (expired or not); None for anything forged."""
        try:
            value = self._signer.loads(token, max_age=self.max_age_seconds)
            expired = False
        except SignatureExpired:
            value, expired = self._signer.loads(token), True
        except BadSignature:
            value, expired = self._untimed_payment_id(token), True
        return ReceiptLink(value, expired) if isinstance(value, str) and value else None

    def payment_id(self, token: str) -> str | None:
        """The payment a genuine, unexpired token names."""
        link = self.read(token)
        return link.payment_id if link is not None and not link.expired else None

    def _untimed_payment_id(self, token: str) -> str | None:
        try:
            value = self._untimed.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


class _Timed(URLSafeTimedSerializer):
    """A timed serializer whose clock can be moved (tests)."""

    clock: Callable[[], float] = time.time

    def make_signer(self, salt=None):  # type: ignore[no-untyped-def]
        made = super().make_signer(salt)
        made.get_timestamp = lambda: int(self.clock())  # type: ignore[method-assign]
        return made


def receipt_json(payment: PaymentRecord, first_name: str = "", institution: str = "") -> dict:
    """The receipt: no patron id or e-mail (the link can be shared by accident). In a
    consortium it names the institution (its code) whose payment it is: the one the payment
    records, else `institution`, the one whose ledger holds it."""
    shown = payment.institution or institution
    return {
        "payment": ({"institution": shown} if shown else {}) | {
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
