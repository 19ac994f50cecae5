"""Guests and community borrowers: their Alma internal-account password, posted as JSON from
the sign-in page's form, with a lockout against guessing.

The typed identifier (user name, barcode, university id) is resolved to the Alma account
first, so failures count against the account however it was named; the lockout's rules are
proxy/throttle.py's. Only `application/json` is read: a cross-site form can send `text/plain`
without asking, JSON it cannot.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.alma import AlmaError, AlmaInvalidCredentials, AlmaUserNotFound
from proxy.config import Settings
from proxy.patrons import Patron, patron_from_alma
from proxy.signin.common import MAX_ID_LENGTH, start_session
from proxy.signin.method import Offer, SignInMethod
from proxy.web.common import alma_failure, read_json_object, services
from proxy.web.errors import ApiError
from proxy.web.responses import JSONResponse
from proxy.web.security import client_address

log = logging.getLogger("patronpay.auth")

MAX_PASSWORD_LENGTH = 1024
CONTENT_TYPE = "application/json"


async def alma_guest(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != CONTENT_TYPE:
        raise ApiError(415, "unsupported_media_type", "Send the sign-in form as JSON.")
    body = await read_json_object(request)
    user_id, password = body.get("user_id"), body.get("password")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_LENGTH:
        raise ApiError(422, "invalid_user_id", "Enter your library user name or barcode.",
                       "user_id")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        raise ApiError(422, "invalid_password", "Enter your password.", "password")
    user_id = user_id.strip()
    svc = services(request)
    address = client_address(request.scope, svc.settings.trusted_proxies)
    _refuse_if_waiting(svc.guest_failures.address_wait(address))  # before spending Alma calls
    patron = await _account(request, user_id)
    # An unknown identifier is counted under itself, and refused like a wrong password.
    account = patron.primary_id if patron is not None else "unknown:" + user_id
    wait, attempt = svc.guest_failures.begin_sign_in(account, address)
    _refuse_if_waiting(wait)
    try:
        if patron is None:
            raise AlmaInvalidCredentials("no such account")
        await svc.alma.authenticate(patron.primary_id, password)
    except AlmaInvalidCredentials:
        log.info("guest sign-in refused", extra={"event": "signin_refused", "method": "alma"})
        raise ApiError(401, "invalid_credentials",
                       "That user name and password do not match.") from None
    except AlmaError as exc:
        svc.guest_failures.forget(attempt)  # Alma's trouble is not the patron's failure
        raise alma_failure(exc) from None
    svc.guest_failures.signed_in(account, attempt)
    response = JSONResponse({"ok": True}, status_code=200)
    start_session(request, patron, "alma", response)
    return response


async def _account(request: Request, user_id: str) -> Patron | None:
    """The Alma account `user_id` names (any unique identifier), None when there is none."""
    try:
        return patron_from_alma(await services(request).alma.get_user(user_id))
    except AlmaUserNotFound:
        return None
    except AlmaError as exc:
        raise alma_failure(exc) from None


def _refuse_if_waiting(wait: int) -> None:
    if wait:
        raise ApiError(429, "too_many_attempts",
                       f"Too many failed sign-ins. Try again in {wait} seconds.",
                       headers={"Retry-After": str(wait)})


def offer(settings: Settings) -> Offer:
    return Offer.form("/auth/alma")


METHOD = SignInMethod(
    name="alma",
    routes=(Route("/auth/alma", alma_guest, methods=["POST"]),),
    offer=offer,
)
