"""Kiosk request authentication (docs/security.md#kiosk-request-signatures): the proxy's side of the
kiosk signature.

A kiosk agent signs every request with its own secret (kiosk/signing.py is the independent
signer). Here we check, in this order: the headers are well formed, the kiosk is one we know,
the signature matches, the time is within the allowed skew, and the nonce is new for that
kiosk. The nonce is written in the same transaction that checks it, so two copies of one
request racing each other cannot both pass. Nonces older than twice the skew are purged: by
then the timestamp they came with is refused anyway.

A patron session opened by a kiosk has the channel `kiosk:<id>`; it is usable only by requests
signed by that same kiosk (`session_allowed`). No Starlette here: the web layer
(proxy/web/kiosk.py) passes headers, the body and the ASGI scope in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from proxy.database.errors import IntegrityError
from proxy.db import Database

SCHEME = "PATRONPAY-KIOSK-V1"
CHANNEL_PREFIX = "kiosk:"
SCOPE_KEY = "patronpay.kiosk_id"  # where the web layer puts the verified kiosk id
HEADERS = ("x-kiosk-id", "x-kiosk-timestamp", "x-kiosk-nonce", "x-kiosk-signature")

_KIOSK_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,128}")  # 16+ random bytes, URL-safe base64
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class KioskAuthError(Exception):
    """A refused kiosk request. `reason` is for the log; `code` and `message` for the answer.
    Neither ever holds a secret, a signature or the request's content."""

    def __init__(self, reason: str, code: str, message: str, kiosk_id: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code
        self.message = message
        self.kiosk_id = kiosk_id


def _refused(reason: str, kiosk_id: str = "") -> KioskAuthError:
    # Unknown kiosk, malformed headers and a bad signature look the same from outside.
    return KioskAuthError(reason, "kiosk_unauthorized",
                          "This kiosk request could not be authenticated.", kiosk_id)


@dataclass(frozen=True)
class KioskRequest:
    """What a request says about itself in its `X-Kiosk-*` headers."""

    kiosk_id: str
    timestamp: str
    nonce: str
    signature: str


def has_kiosk_headers(headers: Mapping[str, str]) -> bool:
    return any(headers.get(name) is not None for name in HEADERS)


def string_to_sign(method: str, path_with_query: str, timestamp: str, nonce: str,
                   body: bytes) -> str:
    return "\n".join([SCHEME, method.upper(), path_with_query, timestamp, nonce,
                      hashlib.sha256(body).hexdigest()])


def expected_signature(secret: str, method: str, path_with_query: str, timestamp: str,
                       nonce: str, body: bytes) -> str:
    text = string_to_sign(method, path_with_query, timestamp, nonce, body)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def parse_headers(headers: Mapping[str, str]) -> KioskRequest:
    """The four headers, shape-checked; raises KioskAuthError("malformed")."""
    kiosk_id = (headers.get("x-kiosk-id") or "").strip().lower()
    request = KioskRequest(kiosk_id, headers.get("x-kiosk-timestamp") or "",
                           headers.get("x-kiosk-nonce") or "",
                           (headers.get("x-kiosk-signature") or "").lower())
    if not _KIOSK_ID.fullmatch(kiosk_id):
        raise _refused("malformed_kiosk_id")
    if not _TIMESTAMP.fullmatch(request.timestamp):
        raise _refused("malformed_timestamp", kiosk_id)
    if not _NONCE.fullmatch(request.nonce):
        raise _refused("malformed_nonce", kiosk_id)
    if not _SIGNATURE.fullmatch(request.signature):
        raise _refused("malformed_signature", kiosk_id)
    return request


def verify_request(
    *,
    keys: Mapping[str, str],
    headers: Mapping[str, str],
    method: str,
    path_with_query: str,
    body: bytes,
    db: Database,
    now: float,
    max_skew: float,
) -> str:
    """The id of the kiosk that signed this request, or KioskAuthError. A request that passes
    has used up its nonce."""
    request = parse_headers(headers)
    secret = keys.get(request.kiosk_id)
    if secret is None:
        raise _refused("unknown_kiosk")
    wanted = expected_signature(secret, method, path_with_query, request.timestamp,
                                request.nonce, body)
    if not hmac.compare_digest(wanted.encode(), request.signature.encode()):
        raise _refused("bad_signature", request.kiosk_id)
    # Only after the signature: otherwise a stale request would tell a stranger which kiosk
    # ids exist (they get the same refusal as an unknown kiosk).
    if abs(now - int(request.timestamp)) > max_skew:
        raise KioskAuthError("stale", "kiosk_clock_skew", "This kiosk request is too old or "
                             "too far in the future: check the kiosk's clock.", request.kiosk_id)
    # Only a correctly signed request may write a nonce, so forgeries cannot fill the table.
    use_nonce(db, request.kiosk_id, request.nonce, now, max_skew)
    return request.kiosk_id


def use_nonce(db: Database, kiosk_id: str, nonce: str, now: float, max_skew: float) -> None:
    """Record the nonce as used, in one transaction with the check; KioskAuthError("replay")
    if that kiosk already used it. Purges nonces nobody can replay any more."""
    try:
        with db.write() as conn:
            conn.execute("DELETE FROM kiosk_nonces WHERE at < ?", (now - 2 * max_skew,))
            conn.execute("INSERT INTO kiosk_nonces (kiosk_id, nonce, at) VALUES (?, ?, ?)",
                         (kiosk_id, nonce, now))
    except IntegrityError:
        raise KioskAuthError("replay", "kiosk_replay", "This kiosk request was already used.",
                             kiosk_id) from None


def channel_for(kiosk_id: str) -> str:
    return CHANNEL_PREFIX + kiosk_id


def kiosk_of_channel(channel: str) -> str | None:
    return channel[len(CHANNEL_PREFIX):] if channel.startswith(CHANNEL_PREFIX) else None


def mark_verified(scope: MutableMapping[str, Any], kiosk_id: str) -> None:
    scope[SCOPE_KEY] = kiosk_id


def verified_kiosk(scope: Mapping[str, Any]) -> str | None:
    return scope.get(SCOPE_KEY)


def session_allowed(scope: Mapping[str, Any], channel: str) -> bool:
    """A kiosk's patron session may be used only by requests that kiosk signed; other
    sessions are not affected."""
    kiosk_id = kiosk_of_channel(channel)
    return kiosk_id is None or verified_kiosk(scope) == kiosk_id


def end_open_sessions(db: Database, channel: str, now: float) -> int:
    """End every open session of one kiosk: a kiosk serves one patron at a time, so when it
    opens a new session, an earlier one it may have lost track of (a restart) must not live on."""
    with db.write() as conn:
        return conn.execute(
            "UPDATE sessions SET ended_at = ? WHERE channel = ? AND ended_at IS NULL",
            (now, channel)).rowcount
