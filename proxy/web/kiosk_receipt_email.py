"""The kiosk's **E-mail receipt** (docs/kiosk.md#e-mailed-receipt): whether the receipt screen may
offer it for the kiosk session's payment, and the patron's request for it.

Both routes are kiosk requests (signed, checked by `check_signature` before they get here) made
as the kiosk's patron session, and name one payment: it must be that session's own, started at
that kiosk. The request is recorded once, as an event on the payment's trail; the mail worker
sends the receipt when the payment is posted.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy import kiosk_auth
from proxy.ledger import PaymentRecord
from proxy.mail.kiosk_offer import EmailOffer, email_offer
from proxy.patron_sessions import Session
from proxy.web.common import require_session, services
from proxy.web.errors import ApiError
from proxy.web.kiosk import require_kiosk
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.kiosk")


async def get_offer(request: Request) -> Response:
    session, payment = _kiosk_payment(request)
    return JSONResponse({"email": _offer(request, session, payment).to_json()})


async def request_receipt(request: Request) -> Response:
    """The patron chose "E-mail receipt": once per payment, for a paid or posted payment."""
    session, payment = _kiosk_payment(request)
    offer = _offer(request, session, payment)
    if offer.requested:
        raise ApiError(409, "already_requested", "This receipt has already been requested.")
    if not offer.offered:
        raise ApiError(409, "email_unavailable", "This receipt cannot be e-mailed.")
    svc = services(request)
    kiosk_id = kiosk_auth.kiosk_of_channel(session.channel)
    if not svc.ledger.request_receipt_email(payment.id, session.channel,
                                            {"kiosk_id": kiosk_id}):
        # Another request won the race, or the payment moved on meanwhile.
        raise ApiError(409, "already_requested", "This receipt has already been requested.")
    log.info("receipt e-mail requested", extra={"event": "receipt_requested",
                                                "payment_id": payment.id, "kiosk_id": kiosk_id})
    requested = EmailOffer(offered=False, automatic=False, requested=True, to=offer.to)
    return JSONResponse({"email": requested.to_json()}, status_code=202)


def _kiosk_payment(request: Request) -> tuple[Session, PaymentRecord]:
    """The kiosk's patron session and the payment the path names, if it is that session's."""
    kiosk_id = require_kiosk(request)
    session = require_session(request)
    if session.channel != kiosk_auth.channel_for(kiosk_id):
        raise ApiError(403, "not_a_kiosk_session", "This is not this kiosk's session.")
    payment = services(request).ledger.payment(request.path_params["payment_id"])
    if payment is None or payment.session_id != session.id_hash \
            or payment.channel != session.channel:
        raise ApiError(404, "payment_not_found", "No such payment in this session.")
    return session, payment


def _offer(request: Request, session: Session, payment: PaymentRecord) -> EmailOffer:
    requested = services(request).ledger.receipt_email_requested(payment.id)
    return email_offer(services(request).settings, session.patron.email, payment.state,
                       requested)


routes = [
    Route("/api/kiosk/payments/{payment_id}/receipt-email", get_offer, methods=["GET"]),
    Route("/api/kiosk/payments/{payment_id}/receipt-email", request_receipt, methods=["POST"]),
]
