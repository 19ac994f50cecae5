"""A patron's own payments: the list of the last twelve months, and what they may do with a
payment in progress: go back to CashNet for it, or cancel it
(docs/architecture.md#payments-in-progress)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.in_progress import (
    HISTORY_DAYS,
    HISTORY_LIMIT,
    HISTORY_STATES,
    history_entry,
    hold_rules,
)
from proxy.ledger import InProgress
from proxy.money import format_amount
from proxy.patron_sessions import Session
from proxy.web.common import require_session, services
from proxy.web.errors import ApiError
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.api")


async def list_payments(request: Request) -> Response:
    """The patron's payments of the last twelve months, newest first, each with its receipt
    token. `?limit=N` (1 to 50) shows fewer: the kiosk asks for three."""
    session = require_session(request)
    svc = services(request)
    limit = _limit(request.query_params.get("limit"))
    since = svc.ledger.clock() - HISTORY_DAYS * 86400
    payments = svc.ledger.recent_payments(session.patron.primary_id, since=since,
                                          states=HISTORY_STATES, limit=limit)
    return JSONResponse({"payments": [history_entry(p, svc.receipts.token(p.id))
                                      for p in payments]})


async def resume_payment(request: Request) -> Response:
    """Back to CashNet for a payment in progress: its hand-off again, unchanged (same
    reference, same lines). Only where it started, as CashNet's sign-out returns there."""
    session = require_session(request)
    item = _in_progress(request, session)
    if not (item.open and item.payment.channel == session.channel):
        raise ApiError(409, "not_resumable", "This payment cannot be continued here.")
    payment = item.payment
    checkout = {key: payment.checkout[key] for key in ("action", "method", "fields")}
    log.info("payment resumed", extra={"event": "payment_resumed", "payment_id": payment.id,
                                       "channel": session.channel})
    return JSONResponse({
        "payment": {"id": payment.id, "state": payment.state,
                    "amount": format_amount(payment.amount),
                    "receipt_token": services(request).receipts.token(payment.id)},
        "checkout": checkout,
    })


async def cancel_payment(request: Request) -> Response:
    """The patron gives up a payment still at CashNet: our side forgets it and its fees are
    free again. If CashNet takes the money after all, that success still counts."""
    session = require_session(request)
    item = _in_progress(request, session)
    try:
        payment = services(request).ledger.cancel_payment(
            item.payment.id, session.patron.primary_id, "patron")
    except (LookupError, ValueError):
        raise ApiError(409, "not_cancellable", "CashNet has already answered for this "
                       "payment; it can no longer be cancelled.") from None
    log.info("payment cancelled by the patron", extra={
        "event": "payment_cancelled", "payment_id": payment.id, "channel": session.channel})
    return JSONResponse({"payment": {"id": payment.id, "state": payment.state}})


def _in_progress(request: Request, session: Session) -> InProgress:
    """The signed-in patron's payment in progress named by the path, or 404."""
    svc = services(request)
    payment_id = request.path_params["payment_id"]
    for item in svc.ledger.in_progress(session.patron.primary_id, hold_rules(svc.settings)):
        if item.payment.id == payment_id:
            return item
    raise ApiError(404, "payment_not_in_progress", "This payment is no longer in progress. "
                   "Reload the page to see your fees.")


def _limit(text: str | None) -> int:
    if text is None:
        return HISTORY_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= HISTORY_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be a number from 1 to {HISTORY_LIMIT}.")
    return int(text)


routes = [
    Route("/api/payments", list_payments, methods=["GET"]),
    Route("/api/payments/{payment_id}/resume", resume_payment, methods=["POST"]),
    Route("/api/payments/{payment_id}/cancel", cancel_payment, methods=["POST"]),
]
