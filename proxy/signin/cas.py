"""CAS: a round trip to the campus CAS server, whose ticket we validate server to server, and
the CAS server's single-logout request, which ends the session a ticket started.

A ticket is validated only in the browser that started the round trip here (it holds a short
signed cookie): a ticket pushed into someone else's browser (login CSRF, to sign them in as the
attacker) starts a fresh sign-in instead.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.cas import (
    MAX_LOGOUT_REQUEST_BYTES,
    CasError,
    login_url,
    logout_request_ticket,
    ticket_hash,
    validate_ticket,
)
from proxy.config import Settings
from proxy.signin.common import sign_in_by_navigation
from proxy.signin.method import Offer, SignInMethod
from proxy.signin.next_page import safe_next
from proxy.web.common import redirect_with_error, services

log = logging.getLogger("patronpay.auth")

CAS_NEXT_COOKIE = "patronpay_cas_next"
CAS_NEXT_MAX_AGE = 600
# A logout request is form-encoded XML: percent-encoding can triple its size.
MAX_LOGOUT_BODY_BYTES = 3 * MAX_LOGOUT_REQUEST_BYTES + 1024


def _next_signer(request: Request) -> TimestampSigner:
    keys = services(request).settings.secret_keys
    return TimestampSigner(list(reversed(keys)), salt="cas-next")


def _service(settings: Settings) -> str:
    return settings.public_url + "/auth/cas"


async def cas(request: Request) -> Response:
    """Without a ticket, off to the CAS login (the `next` page travels in a short signed
    cookie); with one, in the browser that went, validate it server to server and sign in."""
    ticket = request.query_params.get("ticket")
    if ticket is None:
        return _to_cas_login(request, safe_next(request.query_params.get("next")))
    target = _started_here(request)
    if target is None:
        log.info("cas ticket in a browser that did not start a sign-in: starting one",
                 extra={"event": "cas_restarted", "method": "cas"})
        return _to_cas_login(request, "/")
    response = await _validate_and_sign_in(request, ticket, target)
    response.delete_cookie(CAS_NEXT_COOKIE, path="/auth/cas")
    return response


def _to_cas_login(request: Request, target: str) -> Response:
    settings = services(request).settings
    response = RedirectResponse(
        login_url(settings.cas_url, _service(settings), renew=settings.cas_renew),
        status_code=303)
    response.set_cookie(CAS_NEXT_COOKIE, _next_signer(request).sign(target).decode(),
                        max_age=CAS_NEXT_MAX_AGE, path="/auth/cas", httponly=True,
                        secure=settings.is_https(), samesite="lax")
    return response


def _started_here(request: Request) -> str | None:
    """The `next` page of the sign-in this browser started here lately, or None."""
    try:
        return _next_signer(request).unsign(
            request.cookies.get(CAS_NEXT_COOKIE, ""), max_age=CAS_NEXT_MAX_AGE).decode()
    except BadSignature:
        return None


async def _validate_and_sign_in(request: Request, ticket: str, target: str) -> Response:
    settings = services(request).settings
    try:
        user = await validate_ticket(
            services(request).http, settings.cas_url, _service(settings), ticket,
            validate_path=settings.cas_validate_path, renew=settings.cas_renew)
        alma_id = user.alma_id(settings.cas_user_attribute)
    except CasError as exc:
        log.warning("cas ticket refused", extra={"event": "signin_refused", "method": "cas",
                                                 "reason": exc.code})
        return redirect_with_error("cas_unavailable" if exc.code == "UNAVAILABLE"
                                   else "cas_failed")
    return await sign_in_by_navigation(request, alma_id, "cas", safe_next(target),
                                       cas_ticket_hash=ticket_hash(ticket))


async def single_logout(request: Request) -> Response:
    """The CAS server's back-channel POST when a CAS session ends (`logoutRequest`, naming the
    ticket): the session that ticket started ends too. Not from a browser, so no Origin."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGOUT_BODY_BYTES:
            return PlainTextResponse("logout request too large", status_code=413)
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=8)
    try:
        ticket = logout_request_ticket((fields.get("logoutRequest") or [""])[0])
    except CasError:
        log.info("cas logout request refused", extra={"event": "cas_logout_refused"})
        return PlainTextResponse("not a CAS logout request", status_code=400)
    ended = services(request).sessions.end_by_cas_ticket(ticket_hash(ticket))
    log.info("cas single logout", extra={"event": "cas_single_logout", "sessions": ended})
    return PlainTextResponse("ok")


def offer(settings: Settings) -> Offer:
    return Offer.link("/auth/cas?next=/", entry="/auth/cas")


METHOD = SignInMethod(
    name="cas",
    routes=(Route("/auth/cas", cas, methods=["GET"]),
            Route("/auth/cas", single_logout, methods=["POST"])),
    offer=offer,
    requires=("cas_url",),
)
