"""Signing out, and ending a session whose patron disappeared from Alma. Signing in is the
sign-in methods' job (proxy/signin/)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.cas import logout_url
from proxy.web.common import (
    clear_session_cookie,
    current_session,
    require_session,
    services,
)
from proxy.web.errors import ApiError
from proxy.web.responses import JSONResponse


async def logout(request: Request) -> Response:
    """End the session. A CAS session also has the browser sent to CAS's logout (`next`):
    otherwise the CAS session lives on, and the next person at a shared computer who picks
    CAS would be signed in as this patron without a password."""
    session = require_session(request)
    services(request).sessions.end(session)
    settings = services(request).settings
    body: dict[str, object] = {"ok": True}
    if session.method == "cas" and settings.cas_url:
        body["next"] = logout_url(settings.cas_url, settings.public_url + "/")
    response = JSONResponse(body)
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
    Route("/auth/logout", logout, methods=["POST"]),
]
