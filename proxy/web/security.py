"""Request guards and response headers applied to every route (docs/security.md):

- bodies over the configured size are refused with 413 before a handler reads them;
- unsafe methods need a same-origin `Origin`, except CashNet's cross-site routes and the
  kiosk API (server to server, authenticated by signature);
- every response carries a strict Content-Security-Policy and friends;
- one access-log line per request, with the notification token redacted and no query string;
- kiosk requests are checked by their signature (proxy/web/kiosk.py) before any route.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy import kiosk_auth
from proxy.logs import redact_path

log = logging.getLogger("patronpay.access")

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
KIOSK_PREFIX = "/api/kiosk/"
KIOSK_HEADERS = frozenset(name.encode("latin-1") for name in kiosk_auth.HEADERS)
# /auth/cas: a CAS server's single-logout POST (server to server; it only ends a session).
CROSS_SITE_PREFIXES = ("/cashnet/postback/", "/cashnet/return", KIOSK_PREFIX, "/auth/cas")
NO_STORE_PREFIXES = ("/api/", "/auth/", "/pay/", "/cashnet/")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _json_error(status: int, code: str, message: str) -> tuple[dict, bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    return start, body


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    start, body = _json_error(status, code, message)
    await send(start)
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def content_security_policy(cashnet_url: str) -> str:
    parts = urlsplit(cashnet_url)
    cashnet_origin = f"{parts.scheme}://{parts.netloc}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        f"form-action 'self' {cashnet_origin}",
        "frame-ancestors 'none'",
    ])


# Checks a kiosk request's signature (proxy/web/kiosk.py): the receive to route it with (its
# body replayed), or None when it was answered or its client went away.
KioskCheck = Callable[[Scope, Receive, Send], Awaitable[Receive | None]]


class RequestGuards:
    """Every guard and header of this module as one ASGI layer, in the order a request meets
    them: the access log (outermost: it sees every answer, refusals included), the security
    headers (on every answer), the body limit, the origin check, and the kiosk signature check
    (`kiosk_check`, for every path under /api/kiosk/ and every request with `X-Kiosk-*`
    headers). One layer, not five: each layer's call and `send` wrapper was a visible share of
    a fees page's CPU (docs/performance.md#the-fees-pages-own-cpu)."""

    def __init__(self, app: ASGIApp, *, csp: str, hsts: bool, max_bytes: int,
                 public_origin: str, kiosk_check: KioskCheck) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.public_origin = public_origin
        self.kiosk_check = kiosk_check
        self.headers = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
            # No other site may embed our answers (a patron's JSON as a script, an image).
            "Cross-Origin-Resource-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        if hsts:
            self.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # Encoded once, not on every response.
        self._raw = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                     for name, value in self.headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.monotonic()
        path = scope["path"]
        no_store = path.startswith(NO_STORE_PREFIXES) or path.endswith((".html", "/"))
        status = 500
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = self._with_headers(message.get("headers", ()), no_store)
            await send(message)

        try:
            await self._guarded(scope, receive, guarded_send, path)
        except _BodyTooLarge:
            if not started:
                await _send_error(guarded_send, 413, "body_too_large",
                                  f"The request body is larger than {self.max_bytes} bytes.")
        finally:
            log.info("request", extra={
                "event": "request", "method": scope["method"], "path": redact_path(path),
                "status": status, "ms": round((time.monotonic() - started_at) * 1000)})

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """The body limit, the origin check and the kiosk signature, then the app."""
        # One pass over the request's headers for all three (names arrive in lower case).
        length = origin = None
        kiosk_headers = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value if length is None else length
            elif name == b"origin":
                origin = value if origin is None else origin
            elif name in KIOSK_HEADERS:
                kiosk_headers = True
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, 413, "body_too_large",
                              f"The request body is larger than {self.max_bytes} bytes.")
            return
        if (scope["method"] in UNSAFE_METHODS and not path.startswith(CROSS_SITE_PREFIXES)
                and (origin or b"").decode("latin-1") != self.public_origin):
            await _send_error(send, 403, "bad_origin",
                              "This request must come from the payment site itself.")
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        routed: Receive | None = limited_receive
        if kiosk_headers or path.startswith(KIOSK_PREFIX):
            routed = await self.kiosk_check(scope, limited_receive, send)
            if routed is None:
                return
        await self.app(scope, routed, send)

    def _with_headers(self, headers: Iterable[tuple[bytes, bytes]],
                      no_store: bool) -> list[tuple[bytes, bytes]]:
        """The response's headers with ours added where the route set none of the same name,
        and `Cache-Control: no-store` in place of any the route set, when asked."""
        given = [(name, value) for name, value in headers
                 if not (no_store and name.lower() == b"cache-control")]
        present = {name.lower() for name, _ in given}
        given.extend(header for header in self._raw if header[0] not in present)
        if no_store:
            given.append((b"cache-control", b"no-store"))
        return given


def client_address(scope: Scope, trusted: Iterable[Network]) -> str:
    """The caller's address: the peer, or — when the peer is one of our trusted proxies — the
    rightmost X-Forwarded-For hop that is not itself a trusted proxy. Every X-Forwarded-For
    line counts, in order (RFC 9110: repeated lines are one comma list); reading only the
    first would let a client's own line pass for the proxy's."""
    trusted = tuple(trusted)
    peer = (scope.get("client") or ("", 0))[0]
    if not _in(peer, trusted):
        return peer
    forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _in(hop, trusted):
            return hop
    return peer


def peer_is_trusted(scope: Scope, trusted: Iterable[Network]) -> bool:
    return _in((scope.get("client") or ("", 0))[0], tuple(trusted))


def address_allowed(address: str, networks: Iterable[Network]) -> bool:
    return _in(address, tuple(networks))


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
