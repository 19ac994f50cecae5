"""Signing the kiosk agent's requests to the central proxy
(docs/security.md#kiosk-request-signatures).

Every request carries the kiosk's id, the time, a fresh nonce and an HMAC-SHA256 over all of
them plus the method, the path with its query and a hash of the body. The proxy checks the
signature, refuses a time more than its allowed skew away, and remembers nonces, so a request
can be neither forged nor replayed, and its method, path and body cannot be altered. Headers
are not signed (the session cookie and CSRF token ride beside the signature): the link to the
proxy must be https, as the proxy's public URL is.

The proxy verifies with its own implementation (proxy/kiosk_auth.py); the kiosk never imports
the proxy, so a misreading of the format cannot hide in shared code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator

import httpx

SCHEME = "PATRONPAY-KIOSK-V1"
NONCE_BYTES = 18  # at least 16 random bytes; 18 encode to 24 URL-safe characters


def string_to_sign(method: str, path_with_query: str, timestamp: str, nonce: str,
                   body: bytes) -> str:
    """The canonical text the signature covers, one item per line."""
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([SCHEME, method.upper(), path_with_query, timestamp, nonce, body_hash])


def sign(secret: str, method: str, path_with_query: str, body: bytes, *,
         timestamp: int, nonce: str) -> str:
    """The hex HMAC-SHA256 signature of one request."""
    text = string_to_sign(method, path_with_query, str(timestamp), nonce, body)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def signed_headers(kiosk_id: str, secret: str, method: str, path_with_query: str, body: bytes,
                   *, now: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The four `X-Kiosk-*` headers for one request."""
    timestamp = int(time.time() if now is None else now)
    nonce = nonce or new_nonce()
    return {
        "X-Kiosk-Id": kiosk_id,
        "X-Kiosk-Timestamp": str(timestamp),
        "X-Kiosk-Nonce": nonce,
        "X-Kiosk-Signature": sign(secret, method, path_with_query, body,
                                  timestamp=timestamp, nonce=nonce),
    }


class KioskAuth(httpx.Auth):
    """Signs every request of an httpx client as this kiosk, just before it is sent (so the
    signature covers the exact path, query and body that go on the wire)."""

    requires_request_body = True

    def __init__(self, kiosk_id: str, secret: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.kiosk_id = kiosk_id
        self._secret = secret
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.raw_path.decode("ascii")
        request.headers.update(signed_headers(self.kiosk_id, self._secret, request.method, path,
                                              request.content, now=self._clock()))
        yield request
