"""Request guards and response headers applied to every route (docs/security.md):

- bodies over the configured size are refused with 413 before a handler reads them;
- unsafe methods need a same-origin `Origin`, except CashNet's cross-site routes and the
  kiosk API (server to server, authenticated by signature);
- every response carries a strict Content-Security-Policy and friends;
- one access-log line per request, with the notification token redacted and no query string.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.logs import redact_path

log = logging.getLogger("patronpay.access")

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# /auth/cas: a CAS server's single-logout POST (server to server; it only ends a session).
CROSS_SITE_PREFIXES = ("/cashnet/postback/", "/cashnet/return", "/api/kiosk/", "/auth/cas")
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


class BodyLimit:
    """Refuse request bodies above `max_bytes`, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, 413, "body_too_large",
                              f"The request body is larger than {self.max_bytes} bytes.")
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, "body_too_large",
                                  f"The request body is larger than {self.max_bytes} bytes.")


class _BodyTooLarge(Exception):
    pass


class OriginCheck:
    """Unsafe methods must come from our own pages (a same-origin `Origin` header)."""

    def __init__(self, app: ASGIApp, public_origin: str) -> None:
        self.app = app
        self.public_origin = public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in UNSAFE_METHODS
                and not scope["path"].startswith(CROSS_SITE_PREFIXES)):
            origin = Headers(scope=scope).get("origin", "")
            if origin != self.public_origin:
                await _send_error(send, 403, "bad_origin",
                                  "This request must come from the payment site itself.")
                return
        await self.app(scope, receive, send)


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


class SecurityHeaders:
    """Security headers on every response; `no-store` on everything about a patron."""

    def __init__(self, app: ASGIApp, csp: str, hsts: bool) -> None:
        self.app = app
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
        no_store = scope["path"].startswith(NO_STORE_PREFIXES) or scope["path"].endswith(
            (".html", "/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._with_headers(message.get("headers", ()), no_store)
            await send(message)

        await self.app(scope, receive, send_with_headers)

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


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            log.info("request", extra={
                "event": "request", "method": scope["method"],
                "path": redact_path(scope["path"]), "status": status,
                "ms": round((time.monotonic() - started) * 1000)})


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
