"""Small pieces every route module uses: the services, the session guard, JSON bodies, and
turning Alma's failures into answers a patron can act on."""

from __future__ import annotations

import hmac
import json
import logging
from decimal import Decimal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy import kiosk_auth
from proxy.alma import (
    AlmaConfigError,
    AlmaError,
    AlmaNotPayable,
    AlmaUnavailable,
    AlmaUserNotFound,
)
from proxy.fees import CurrencyMismatch
from proxy.ledger import PaymentRecord
from proxy.patron_sessions import Session, cookie_name
from proxy.runtime import Services
from proxy.web.errors import ApiError

log = logging.getLogger("patronpay.web")


def services(request: Request) -> Services:
    return request.app.state.services


def current_session(request: Request, touch: bool = True) -> Session | None:
    """The request's live session, if its guards allow it; counted as activity unless
    `touch` is False (the caller has more guards to pass first)."""
    svc = services(request)
    sessions = svc.sessions
    session = sessions.load(request.cookies.get(cookie_name(svc.settings.is_https())))
    if session is not None and not kiosk_auth.session_allowed(request.scope, session.channel):
        return None  # a kiosk's patron session works only with that kiosk's signature
    return sessions.touch(session) if session is not None and touch else session


def require_session(request: Request) -> Session:
    """The signed-in patron's session; unsafe methods also need its CSRF token."""
    session = current_session(request, touch=False)
    if session is None:
        raise ApiError(401, "not_signed_in", "Please sign in.")
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise ApiError(403, "bad_csrf_token",
                           "This request is missing its security token. Reload the page.")
    return services(request).sessions.touch(session)


async def read_json_object(request: Request) -> dict:
    body = await request.body()
    try:
        data = json.loads(body or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    except RecursionError:  # nested deeper than the parser goes: bad input, not our error
        log.info("request body nested too deeply", extra={
            "event": "bad_body", "reason": "too_deep", "path": request.url.path})
        raise ApiError(400, "invalid_json", "The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    settings = services(request).settings
    response.set_cookie(cookie_name(settings.is_https()), value,
                        max_age=settings.session_max_minutes * 60, httponly=True,
                        secure=settings.is_https(), samesite="lax", path="/")


def clear_session_cookie(response: Response, request: Request) -> None:
    https = services(request).settings.is_https()
    response.delete_cookie(cookie_name(https), path="/", httponly=True, secure=https,
                           samesite="lax")


def receipt_location(request: Request, payment: PaymentRecord) -> str:
    """Where a returning browser sees a payment's receipt (docs/security.md#receipts): a fresh
    receipt link when the payment's own patron is signed in on this browser; otherwise the
    receipt page with the payment's reference, which shows it only to that patron's session.
    A payment id alone never gets a receipt."""
    session = current_session(request)
    if session is not None and session.patron.primary_id == payment.patron_id:
        return "/receipt.html?" + urlencode({"r": services(request).receipts.token(payment.id)})
    return "/receipt.html?" + urlencode({"p": payment.id})


def redirect_with_error(code: str) -> RedirectResponse:
    """For routes a browser reaches by navigation: back to the fees page, which explains."""
    return RedirectResponse("/?" + urlencode({"error": code}), status_code=303)


def alma_failure(exc: AlmaError | CurrencyMismatch) -> ApiError:
    """An Alma failure as the answer the patron sees."""
    if isinstance(exc, AlmaUnavailable):
        return ApiError(503, "alma_unavailable", "The library system is not answering right "
                        "now. Please try again in a few minutes.", headers={"Retry-After": "30"})
    if isinstance(exc, AlmaUserNotFound):
        return ApiError(404, "account_not_found", "We could not find your library account.")
    if isinstance(exc, AlmaNotPayable):
        return ApiError(409, "not_payable_online", "One of these fees can only be paid at the "
                        "library desk.")
    if isinstance(exc, AlmaConfigError | CurrencyMismatch):
        return ApiError(502, "alma_configuration", "Online payment is not available because "
                        "of a configuration problem. Library staff have been told.")
    return ApiError(502, "alma_error", "The library system could not answer this request. "
                    "Please try again later.")
