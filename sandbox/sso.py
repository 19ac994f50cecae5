"""Sandbox SSO gateway: a stand-in for the campus web server (Shibboleth SP, mod_auth_cas, ...)
that sits in front of patronpay and tells it who signed in through a trusted header.

  GET  /login?next=/   campus login form
  POST /login          right credentials → server-to-server `GET {proxy}/auth/sso?next=…` with
                       `<header>: <almaId>`, then the proxy's answer is relayed to the browser:
                       its Set-Cookie headers verbatim and a 303 to the URL it redirected to.
                       A `next` under `/staff/` goes to the staff sign-in, `/staff/auth/sso`,
                       as the campus web server protects that path too
  GET  /static/campus.css

In production the header is set by Apache/nginx on the same origin as patronpay, and the
browser talks to patronpay through it. Here the gateway listens on its own port and calls the
proxy from loopback (which the proxy trusts by default). Relaying the session cookie still
works because cookies are scoped to the host, not the port: a cookie set in this answer for
127.0.0.1 goes with the browser's next request to the proxy on 127.0.0.1. So browse the
gateway and the proxy under the same host name.

`app.state.sso` is the `SsoGateway`: `configure(proxy_url, header)` and a log of hand-offs.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.campus import (
    STYLESHEET_ROUTE,
    CampusAccount,
    check_credentials,
    is_web_url,
    load_campus_users,
    page,
    parse_accounts,
    read_form,
    root_path,
    with_query,
)

DEFAULT_HEADER = "X-Remote-User"
PROXY_TIMEOUT_S = 15.0
LOG_CAP = 10_000


class SsoGateway:
    """The campus accounts, where the proxy is, and a log of the hand-offs to it."""

    def __init__(self, accounts: dict[str, CampusAccount]) -> None:
        self._accounts = accounts
        self._lock = threading.Lock()
        self._proxy_url: str | None = None
        self._header = DEFAULT_HEADER
        self._handoffs: list[dict[str, Any]] = []

    def configure(self, proxy_url: str, header: str = DEFAULT_HEADER) -> None:
        """Point the gateway at patronpay (its base URL) and name the trusted header."""
        if not is_web_url(proxy_url):
            raise ValueError(f"proxy_url must be an http(s) URL, got {proxy_url!r}")
        if not header or not all(c.isalnum() or c in "-_" for c in header):
            raise ValueError(f"not a header name: {header!r}")
        with self._lock:
            self._proxy_url = proxy_url.rstrip("/")
            self._header = header

    def target(self) -> tuple[str, str] | None:
        """(proxy base URL, header name), or None before `configure`."""
        with self._lock:
            return (self._proxy_url, self._header) if self._proxy_url else None

    def log_in(self, user: str, password: str) -> CampusAccount | None:
        return check_credentials(self._accounts, user, password)

    def handoffs(self) -> list[dict[str, Any]]:
        """Each call to the proxy: user, alma_id, next, status, location, error (no cookies)."""
        with self._lock:
            return copy.deepcopy(self._handoffs)

    def record(self, **entry: Any) -> None:
        with self._lock:
            self._handoffs.append(entry)
            del self._handoffs[:-LOG_CAP]

    def reset(self) -> None:
        """Forget the hand-offs (the configuration stays)."""
        with self._lock:
            self._handoffs.clear()


class SsoRoutes:
    def __init__(self, gateway: SsoGateway) -> None:
        self.gateway = gateway

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{root_path(request)}/login", status_code=302)

    async def login_form(self, request: Request) -> Response:
        target = self.gateway.target()
        if target is None:
            return not_configured(request)
        return login_page(request, target, request.query_params.get("next", "/"))

    async def login(self, request: Request) -> Response:
        target = self.gateway.target()
        if target is None:
            return not_configured(request)
        form = await read_form(request)
        if form is None:
            return message(request, 400, "Sign-in failed", "The sign-in form could not be read.")
        username, next_path = form.get("username", "").strip(), form.get("next") or "/"
        account = self.gateway.log_in(username, form.get("password", ""))
        if account is None:
            return login_page(request, target, next_path, username=username,
                              error="The user name or password is not right. Try again.")
        return await self.hand_off(request, target, account, next_path)

    async def hand_off(self, request: Request, target: tuple[str, str],
                       account: CampusAccount, next_path: str) -> Response:
        """Tell the proxy who this is, the way the campus web server would, and pass its
        answer back to the browser."""
        proxy_url, header = target
        entry: dict[str, Any] = {"user": account.user, "alma_id": account.alma_id,
                                 "next": next_path}
        browser = request.client.host if request.client else ""
        try:
            # Async client: in the demo the proxy runs on this same event loop.
            async with httpx.AsyncClient(timeout=PROXY_TIMEOUT_S, trust_env=False,
                                         follow_redirects=False) as client:
                answer = await client.get(
                    with_query(f"{proxy_url}{handoff_path(next_path)}", next=next_path),
                    headers={header: account.alma_id, "X-Forwarded-For": browser})
        except httpx.HTTPError as exc:
            self.gateway.record(**entry, status=None, location=None, error=type(exc).__name__)
            return message(request, 502, "patronpay is not answering",
                           f"The gateway could not reach patronpay at {proxy_url}.")
        location = answer.headers.get("location")
        self.gateway.record(**entry, status=answer.status_code, location=location, error=None)
        if answer.is_redirect and location:
            return relay_redirect(request, answer, urljoin(str(answer.url), location), proxy_url)
        return relay_error(request, answer)


def handoff_path(next_path: str) -> str:
    """The patrons' sign-in, or the staff pages' own for a page under /staff/."""
    staff = next_path == "/staff" or next_path.startswith("/staff/")
    return "/staff/auth/sso" if staff else "/auth/sso"


def relay_redirect(request: Request, answer: httpx.Response, target: str,
                   proxy_url: str) -> Response:
    """303 to where the proxy sent us (only ever on the proxy's origin), with its cookies."""
    if _origin(target) != _origin(proxy_url):
        return message(request, 502, "Unexpected answer from patronpay",
                       "patronpay redirected somewhere other than itself.")
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    for cookie in answer.headers.get_list("set-cookie"):
        response.headers.append("set-cookie", cookie)
    return response


def relay_error(request: Request, answer: httpx.Response) -> Response:
    """The proxy refused: show its `{"error": {"code", "message"}}` with its status."""
    code, text = None, f"patronpay answered HTTP {answer.status_code}."
    try:
        error = answer.json().get("error", {})
        code, text = str(error["code"]), str(error["message"])
    except (ValueError, AttributeError, KeyError, TypeError):
        pass
    status = answer.status_code if answer.status_code >= 400 else 502
    return message(request, status, "Sign-in refused by patronpay", text, code=code,
                   retry=f"{root_path(request)}/login")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def login_page(request: Request, target: tuple[str, str], next_path: str, *,
               username: str = "", error: str | None = None) -> Response:
    proxy_url, header = target
    return page(request, "sso_login.html", {
        "proxy_url": proxy_url, "header": header, "next": next_path,
        "username": username, "error": error})


def not_configured(request: Request) -> Response:
    return message(request, 503, "Gateway not configured",
                   "This gateway does not know where patronpay is yet. Call "
                   "app.state.sso.configure(proxy_url) (the demo does).")


def message(request: Request, status: int, heading: str, text: str, *,
            code: str | None = None, retry: str | None = None) -> Response:
    return page(request, "sso_message.html",
                {"heading": heading, "message": text, "code": code, "retry": retry},
                status=status)


def create_app(users: dict | None = None) -> Starlette:
    """The gateway with `users` (name → account dict), or the seeded campus accounts."""
    gateway = SsoGateway(parse_accounts(users if users is not None else load_campus_users()))
    routes = SsoRoutes(gateway)
    app = Starlette(routes=[
        Route("/", routes.home, methods=["GET"]),
        Route("/login", routes.login_form, methods=["GET"]),
        Route("/login", routes.login, methods=["POST"]),
        STYLESHEET_ROUTE,
    ])
    app.state.sso = gateway
    return app
