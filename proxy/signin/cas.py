"""CAS: a round trip to the campus CAS server, whose ticket we validate server to server."""

from __future__ import annotations

import logging

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from proxy.cas import CasError, login_url, validate_ticket
from proxy.config import Settings
from proxy.signin.common import sign_in_by_navigation
from proxy.signin.method import Offer, SignInMethod
from proxy.web.common import redirect_with_error, safe_next, services

log = logging.getLogger("patronpay.auth")

CAS_NEXT_COOKIE = "patronpay_cas_next"
CAS_NEXT_MAX_AGE = 600


def _next_signer(request: Request) -> TimestampSigner:
    keys = services(request).settings.secret_keys
    return TimestampSigner(list(reversed(keys)), salt="cas-next")


async def cas(request: Request) -> Response:
    """Without a ticket, off to the CAS login (the `next` page travels in a short signed
    cookie); with one, validate it server to server and sign in."""
    settings = services(request).settings
    service = settings.public_url + "/auth/cas"
    ticket = request.query_params.get("ticket")
    if ticket is None:
        response = RedirectResponse(login_url(settings.cas_url, service), status_code=303)
        target = safe_next(request.query_params.get("next"))
        response.set_cookie(CAS_NEXT_COOKIE, _next_signer(request).sign(target).decode(),
                            max_age=CAS_NEXT_MAX_AGE, path="/auth/cas", httponly=True,
                            secure=settings.is_https(), samesite="lax")
        return response
    try:
        user = await validate_ticket(services(request).http, settings.cas_url, service, ticket)
        alma_id = user.alma_id(settings.cas_user_attribute)
    except CasError as exc:
        log.warning("cas ticket refused", extra={"event": "signin_refused", "method": "cas",
                                                 "reason": exc.code})
        return redirect_with_error("cas_unavailable" if exc.code == "UNAVAILABLE"
                                   else "cas_failed")
    try:
        target = _next_signer(request).unsign(
            request.cookies.get(CAS_NEXT_COOKIE, ""), max_age=CAS_NEXT_MAX_AGE).decode()
    except BadSignature:
        target = "/"
    response = await sign_in_by_navigation(request, alma_id, "cas", safe_next(target))
    response.delete_cookie(CAS_NEXT_COOKIE, path="/auth/cas")
    return response


def offer(settings: Settings) -> Offer:
    return Offer.link("/auth/cas?next=/", entry="/auth/cas")


METHOD = SignInMethod(
    name="cas",
    routes=(Route("/auth/cas", cas, methods=["GET"]),),
    offer=offer,
    requires=("cas_url",),
)
