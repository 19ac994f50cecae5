"""Who may use the staff pages, and how they sign in (docs/operations.md#staff-pages).

Staff sign in by one method, PATRONPAY_STAFF_SIGNIN, on paths of their own:

- `sso`: the campus web server authenticates the browser on `/staff/auth/sso` and passes the
  user id in PATRONPAY_SSO_HEADER (and, with PATRONPAY_STAFF_GROUP_HEADER, the user's groups),
  believed only from PATRONPAY_TRUSTED_PROXIES, exactly as on the patrons' `/auth/sso`;
- `cas`: a CAS round trip for the service `PUBLIC_URL/staff/auth/cas`, so a ticket issued to
  the patrons' sign-in is worth nothing here; groups from PATRONPAY_STAFF_GROUP_ATTRIBUTE.

The other method's path answers 404, so a web server that never clears the header for a method
it does not run cannot be used to name oneself. Only PATRONPAY_STAFF_USERS or a member of a
PATRONPAY_STAFF_GROUP gets a staff session; everyone else gets 403, and nobody gets a patron
session here (staff need not be patrons at all).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlencode

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.cas import CasError, login_url, validate_ticket
from proxy.config import Settings
from proxy.signin.next_page import safe_next
from proxy.staffweb.forms import FormRefused, read_form
from proxy.staffweb.pages import plain
from proxy.staffweb.sessions import StaffSession, StaffSessionStore, cookie_name
from proxy.web.common import services
from proxy.web.security import client_address, peer_is_trusted

log = logging.getLogger("patronpay.staff")

HOME = "/staff/"
SSO_PATH = "/staff/auth/sso"
CAS_PATH = "/staff/auth/cas"
CAS_NEXT_COOKIE = "patronpay_staff_cas_next"
CAS_NEXT_MAX_AGE = 600
MAX_ID_LENGTH = 255
# Shibboleth joins an attribute's values with `;`, oauth2-proxy and mod_auth_cas with `,`.
GROUP_SEPARATORS = re.compile(r"[;,]")

Handler = Callable[[Request, StaffSession], Awaitable[Response]]


# --- who may enter ---


def groups_in_header(value: str) -> set[str]:
    return {g.strip() for g in GROUP_SEPARATORS.split(value) if g.strip()}


def grant(settings: Settings, user_id: str, groups: Iterable[str]) -> str | None:
    """Why `user_id` may use the staff pages ("user", "group:<name>"), or None."""
    if user_id in settings.staff_users:
        return "user"
    held = set(groups)
    for group in settings.staff_group:
        if group in held:
            return f"group:{group}"
    return None


def still_granted(settings: Settings, session: StaffSession) -> bool:
    """A session ends early when what let it in was taken out of the settings (the service
    restarted with a shorter list)."""
    if session.granted_by == "user":
        return session.user_id in settings.staff_users
    return session.granted_by.removeprefix("group:") in settings.staff_group


# --- the staff session of a request ---


def store(request: Request) -> StaffSessionStore:
    """The app's staff session store, made on first use from the running services."""
    state = request.app.state
    found = getattr(state, "staff_sessions", None)
    if found is None:
        svc = services(request)
        found = StaffSessionStore(
            svc.db, svc.settings.secret_keys,
            idle_seconds=svc.settings.staff_session_idle_minutes * 60,
            max_seconds=svc.settings.staff_session_max_minutes * 60, clock=svc.sessions.clock)
        state.staff_sessions = found
    return found


def current_staff(request: Request) -> StaffSession | None:
    settings = services(request).settings
    session = store(request).load(request.cookies.get(cookie_name(settings.is_https())))
    if session is None or not still_granted(settings, session):
        return None
    return store(request).touch(session)


def staff_only(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A staff page: 404 while the staff pages are off, the sign-in without a staff session
    (a patron's session counts for nothing here)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        if not services(request).settings.staff_signin:
            return not_enabled()
        session = current_staff(request)
        if session is None:
            return to_sign_in(request, request.url.path)
        return await handler(request, session)

    return guarded


def not_enabled() -> Response:
    return plain(404, "Not found", "There are no staff pages here.")


def staff_next(value: str | None) -> str:
    """Where to go after signing in: a staff page, never anywhere else."""
    target = safe_next(value)
    return target if target.startswith(HOME) else HOME


def to_sign_in(request: Request, target: str) -> Response:
    settings = services(request).settings
    query = urlencode({"next": staff_next(target)})
    if settings.staff_signin == "cas":
        return RedirectResponse(f"{CAS_PATH}?{query}", status_code=303)
    url = settings.staff_sso_login_url
    # Our own path honours `next`; a sign-on's own login URL is used as configured.
    return RedirectResponse(f"{url}?{query}" if url.startswith(SSO_PATH) else url,
                            status_code=303)


# --- signing in and out ---


async def sso(request: Request) -> Response:
    settings = services(request).settings
    if settings.staff_signin != "sso":
        return not_enabled()
    if not peer_is_trusted(request.scope, settings.trusted_proxies):
        log.warning("staff sso header from untrusted peer", extra={
            "event": "staff_sso_untrusted", "peer": client_address(request.scope, ())})
        return plain(403, "Sign-in refused", "The sign-on did not come through this site's "
                     "web server.")
    user_id = request.headers.get(settings.sso_header, "").strip()
    if not user_id or len(user_id) > MAX_ID_LENGTH:
        return plain(403, "Sign-in refused", "The campus sign-on did not say who you are.")
    groups = groups_in_header(request.headers.get(settings.staff_group_header, "")) \
        if settings.staff_group_header else set()
    return _start(request, user_id, "sso", groups, request.query_params.get("next"))


async def cas(request: Request) -> Response:
    """Without a ticket, off to CAS (`next` in a short signed cookie, as for patrons); with
    one, in the browser that went, validated server to server for our staff service URL."""
    settings = services(request).settings
    if settings.staff_signin != "cas":
        return not_enabled()
    ticket = request.query_params.get("ticket")
    target = _cas_started_here(request)
    if ticket is None or target is None:
        return _to_cas(request, staff_next(request.query_params.get("next")))
    try:
        user = await validate_ticket(
            services(request).http, settings.cas_url, settings.public_url + CAS_PATH, ticket,
            validate_path=settings.cas_validate_path, renew=settings.cas_renew)
    except CasError as exc:
        log.warning("staff cas ticket refused", extra={"event": "staff_signin_refused",
                                                       "reason": exc.code})
        return plain(403, "Sign-in refused", "CAS did not confirm the sign-in. Try again.",
                     link=(f"{CAS_PATH}?next={HOME}", "Sign in again"))
    groups = user.attributes.get(settings.staff_group_attribute, []) \
        if settings.staff_group_attribute else []
    response = _start(request, user.user, "cas", groups, target)
    response.delete_cookie(CAS_NEXT_COOKIE, path=CAS_PATH)
    return response


def _to_cas(request: Request, target: str) -> Response:
    settings = services(request).settings
    response = RedirectResponse(login_url(settings.cas_url, settings.public_url + CAS_PATH,
                                          renew=settings.cas_renew), status_code=303)
    response.set_cookie(CAS_NEXT_COOKIE, _cas_signer(request).sign(target).decode(),
                        max_age=CAS_NEXT_MAX_AGE, path=CAS_PATH, httponly=True,
                        secure=settings.is_https(), samesite="lax")
    return response


def _cas_started_here(request: Request) -> str | None:
    try:
        return _cas_signer(request).unsign(request.cookies.get(CAS_NEXT_COOKIE, ""),
                                           max_age=CAS_NEXT_MAX_AGE).decode()
    except BadSignature:
        return None


def _cas_signer(request: Request) -> TimestampSigner:
    keys = services(request).settings.secret_keys
    return TimestampSigner(list(reversed(keys)), salt="staff-cas-next")


def _start(request: Request, user_id: str, method: str, groups: Iterable[str],
           target: str | None) -> Response:
    settings = services(request).settings
    why = grant(settings, user_id, groups)
    if why is None:
        log.warning("staff sign-in refused", extra={"event": "staff_signin_refused",
                                                    "method": method, "user": user_id})
        return plain(403, "Not allowed", f"{user_id} may not use the staff pages. Library "
                     "staff who need them: ask whoever runs patronpay to add you.")
    session, cookie = store(request).create(user_id, method, why)
    response = RedirectResponse(staff_next(target), status_code=303)
    response.set_cookie(cookie_name(settings.is_https()), cookie,
                        max_age=settings.staff_session_max_minutes * 60, httponly=True,
                        secure=settings.is_https(), samesite="lax", path="/")
    log.info("staff signed in", extra={"event": "staff_signed_in", "method": method,
                                       "user": user_id, "granted_by": why})
    return response


@staff_only
async def sign_out(request: Request, session: StaffSession) -> Response:
    try:
        await read_form(request, session)
    except FormRefused as exc:
        return plain(exc.status, "Not signed out", exc.text)
    store(request).end(session)
    https = services(request).settings.is_https()
    response = RedirectResponse("/staff/signed-out", status_code=303)
    response.delete_cookie(cookie_name(https), path="/", httponly=True, secure=https,
                           samesite="lax")
    return response


async def signed_out(request: Request) -> Response:
    if not services(request).settings.staff_signin:
        return not_enabled()
    return plain(200, "Signed out", "You have signed out of the staff pages. The campus "
                 "sign-on may still remember you: close the browser on a shared computer.",
                 link=(HOME, "Sign in again"))
