"""Sign-in and sign-out. Each method proves who the patron is, then `start_session` reads the
patron from Alma once and starts the session."""

from __future__ import annotations

import logging

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.alma import AlmaError, AlmaInvalidCredentials
from proxy.cas import CasError, login_url, validate_ticket
from proxy.patrons import Patron, patron_from_alma
from proxy.primo import KeySetUnavailable, PrimoTokenError
from proxy.web.common import (
    alma_failure,
    clear_session_cookie,
    current_session,
    read_json_object,
    redirect_with_error,
    require_session,
    safe_next,
    services,
    set_session_cookie,
)
from proxy.web.errors import ApiError
from proxy.web.security import client_address, peer_is_trusted

log = logging.getLogger("patronpay.auth")

MAX_ID_LENGTH = 255
MAX_PASSWORD_LENGTH = 1024
CAS_NEXT_COOKIE = "patronpay_cas_next"
CAS_NEXT_MAX_AGE = 600


def require_method(request: Request, method: str) -> None:
    if method not in services(request).settings.auth_methods:
        raise ApiError(404, "method_disabled", "This sign-in method is not enabled here.")


async def lookup_patron(request: Request, user_id: str, id_type: str = "all_unique") -> Patron:
    try:
        user = await services(request).alma.get_user(user_id, id_type)
    except AlmaError as exc:
        raise alma_failure(exc) from None
    return patron_from_alma(user)


def start_session(request: Request, patron: Patron, method: str,
                  response: Response) -> Response:
    """Start a session for `patron` and attach its cookie to `response`."""
    old = current_session(request)
    if old is not None:
        services(request).sessions.end(old)
    session, cookie = services(request).sessions.create(patron, method)
    set_session_cookie(response, request, cookie)
    log.info("signed in", extra={"event": "signed_in", "method": method,
                                 "patron_id": patron.primary_id})
    return response


async def sign_in_by_navigation(request: Request, user_id: str, method: str,
                                target: str) -> Response:
    """End of a browser round trip (CAS, Primo): a session and a redirect, or a redirect to
    the sign-in page naming what went wrong."""
    try:
        patron = await lookup_patron(request, user_id)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    return start_session(request, patron, method, RedirectResponse(target, status_code=303))


def _cas_next_signer(request: Request) -> TimestampSigner:
    keys = services(request).settings.secret_keys
    return TimestampSigner(list(reversed(keys)), salt="cas-next")


async def cas(request: Request) -> Response:
    """CAS round trip: without a ticket, off to the CAS login (the `next` page travels in a
    short signed cookie); with one, validate it server to server and sign in."""
    require_method(request, "cas")
    settings = services(request).settings
    service = settings.public_url + "/auth/cas"
    ticket = request.query_params.get("ticket")
    if ticket is None:
        response = RedirectResponse(login_url(settings.cas_url, service), status_code=303)
        target = safe_next(request.query_params.get("next"))
        response.set_cookie(CAS_NEXT_COOKIE, _cas_next_signer(request).sign(target).decode(),
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
        target = _cas_next_signer(request).unsign(
            request.cookies.get(CAS_NEXT_COOKIE, ""), max_age=CAS_NEXT_MAX_AGE).decode()
    except BadSignature:
        target = "/"
    response = await sign_in_by_navigation(request, alma_id, "cas", safe_next(target))
    response.delete_cookie(CAS_NEXT_COOKIE, path="/auth/cas")
    return response


async def primo(request: Request) -> Response:
    """Primo's "Pay fines" link: a token signed by Ex Libris names the patron. Verified, then
    exchanged for our own session and a redirect to a URL without it, so the 24-hour token
    does not linger in history, logs or Referer."""
    require_method(request, "primo")
    try:
        patron = await services(request).primo.verify(request.query_params.get("jwt", ""))
    except PrimoTokenError as exc:
        log.warning("primo token refused", extra={"event": "signin_refused", "method": "primo",
                                                  "reason": exc.reason})
        return redirect_with_error("primo_token_invalid")
    except KeySetUnavailable:
        return redirect_with_error("primo_unavailable")
    return await sign_in_by_navigation(request, patron.user_name, "primo", "/")


async def sso(request: Request) -> Response:
    """The campus web server (Shibboleth, mod_auth_cas, ...) authenticated the patron and
    passes the id in a header. Only our own trusted proxies may set it. A browser comes here
    by navigation, so refusals go back to the sign-in page, which explains them."""
    require_method(request, "sso")
    settings = services(request).settings
    if not peer_is_trusted(request.scope, settings.trusted_proxies):
        log.warning("sso header from untrusted peer", extra={
            "event": "sso_untrusted", "peer": client_address(request.scope, ())})
        return redirect_with_error("untrusted_proxy")
    user_id = request.headers.get(settings.sso_header, "").strip()
    if not user_id or len(user_id) > MAX_ID_LENGTH:
        return redirect_with_error("sso_missing_user")
    target = safe_next(request.query_params.get("next"))
    return await sign_in_by_navigation(request, user_id, "sso", target)


async def alma_guest(request: Request) -> Response:
    """Guests and community borrowers: their Alma (internal account) password."""
    require_method(request, "alma")
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


async def logout(request: Request) -> Response:
    session = require_session(request)
    services(request).sessions.end(session)
    response = JSONResponse({"ok": True})
    clear_session_cookie(response, request)
    return response


def account_gone(request: Request) -> ApiError:
    """The patron's Alma account disappeared mid-session: end the session, say so."""
    session = current_session(request)
    if session is not None:
        services(request).sessions.end(session)
    return ApiError(401, "account_gone", "Your library account could not be found any more, "
                    "so you have been signed out. Please contact the library.")


routes = [
    Route("/auth/sso", sso, methods=["GET"]),
    Route("/auth/cas", cas, methods=["GET"]),
    Route("/auth/primo", primo, methods=["GET"]),
    Route("/auth/alma", alma_guest, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]
