"""The CashNet routes: the hand-off page, the store notification and the browser's return.

Only the notification moves money state, and only after the URL token (and, when configured,
the sender's address) checks out. The return is display only: it finds the payment and sends
the browser to the receipt. Anyone can call it, so it is rate-limited by address and writes at
most one short note per payment.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from proxy import metrics
from proxy.cashnet_checks import Arrival, refusal
from proxy.i18n import LANG_COOKIE, translator
from proxy.notification import PAYMENT_ID, parse_message, payment_ids, returned_payment_id
from proxy.rate_limit import TokenBuckets, address_key, retry_after
from proxy.states import NoticeEffect, PaymentState
from proxy.web.common import (
    current_session,
    receipt_location,
    redirect_with_error,
    services,
)
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
    """CashNet's store notification: the checks of docs/cashnet.md#notification-checks, one
    transaction, then 200 at once. Alma is posted afterwards by the worker."""
    svc = services(request)
    settings = svc.settings
    peer = client_address(request.scope, settings.trusted_proxies)
    refused = refusal(Arrival(request.path_params["token"], peer, settings))
    if refused is not None:
        log.warning(refused.log, extra={"event": refused.event, "peer": peer})
        metrics.notification(refused.event)
        raise ApiError(refused.status, refused.code, refused.message)
    message = parse_message(await request.body(), request.url.query,
                            request.headers.get("content-type", ""))
    outcome = svc.ledger.record_notification(
        message, peer=peer, ref_type=settings.cashnet_ref_type,
        txn_ref_name=settings.cashnet_txn_ref_name)
    metrics.notification(outcome.effect)
    log.info("notification", extra={"event": "notification", "effect": outcome.effect,
                                    "payment_id": outcome.payment_id, "peer": peer})
    if outcome.effect == NoticeEffect.PAID:
        # Here, on the event loop: it only sets an event. As a response's background task, a
        # plain function goes through a worker thread, which under load waited tens of
        # milliseconds for the GIL while CashNet's answer was held
        # (docs/performance.md#the-notification-handler-under-load).
        svc.worker.wake()
    return PlainTextResponse("OK")


# A patron's browser comes back once per payment (a few times with reloads); a campus NAT may
# put many patrons behind one address. Past this, an address waits.
RETURN_BURST = 30
RETURN_PER_SECOND = 0.5
# What a real claim looks like: CashNet's transaction numbers are short digits (and a claimed
# success has result 0); anything else is not worth a line in the ledger.
_CLAIMED_TX = re.compile(r"[0-9]{1,20}")


async def browser_return(request: Request) -> Response:
    """CashNet's sign-out: display only, never a state change (the fields are the browser's
    word). Sends the browser to the receipt of the payment it names."""
    svc = services(request)
    peer = client_address(request.scope, svc.settings.trusted_proxies)
    wait = _return_buckets(request).take(address_key(peer))
    if wait > 0:
        return PlainTextResponse("Too many requests: try again in a moment.", status_code=429,
                                 headers={"Retry-After": retry_after(wait)})
    body = await request.body() if request.method == "POST" else b""
    message = parse_message(body, request.url.query, request.headers.get("content-type", ""))
    ids = payment_ids(message, svc.settings.cashnet_ref_type, svc.settings.cashnet_txn_ref_name)
    candidates = [i.lower() for i in ids if PAYMENT_ID.fullmatch(i.lower())]
    candidates.append(returned_payment_id(request.query_params.get("p", "")))
    payment = next((p for p in (svc.ledger.payment(i) for i in candidates if i) if p), None)
    if payment is None:
        if request.query_params.get("kiosk") == "1":
            # The kiosk's browser may open only its own pages: its return page asks the agent,
            # which knows the payment under way, or starts over.
            return RedirectResponse(svc.settings.kiosk_return_url + "?" + urlencode(
                {"p": candidates[-1]}), status_code=303)
        return RedirectResponse("/receipt.html?" + urlencode({"error": "unknown_payment"}),
                                status_code=303)
    if (payment.state == PaymentState.PENDING and message.succeeded
            and _CLAIMED_TX.fullmatch(message.tx)):
        # A hint for reconciliation, never a state change: the browser's word proves nothing.
        svc.ledger.record_return_claim(payment.id, {"result": message.result, "tx": message.tx})
    if payment.channel.startswith("kiosk:"):
        # Back to the kiosk agent's own loopback page, which asks the agent for the state.
        return RedirectResponse(svc.settings.kiosk_return_url + "?" + urlencode(
            {"p": payment.id}), status_code=303)
    return RedirectResponse(receipt_location(request, payment), status_code=303)


def _return_buckets(request: Request) -> TokenBuckets:
    """The per-address buckets of this app (one set per running proxy, kept in memory)."""
    state = request.app.state
    if getattr(state, "return_buckets", None) is None:
        state.return_buckets = TokenBuckets(RETURN_BURST, RETURN_PER_SECOND)
    return state.return_buckets


routes = [
    Route("/pay/{payment_id}", pay_page, methods=["GET"]),
    Route("/cashnet/postback/{token}", postback, methods=["POST"]),
    Route("/cashnet/return", browser_return, methods=["GET", "POST"]),
]
