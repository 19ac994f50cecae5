"""Primo's "Pay fines" link: a token signed by Ex Libris names the patron. The page has
nothing to click for it, only a notice to use Primo's link."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.config import Settings
from proxy.primo import KeySetUnavailable, PrimoTokenError
from proxy.signin.common import sign_in_by_navigation
from proxy.signin.method import Offer, SignInMethod
from proxy.web.common import redirect_with_error, services

log = logging.getLogger("patronpay.auth")


async def primo(request: Request) -> Response:
    """The token is verified, then exchanged for our own session and a redirect to a URL
    without it, so the 24-hour token does not linger in history, logs or Referer."""
    try:
        patron = await services(request).primo.verify(request.query_params.get("jwt", ""))
    except PrimoTokenError as exc:
        log.warning("primo token refused", extra={"event": "signin_refused", "method": "primo",
                                                  "reason": exc.reason})
        return redirect_with_error("primo_token_invalid")
    except KeySetUnavailable:
        return redirect_with_error("primo_unavailable")
    return await sign_in_by_navigation(request, patron.user_name, "primo", "/")


def offer(settings: Settings) -> Offer:
    return Offer.notice()


METHOD = SignInMethod(
    name="primo",
    routes=(Route("/auth/primo", primo, methods=["GET"]),),
    offer=offer,
    requires=("primo_institution",),
)
