"""What a kiosk's receipt screen may offer by e-mail for one payment
(docs/kiosk.md#e-mailed-receipt): **E-mail receipt** when the proxy can mail receipts and the
patron has a usable address in Alma; only a masked hint of that address, never the address, since
others may read a kiosk's screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.config import Settings
from proxy.ledger.receipt_requests import REQUESTABLE_STATES
from proxy.mail.addresses import masked, plain_address

ASK, ALWAYS = "ask", "always"


@dataclass(frozen=True)
class EmailOffer:
    offered: bool  # the screen may show "E-mail receipt"
    automatic: bool  # the receipt is mailed anyway (PATRONPAY_KIOSK_RECEIPT_EMAIL=always)
    requested: bool  # the patron has asked for it
    to: str  # where it goes, masked (`m•••@example.edu`); "" when it cannot go anywhere

    def to_json(self) -> dict:
        return {"offered": self.offered, "automatic": self.automatic,
                "requested": self.requested, "to": self.to}


NONE = EmailOffer(offered=False, automatic=False, requested=False, to="")


def email_offer(settings: Settings, patron_email: str, state: str,
                requested: bool) -> EmailOffer:
    """The offer for a payment in `state`, to the address the patron's session read from Alma
    (the mail itself goes to the address Alma holds when the receipt is written)."""
    address = plain_address(patron_email)
    if not (settings.smtp_url and settings.receipt_email) or address is None:
        return NONE
    to = masked(address)
    if settings.kiosk_receipt_email == ALWAYS:
        return EmailOffer(offered=False, automatic=True, requested=False, to=to)
    return EmailOffer(offered=state in REQUESTABLE_STATES and not requested, automatic=False,
                      requested=requested, to=to)
