"""The CashNet routes: the hand-off page, the store notification and the browser's return.

Only the notification moves money state, and only after the URL token (and, when configured,
the sender's address) checks out. The return is display only: it finds the payment and sends
the browser to the receipt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from proxy import metrics
from proxy.cashnet_checks import Arrival, refusal
from proxy.i18n import LANG_COOKIE, translator
from proxy.notification import parse_message, payment_ids
from proxy.states import EventKind, NoticeEffect, PaymentState
from proxy.web.common import current_session, redirect_with_error, services
from proxy.web.errors import ApiError
from proxy.web.security import client_address

log = logging.getLogger("patronpay.cashnet")
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


async def pay_page(request: Request) -> Response:
    """The hand-off form, rendered by the server, for browsers without JavaScript. Reached by
    navigation, so problems go back to the fees page, which explains them."""
    session = current_session(request)
    if session is None:
        return redirect_with_error("not_signed_in")
    payment = services(request).ledger.payment(request.path_params["payment_id"])
    if payment is None or payment.patron_id != session.patron.primary_id:
        return redirect_with_error("payment_not_found")
    if payment.state != PaymentState.PENDING:
        token = services(request).receipts.token(payment.id)
        return RedirectResponse("/receipt.html?" + urlencode({"r": token}), status_code=303)
    asked = request.query_params.get("lang")
    t = translator(services(request).settings.site_dir / "locales", asked,
                   request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", ""))
    response = templates.TemplateResponse(request, "pay.html", {
        "payment": payment,
        "action": payment.checkout["action"],
        "fields": payment.checkout["fields"],
        "t": t,
    })
    if asked == t.lang:  # the page's own language switch: remember it, as the site does
        response.set_cookie(LANG_COOKIE, t.lang, max_age=365 * 86400, samesite="lax",
                            secure=services(request).settings.is_https())
    return response


async def postback(request: Request) -> Response:
    """CashNet's store notification: checks 1-8 of docs/cashnet.md#notification-checks, one
    transaction, then 200 at once. Alma is posted afterwards by the worker."""
    svc = services(request)
    settings = svc.settings
    peer = client_address(request.scope, settings.trusted_proxies)
    refused = refusal(Arrival(request.path_params["token"], peer, settings))
    if refused is not None:
        log.warning(refused.log, extra={"event": refused.event, "peer": peer})
        metrics.notification(refused.event)
        raise ApiError(refused.status, refused.code, refused.message)
    message = parse_message(await request.body(), request.url.query)
    outcome = svc.ledger.record_notification(
        message, peer=peer, ref_type=settings.cashnet_ref_type,
        txn_ref_name=settings.cashnet_txn_ref_name)
    metrics.notification(outcome.effect)
    log.info("notification", extra={"event": "notification", "effect": outcome.effect,
                                    "payment_id": outcome.payment_id, "peer": peer})
    task = BackgroundTask(svc.worker.wake) if outcome.effect == NoticeEffect.PAID else None
    return PlainTextResponse("OK", background=task)


async def browser_return(request: Request) -> Response:
    """CashNet's sign-out: display only, never a state change (the fields are the browser's
    word). Sends the browser to the receipt of the payment it names."""
    svc = services(request)
    body = await request.body() if request.method == "POST" else b""
    message = parse_message(body, request.url.query)
    ids = payment_ids(message, svc.settings.cashnet_ref_type, svc.settings.cashnet_txn_ref_name)
    candidates = list(ids) + [request.query_params.get("p", "")]
    payment = next((p for p in (svc.ledger.payment(i) for i in candidates if i) if p), None)
    if payment is None:
        return RedirectResponse("/receipt.html?" + urlencode({"error": "unknown_payment"}),
                                status_code=303)
    if payment.state == PaymentState.PENDING and message.succeeded:
        # A hint for reconciliation, never a state change: the browser's word proves nothing.
        svc.ledger.add_event(payment.id, EventKind.RETURN_CLAIMS_SUCCESS, "browser",
                             {"result": message.result, "tx": message.tx})
    if payment.channel.startswith("kiosk:"):
        # Back to the kiosk agent's own loopback page, which asks the agent for the state.
        return RedirectResponse(svc.settings.kiosk_return_url + "?" + urlencode(
            {"p": payment.id}), status_code=303)
    token = svc.receipts.token(payment.id)
    return RedirectResponse("/receipt.html?" + urlencode({"r": token}), status_code=303)


routes = [
    Route("/pay/{payment_id}", pay_page, methods=["GET"]),
    Route("/cashnet/postback/{token}", postback, methods=["POST"]),
    Route("/cashnet/return", browser_return, methods=["GET", "POST"]),
]
