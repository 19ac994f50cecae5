"""Guests and community borrowers: their Alma internal-account password, posted as JSON from
the sign-in page's form, with a lockout against guessing."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.alma import AlmaError, AlmaInvalidCredentials
from proxy.config import Settings
from proxy.signin.common import MAX_ID_LENGTH, lookup_patron, start_session
from proxy.signin.method import Offer, SignInMethod
from proxy.web.common import alma_failure, read_json_object, services
from proxy.web.errors import ApiError
from proxy.web.security import client_address

log = logging.getLogger("patronpay.auth")

MAX_PASSWORD_LENGTH = 1024


async def alma_guest(request: Request) -> Response:
    body = await read_json_object(request)
    user_id, password = body.get("user_id"), body.get("password")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_LENGTH:
        raise ApiError(422, "invalid_user_id", "Enter your library user name or barcode.",
                       "user_id")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        raise ApiError(422, "invalid_password", "Enter your password.", "password")
    user_id = user_id.strip()
    svc = services(request)
    keys = [f"account:{user_id.lower()}",
            f"address:{client_address(request.scope, svc.settings.trusted_proxies)}"]
    wait, attempt = svc.guest_failures.begin_attempt(keys)
    if wait:
        raise ApiError(429, "too_many_attempts",
                       f"Too many failed sign-ins. Try again in {wait} seconds.",
                       headers={"Retry-After": str(wait)})
    try:
        await svc.alma.authenticate(user_id, password)
    except AlmaInvalidCredentials:
        log.info("guest sign-in refused", extra={"event": "signin_refused", "method": "alma"})
        raise ApiError(401, "invalid_credentials",
                       "That user name and password do not match.") from None
    except AlmaError as exc:
        svc.guest_failures.forget(attempt)  # Alma's trouble is not the patron's failure
        raise alma_failure(exc) from None
    svc.guest_failures.forget(attempt)
    svc.guest_failures.clear(keys[0])
    patron = await lookup_patron(request, user_id)
    response = JSONResponse({"ok": True}, status_code=200)
    start_session(request, patron, "alma", response)
    return response


def offer(settings: Settings) -> Offer:
    return Offer.form("/auth/alma")


METHOD = SignInMethod(
    name="alma",
    routes=(Route("/auth/alma", alma_guest, methods=["POST"]),),
    offer=offer,
)
