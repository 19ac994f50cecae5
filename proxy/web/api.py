"""The patron's JSON API: session, fees, payments, receipts
(docs/architecture.md#http-interface)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.allocation import PaymentRequestError
from proxy.alma import AlmaError, AlmaUserNotFound
from proxy.checkout import TooManyLines
from proxy.fees import CurrencyMismatch, FeeList
from proxy.in_progress import conflict, hold_rules, mark_held, without_held
from proxy.ledger import PaymentInProgress
from proxy.money import format_amount
from proxy.patron_sessions import Session
from proxy.payments import read_fees_page, start_payment
from proxy.rate_limit import retry_after
from proxy.receipts import receipt_json
from proxy.signin import registry
from proxy.web import patron_payments
from proxy.web.auth import account_gone
from proxy.web.common import (
    alma_failure,
    current_session,
    read_json_object,
    require_session,
    services,
)
from proxy.web.errors import ApiError, error_response
from proxy.web.mail_language import remember_page_language
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.api")


async def get_session(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        return error_response(401, "not_signed_in", "Please sign in.",
                              extra=registry.page_choices(services(request).settings))
    return JSONResponse(session.to_json())


def keep_pace(request: Request, session: Session) -> None:
    """The session's and the patron's buckets for routes that read Alma
    (docs/security.md#rate-limits): 429 with Retry-After when either is empty."""
    limits = services(request).patron_limits
    wait = limits.wait(session.id_hash, session.patron.primary_id)
    if wait > 0:
        if limits.first_refusal(session.id_hash):
            log.info("rate limited", extra={"event": "rate_limited", "path": request.url.path})
        seconds = retry_after(wait)
        raise ApiError(429, "rate_limited", f"Too many requests from this page. Please wait "
                       f"{seconds} seconds and try again.", headers={"Retry-After": seconds})


async def patron_fees(request: Request, session: Session) -> FeeList:
    """The patron's fees as the fees page shows them: read from Alma, or kept from a read a
    few seconds ago while none of their payments has changed state (proxy/fee_cache.py)."""
    svc = services(request)
    patron_id = session.patron.primary_id
    return await svc.fee_cache.get(
        patron_id, lambda: read_fees_page(svc.alma, svc.settings, patron_id))


async def get_fees(request: Request) -> Response:
    session = require_session(request)
    keep_pace(request, session)
    svc = services(request)
    try:
        fees = await patron_fees(request, session)
    except AlmaUserNotFound:
        raise account_gone(request) from None
    except (AlmaError, CurrencyMismatch) as exc:
        raise alma_failure(exc) from None
    held = svc.ledger.in_progress(session.patron.primary_id, hold_rules(svc.settings))
    fees, taken = without_held(fees, held)
    body = fees.to_json(svc.settings.currency, svc.settings.credit_policy)
    body["min_payment"] = format_amount(svc.settings.min_payment)
    return JSONResponse(mark_held(body, held, taken, session.channel))


async def create_payment(request: Request) -> Response:
    session = require_session(request)
    body = await read_json_object(request)
    unknown = sorted(set(body) - {"fee_ids", "amount"})
    if unknown:
        raise ApiError(400, "unknown_field", f"Unknown field: {unknown[0]}.", unknown[0])
    keep_pace(request, session)
    svc = services(request)
    try:
        started = await start_payment(
            alma=svc.alma, ledger=svc.ledger, settings=svc.settings, patron=session.patron,
            channel=session.channel, session_id=session.id_hash,
            fee_ids=body.get("fee_ids"), amount=body.get("amount"),
            fees=await patron_fees(request, session))
    except PaymentInProgress as exc:
        code, message, extra = conflict(exc, session.channel)
        return error_response(409, code, message, extra=extra)
    except PaymentRequestError as exc:
        raise ApiError(422, exc.code, str(exc), exc.field) from None
    except TooManyLines:
        raise ApiError(422, "too_many_lines", "Too many kinds of fee for one payment. Pay "
                       "some of them now and the rest afterwards.", "fee_ids") from None
    except AlmaUserNotFound:
        raise account_gone(request) from None
    except (AlmaError, CurrencyMismatch) as exc:
        raise alma_failure(exc) from None
    payment = started.payment
    remember_page_language(request, payment.id)
    log.info("payment created", extra={"event": "payment_created", "payment_id": payment.id,
                                       "channel": payment.channel})
    return JSONResponse({
        # In a consortium, the institution the payment records, as its receipt names it.
        "payment": ({"institution": payment.institution} if payment.institution else {}) | {
            "id": payment.id,
            "state": payment.state,
            "amount": format_amount(payment.amount),
            "allocations": [{"fee_id": a.fee_id, "amount": format_amount(a.amount)}
                            for a in payment.allocations],
            "receipt_token": svc.receipts.token(payment.id),
        },
        "checkout": started.checkout.to_json(),
    }, status_code=201)


async def get_payment(request: Request) -> Response:
    session = require_session(request)
    payment = services(request).ledger.payment(request.path_params["payment_id"])
    if payment is None or payment.patron_id != session.patron.primary_id:
        raise ApiError(404, "payment_not_found", "No such payment.")
    # The patron's own payment: with a fresh receipt link, which the receipt page puts in its
    # address so that it can be kept after sign-out.
    body = receipt_json(payment, session.patron.first_name,
                        services(request).settings.institution)
    body["receipt_token"] = services(request).receipts.token(payment.id)
    return JSONResponse(body)


async def get_receipt(request: Request) -> Response:
    """A receipt by its link's token, no session needed, while the link is young enough
    (docs/security.md#receipts). An expired link names its payment reference only, so the
    patron can ask for a new receipt."""
    svc = services(request)
    link = svc.receipts.read(request.path_params["token"])
    payment = svc.ledger.payment(link.payment_id) if link else None
    if link is None or payment is None:
        raise ApiError(404, "receipt_not_found", "This receipt link is not valid.")
    if link.expired:
        return error_response(410, "receipt_expired", "This receipt link has expired. Ask for "
                              "a new receipt.", extra={"reference": payment.id})
    return JSONResponse(receipt_json(payment, institution=svc.settings.institution))


routes = [
    Route("/api/session", get_session, methods=["GET"]),
    Route("/api/fees", get_fees, methods=["GET"]),
    Route("/api/payments", create_payment, methods=["POST"]),
    Route("/api/payments/{payment_id}", get_payment, methods=["GET"]),
    Route("/api/receipts/{token}", get_receipt, methods=["GET"]),
    *patron_payments.routes,
]
