"""Primo's "Pay fines" link: a token signed by Ex Libris names the patron. The page has
nothing to click for it, only a notice to use Primo's link.

A token works once (its `jti` is spent in the ledger database until it expires). When another
patron is already signed in on this browser, the link does not swap sessions behind their back:
the page asks "Continue as …?" (`/auth/primo/switch`), and only a yes, sent with the signed-in
session's CSRF token, starts the new session.
"""

from __future__ import annotations

import logging

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from proxy.config import Settings
from proxy.patron_sessions import Session
from proxy.patrons import Patron
from proxy.primo import CLOCK_SKEW_SECONDS, KeySetUnavailable, PrimoTokenError
from proxy.signin.common import keep_sign_in_pace, read_patron, start_session
from proxy.signin.method import Offer, SignInMethod
from proxy.spent_tokens import SpentTokens
from proxy.web.common import (
    current_session,
    read_json_object,
    redirect_with_error,
    require_session,
    services,
)
from proxy.web.errors import ApiError
from proxy.web.responses import JSONResponse

log = logging.getLogger("patronpay.auth")

SWITCH_COOKIE = "patronpay_primo_switch"
SWITCH_MAX_AGE = 300
SWITCH_PAGE = "/?switch=primo"


async def primo(request: Request) -> Response:
    """The token is verified, the patron's sign-in pace kept, the token spent, and then it is
    exchanged for our own session and a redirect to a URL without it, so the 24-hour token
    does not linger in history, logs or Referer."""
    svc = services(request)
    try:
        token = await svc.primo.verify(request.query_params.get("jwt", ""))
    except PrimoTokenError as exc:
        return _refused(exc.reason, "primo_token_invalid")
    except KeySetUnavailable:
        return redirect_with_error("primo_unavailable")
    # The order matters (issue 14). Signature and expiry first: a forged or made-up token
    # touches nothing, so no one can drain a patron's sign-ins by naming them. A token already
    # spent is refused next, by a read that takes nothing: a replayed link from a history or
    # a log must not empty its patron's bucket either (it tells its holder only that the
    # link was used, which using it would tell them anyway). Then the patron's sign-in
    # bucket, before the token is spent: a sign-in refused for pace keeps the link, which
    # works once the bucket refills. The spend comes last and alone decides a race of two
    # requests with one token (the loser took a bucket token, and nothing else).
    spent = SpentTokens(svc.db)
    if spent.is_spent(token.token_id):
        return _refused("replayed", "primo_token_used")
    try:
        keep_sign_in_pace(request, token.user_name)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    if not spent.spend(token.token_id, token.expires_at + CLOCK_SKEW_SECONDS):
        return _refused("replayed", "primo_token_used")
    try:
        patron = await read_patron(request, token.user_name)
    except ApiError as exc:
        return redirect_with_error(exc.code)
    signed_in = current_session(request)
    if signed_in is not None and not _same_patron(signed_in.patron, patron):
        log.info("primo link while another patron is signed in: asking",
                 extra={"event": "signin_switch_asked", "method": "primo"})
        response = RedirectResponse(SWITCH_PAGE, status_code=303)
        response.set_cookie(SWITCH_COOKIE, _switch_signer(request).dumps(
            {"session": signed_in.id_hash, "patron": _patron_fields(patron)}),
            max_age=SWITCH_MAX_AGE, path="/auth/primo", httponly=True,
            secure=svc.settings.is_https(), samesite="lax")
        return response
    return start_session(request, patron, "primo", RedirectResponse("/", status_code=303))


def _refused(reason: str, code: str) -> Response:
    log.warning("primo token refused", extra={"event": "signin_refused", "method": "primo",
                                              "reason": reason})
    return redirect_with_error(code)


async def pending_switch(request: Request) -> Response:
    """For the page: who is signed in, and who the Primo link was for."""
    session = current_session(request)
    waiting = _pending(request, session)
    if session is None or waiting is None:
        raise ApiError(404, "no_switch_pending", "There is no sign-in waiting for an answer.")
    return JSONResponse({"current": {"name": session.patron.name},
                         "next": {"name": waiting.name}})


async def answer_switch(request: Request) -> Response:
    """`{"continue": true}` signs in the patron the Primo link named; false keeps the session
    as it is. Either way the question is gone."""
    session = require_session(request)
    body = await read_json_object(request)
    waiting = _pending(request, session)
    if waiting is None:
        raise ApiError(404, "no_switch_pending", "There is no sign-in waiting for an answer.")
    response = JSONResponse({"ok": True})
    if body.get("continue") is True:
        start_session(request, waiting, "primo", response)
    response.delete_cookie(SWITCH_COOKIE, path="/auth/primo")
    return response


def _pending(request: Request, session: Session | None) -> Patron | None:
    """The patron waiting to be signed in, if the question was asked of this very session."""
    if session is None:
        return None
    try:
        saved = _switch_signer(request).loads(request.cookies.get(SWITCH_COOKIE, ""),
                                              max_age=SWITCH_MAX_AGE)
        if saved["session"] != session.id_hash:
            return None
        return Patron(*(str(value) for value in saved["patron"]))
    except (BadSignature, KeyError, TypeError):
        return None


def _switch_signer(request: Request) -> URLSafeTimedSerializer:
    keys = services(request).settings.secret_keys
    return URLSafeTimedSerializer(list(reversed(keys)), salt="primo-switch")


def _patron_fields(patron: Patron) -> list[str]:
    return [patron.primary_id, patron.first_name, patron.last_name, patron.email,
            patron.account_type]


def _same_patron(a: Patron, b: Patron) -> bool:
    return a.primary_id.casefold() == b.primary_id.casefold()


def offer(settings: Settings) -> Offer:
    return Offer.notice()


METHOD = SignInMethod(
    name="primo",
    routes=(Route("/auth/primo", primo, methods=["GET"]),
            Route("/auth/primo/switch", pending_switch, methods=["GET"]),
            Route("/auth/primo/switch", answer_switch, methods=["POST"])),
    offer=offer,
    requires=("primo_institution",),
)
