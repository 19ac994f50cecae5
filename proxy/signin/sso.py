"""Single sign-on by the campus web server (Shibboleth, mod_auth_cas, ...): it authenticates
the patron and passes the id in a header on `/auth/sso`."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.config import Settings
from proxy.signin.common import MAX_ID_LENGTH, sign_in_by_navigation
from proxy.signin.method import Offer, SignInMethod
from proxy.signin.next_page import safe_next
from proxy.web.common import redirect_with_error, services
from proxy.web.security import client_address, peer_is_trusted

log = logging.getLogger("patronpay.auth")


async def sso(request: Request) -> Response:
    """Only our own trusted proxies may set the header. A browser comes here by navigation, so
    refusals go back to the sign-in page, which explains them."""
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


def offer(settings: Settings) -> Offer:
    url = settings.sso_login_url
    # Our own /auth/sso (behind the web server) honours `next`; an SSO's own login page is
    # used as configured, since it comes back to /auth/sso on its own terms.
    href = f"{url}?next=/" if url.startswith("/auth/sso") else url
    return Offer.link(href, entry=url)


METHOD = SignInMethod(
    name="sso",
    routes=(Route("/auth/sso", sso, methods=["GET"]),),
    offer=offer,
)
