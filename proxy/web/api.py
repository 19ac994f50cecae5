"""The patron's JSON API: session, fees, payments, receipts
(docs/architecture.md#http-interface)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.allocation import PaymentRequestError
from proxy.alma import AlmaError, AlmaUserNotFound
from proxy.checkout import TooManyLines
from proxy.fees import CurrencyMismatch
from proxy.money import format_amount
from proxy.payments import read_fees, start_payment
from proxy.receipts import receipt_json
from proxy.signin import registry
from proxy.web.auth import account_gone
from proxy.web.common import (
    alma_failure,
    current_session,
    read_json_object,
    require_session,
    services,
)
from proxy.web.errors import ApiError, error_response

log = logging.getLogger("patronpay.api")


async def get_session(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        return error_response(401, "not_signed_in", "Please sign in.",
                              extra=registry.page_choices(services(request).settings))
    return JSONResponse(session.to_json())


async def get_fees(request: Request) -> Response:
    session = require_session(request)
    svc = services(request)
    try:
        fees = await read_fees(svc.alma, svc.settings, session.patron.primary_id)
    except AlmaUserNotFound:
        raise account_gone(request) from None
    except (AlmaError, CurrencyMismatch) as exc:
        raise alma_failure(exc) from None
    body = fees.to_json(svc.settings.currency)
    body["min_payment"] = format_amount(svc.settings.min_payment)
    return JSONResponse(body)


async def create_payment(request: Request) -> Response:
    session = require_session(request)
    body = await read_json_object(request)
    unknown = sorted(set(body) - {"fee_ids", "amount"})
    if unknown:
        raise ApiError(400, "unknown_field", f"Unknown field: {unknown[0]}.", unknown[0])
    svc = services(request)
    try:
        started = await start_payment(
            alma=svc.alma, ledger=svc.ledger, settings=svc.settings, patron=session.patron,
            channel=session.channel, session_id=session.id_hash,
            fee_ids=body.get("fee_ids"), amount=body.get("amount"))
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
    log.info("payment created", extra={"event": "payment_created", "payment_id": payment.id,
                                       "channel": payment.channel})
    return JSONResponse({
        "payment": {
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
    return JSONResponse(receipt_json(payment, session.patron.first_name))


async def get_receipt(request: Request) -> Response:
    svc = services(request)
    payment_id = svc.receipts.payment_id(request.path_params["token"])
    payment = svc.ledger.payment(payment_id) if payment_id else None
    if payment is None:
        raise ApiError(404, "receipt_not_found", "This receipt link is not valid.")
    return JSONResponse(receipt_json(payment))


routes = [
    Route("/api/session", get_session, methods=["GET"]),
    Route("/api/fees", get_fees, methods=["GET"]),
    Route("/api/payments", create_payment, methods=["POST"]),
    Route("/api/payments/{payment_id}", get_payment, methods=["GET"]),
    Route("/api/receipts/{token}", get_receipt, methods=["GET"]),
]
