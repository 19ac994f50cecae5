"""What every sign-in method shares: the patron is read from Alma once, then the session
starts. Where the patron goes afterwards is `safe_next`'s decision (next_page.py)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.alma import AlmaError
from proxy.patrons import Patron, patron_from_alma
from proxy.rate_limit import retry_after
from proxy.web.common import (
    alma_failure,
    current_session,
    redirect_with_error,
    services,
    set_session_cookie,
)
from proxy.web.errors import ApiError

log = logging.getLogger("patronpay.auth")

MAX_ID_LENGTH = 255


def require_offered(request: Request, method: str) -> None:
    if method not in services(request).settings.auth_methods:
        raise ApiError(404, "method_disabled", "This sign-in method is not enabled here.")


async def lookup_patron(request: Request, user_id: str, id_type: str = "all_unique") -> Patron:
    """The patron `user_id` names, read from Alma; first a token from that user id's sign-ins
    (keep_sign_in_pace)."""
    keep_sign_in_pace(request, user_id)
    return await read_patron(request, user_id, id_type)


def keep_sign_in_pace(request: Request, user_id: str) -> None:
    """Take a token from `user_id`'s sign-ins or raise a 429 ApiError
    (docs/security.md#rate-limits): a campus sign-on signs its user in again without a
    password, and each sign-in reads Alma, so a loop of them would spend everyone's Alma.
    A sign-in by a one-use token calls this before it spends the token (see primo.py)."""
    limits = services(request).patron_limits
    wait = limits.sign_in_wait(user_id)
    if wait > 0:
        if limits.first_refusal("signin:" + user_id):
            log.info("sign-ins rate limited", extra={"event": "rate_limited",
                                                     "path": request.url.path})
        seconds = retry_after(wait)
        raise ApiError(429, "too_many_requests", f"Too many sign-ins in a short time. Please "
                       f"wait {seconds} seconds and try again.", headers={"Retry-After": seconds})


async def read_patron(request: Request, user_id: str, id_type: str = "all_unique") -> Patron:
    """The patron `user_id` names, read from Alma, with no sign-in token taken: for a caller
    that has called keep_sign_in_pace itself."""
    try:
        user = await services(request).alma.get_user(user_id, id_type)
    except AlmaError as exc:
        raise alma_failure(exc) from None
    return patron_from_alma(user)


def start_session(request: Request, patron: Patron, method: str,
                  response: Response, *, cas_ticket_hash: str = "") -> Response:
    """Start a session for `patron` and attach its cookie to `response`."""
    old = current_session(request)
    if old is not None:
        services(request).sessions.end(old)
    session, cookie = services(request).sessions.create(patron, method,
                                                        cas_ticket_hash=cas_ticket_hash)
    set_session_cookie(response, request, cookie)
    log.info("signed in", extra={"event": "signed_in", "method": method,
                                 "patron_id": patron.primary_id})
    return response


async def sign_in_by_navigation(request: Request, user_id: str, method: str,
                                target: str, *, cas_ticket_hash: str = "") -> Response:
    """End of a browser round trip (CAS, Primo, SSO): a session and a redirect, or a redirect
    to the sign-in page naming what went wrong."""
    try:
        patron = await lookup_patron(request, user_id)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    return start_session(request, patron, method, RedirectResponse(target, status_code=303),
                         cas_ticket_hash=cas_ticket_hash)
