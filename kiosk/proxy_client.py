"""The kiosk agent's client for the central proxy: every request signed as this kiosk
(kiosk/signing.py); patron calls also carry the proxy session's cookie, CSRF token and the
proxy's own Origin, exactly as the proxy's web pages would send them.

The browser never talks to the proxy: it talks to the agent, and the agent talks to the proxy
server to server. Answers come back as `ProxyAnswer`; trouble reaching the proxy raises
`ProxyUnavailable`. Nothing here logs a card number, a cookie or a token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from kiosk.signing import KioskAuth

log = logging.getLogger("patronpay.kiosk.proxy")

SESSION_COOKIE = "patronpay_session"
HOST_PREFIX = "__Host-"  # the proxy's cookie name over https


class ProxyUnavailable(Exception):
    """The proxy could not be reached or did not answer in time."""


@dataclass(frozen=True)
class ProxyAnswer:
    status: int
    data: dict
    retry_after: str = ""  # the proxy's Retry-After on a 429 or 503, for the page

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        error = self.data.get("error")
        return str(error.get("code", "")) if isinstance(error, dict) else ""


@dataclass(frozen=True)
class ProxySession:
    """What the agent keeps of a proxy session: the cookie value and its CSRF token."""

    cookie: str
    csrf_token: str


class ProxyClient:
    def __init__(self, proxy_url: str, kiosk_id: str, secret: str, *, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(proxy_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"  # what the proxy's Origin check expects
        self.cookie_name = (HOST_PREFIX if parts.scheme == "https" else "") + SESSION_COOKIE
        self._http = httpx.AsyncClient(
            base_url=proxy_url.rstrip("/"), auth=KioskAuth(kiosk_id, secret, clock),
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "patronpay-kiosk"})

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the kiosk API ----------------------------------------------------------------------

    async def open_session(self, kind: str, value: str) -> ProxyAnswer:
        """Ask the proxy to open a patron session for a card (201 with the session)."""
        return await self._send("POST", "/api/kiosk/sessions",
                                body={"credential": {"kind": kind, "value": value}})

    async def end_session(self, session: ProxySession) -> ProxyAnswer:
        return await self._send("DELETE", "/api/kiosk/sessions/current", session=session)

    async def report(self, body: dict) -> ProxyAnswer:
        """This kiosk's state for staff (kiosk/fleet.py)."""
        return await self._send("POST", "/api/kiosk/report", body=body)

    async def institution_page(self) -> ProxyAnswer:
        """A consortium institution's help text and languages for the kiosk's pages
        (kiosk/institution_page.py); 404 outside a consortium. Not signed: it is what the
        institution's public pages show, and a kiosk with a wrong key should be refused for
        its patrons' calls, not for this."""
        return await self._send("GET", "/consortium/page.json", signed=False)

    # -- the patron API, as this kiosk's session ------------------------------------------------

    async def fees(self, session: ProxySession) -> ProxyAnswer:
        return await self._send("GET", "/api/fees", session=session)

    async def create_payment(self, session: ProxySession, body: dict,
                             language: str = "") -> ProxyAnswer:
        """`language`: the kiosk page's, so an e-mailed receipt is in it (the proxy reads it
        from `?lang=`, as for a web page)."""
        path = f"/api/payments?lang={quote(language, safe='')}" if language else "/api/payments"
        return await self._send("POST", path, session=session, body=body)

    async def payment(self, session: ProxySession, payment_id: str) -> ProxyAnswer:
        return await self._send("GET", f"/api/payments/{quote(payment_id, safe='')}",
                                session=session)

    async def history(self, session: ProxySession, limit: int) -> ProxyAnswer:
        return await self._send("GET", f"/api/payments?limit={limit}", session=session)

    async def payment_action(self, session: ProxySession, payment_id: str,
                             action: str) -> ProxyAnswer:
        """`resume` (its hand-off again) or `cancel` a payment in progress."""
        return await self._send(
            "POST", f"/api/payments/{quote(payment_id, safe='')}/{action}", session=session,
            body={})

    async def receipt_email(self, session: ProxySession, payment_id: str) -> ProxyAnswer:
        """Whether the receipt screen may offer "E-mail receipt" for this payment."""
        return await self._send("GET", _receipt_email_path(payment_id), session=session)

    async def request_receipt_email(self, session: ProxySession,
                                    payment_id: str) -> ProxyAnswer:
        """The patron chose "E-mail receipt" (202; 409 once already asked)."""
        return await self._send("POST", _receipt_email_path(payment_id), session=session,
                                body={})

    # -- plumbing -------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, *, session: ProxySession | None = None,
                    body: dict | None = None, signed: bool = True) -> ProxyAnswer:
        headers = {"Origin": self.origin}
        if session is not None:
            headers["X-CSRF-Token"] = session.csrf_token
            headers["Cookie"] = f"{self.cookie_name}={session.cookie}"
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, default=_decimal_text).encode()
        try:
            response = await self._http.request(
                method, path, headers=headers, content=content,
                **({} if signed else {"auth": None}))
        except httpx.HTTPError as exc:
            log.warning("proxy unreachable", extra={"event": "proxy_unreachable",
                                                     "error": type(exc).__name__, "path": path})
            raise ProxyUnavailable(type(exc).__name__) from None
        finally:
            # The session cookie goes per request and is never kept in the client's jar, so
            # one patron's session can never ride along on a later patron's call.
            self._http.cookies.clear()
        data = _json_object(response)
        if response.status_code >= 500 or (response.status_code >= 400 and not data):
            log.warning("proxy error", extra={"event": "proxy_error", "path": path,
                                              "status": response.status_code})
        retry = response.headers.get("retry-after", "")
        return ProxyAnswer(response.status_code, data, retry if retry.isdigit() else "")


def _receipt_email_path(payment_id: str) -> str:
    return f"/api/kiosk/payments/{quote(payment_id, safe='')}/receipt-email"


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_object(response: httpx.Response) -> dict:
    try:
        data = json.loads(response.content or b"{}", parse_float=Decimal)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
