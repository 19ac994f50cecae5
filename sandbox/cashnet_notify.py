"""Deliver one store notification attempt and describe it for the record
(docs/sandbox.md#checkout-page-and-completion, docs/sandbox.md#notification-record).

Always async (`httpx.AsyncClient`): the demo serves the proxy in the same event loop as the
sandbox, so a blocking client there would deadlock. Synchronous callers run it on a fresh loop.
"""

from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

USER_AGENT = "CashNet-Sandbox/1.0"
RESPONSE_KEEP = 1024
_POSTBACK_TOKEN = re.compile(r"(/postback/)([^/?#]+)", re.IGNORECASE)
# One TLS context for every delivery: building one loads the CA bundle (~30 ms of CPU), and a
# new client per notification would do that each time, stalling the whole sandbox meanwhile.
_TLS = ssl.create_default_context()


@dataclass
class Delivery:
    """One notification to send: the primary one (number 0) or a duplicate (1..n)."""

    cid: str
    store: str
    kind: str  # success | failure
    url: str  # the real URL, token included; only the redacted form is ever recorded
    pairs: list[tuple[str, str]]
    body: bytes
    content_type: str
    faults: dict[str, Any]
    timeout: float
    retries: int
    retry_delay_s: float
    generation: threading.Event  # set when the sandbox is reset: stop, record nothing
    number: int = 0
    source_address: str | None = field(default=None)


def redact(url: str) -> str:
    """Hide the secret path segment after `/postback/` (docs/cashnet.md#pitfalls (item 13))."""
    return _POSTBACK_TOKEN.sub(r"\1<redacted>", url)


def with_token_fault(url: str, mode: str | None) -> str:
    """`omit` drops the token segment, `wrong` alters one character of it.

    The token is the segment after `/postback/`, or else the last path segment.
    """
    if mode not in ("omit", "wrong"):
        return url
    parts = urlsplit(url)
    segments = parts.path.split("/")
    lowered = [segment.lower() for segment in segments]
    if "postback" in lowered and lowered.index("postback") + 1 < len(segments):
        index = lowered.index("postback") + 1
    else:
        index = max((i for i, s in enumerate(segments) if s), default=len(segments) - 1)
    token = segments[index]
    if mode == "omit":
        segments[index] = ""
    else:
        segments[index] = ("y" if token[:1] == "x" else "x") + token[1:]
    return urlunsplit(parts._replace(path="/".join(segments)))


def skipped_record(cid: str, store: str, kind: str, reason: str, url: str,
                   pairs: list[tuple[str, str]], faults: dict[str, Any]) -> dict[str, Any]:
    """The record of a notification that was not sent (no URL, dropped, cancel not notified)."""
    return {
        "cid": cid, "store": store, "kind": kind, "delivery": 0, "attempt": 0,
        "sent": False, "skipped": reason, "url": redact(url) if url else None, "method": None,
        "headers": {}, "body": None, "fields": [list(pair) for pair in pairs],
        "source_address": None, "sent_at": _now(), "status": None, "response_body": None,
        "error": None, "faults": dict(faults),
    }


async def send(delivery: Delivery, attempt: int) -> dict[str, Any]:
    """POST the notification once and return its record; network errors become `error`."""
    headers = {"Content-Type": delivery.content_type, "User-Agent": USER_AGENT}
    transport = None
    if delivery.source_address:
        transport = httpx.AsyncHTTPTransport(local_address=delivery.source_address)
    record = {
        "cid": delivery.cid, "store": delivery.store, "kind": delivery.kind,
        "delivery": delivery.number, "attempt": attempt, "sent": True, "skipped": None,
        "url": redact(delivery.url), "method": "POST", "headers": headers, "body": delivery.body,
        "fields": [list(pair) for pair in _parsed(delivery)],
        "source_address": delivery.source_address, "sent_at": _now(), "status": None,
        "response_body": None, "error": None, "faults": dict(delivery.faults),
    }
    try:
        async with httpx.AsyncClient(transport=transport, timeout=delivery.timeout, verify=_TLS,
                                     follow_redirects=False, trust_env=False) as client:
            response = await client.post(delivery.url, content=delivery.body, headers=headers)
            peer = _local_address(response)  # only readable while the connection is open
    except httpx.HTTPError as exc:
        detail = str(exc)
        record["error"] = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return record
    record["headers"] = {
        name: value for name, value in response.request.headers.items() if name != "host"
    }
    record["status"] = response.status_code
    record["response_body"] = response.content[:RESPONSE_KEEP].decode("utf-8", "replace")
    record["source_address"] = peer or delivery.source_address
    return record


def delivered(record: dict[str, Any]) -> bool:
    """A 2xx answer counts as accepted (docs/cashnet.md#duplicates-order-and-the-answer); anything
    else may be retried."""
    return record["status"] is not None and 200 <= record["status"] < 300


def _parsed(delivery: Delivery) -> list[tuple[str, str]]:
    """The fields as a receiver would parse the body (so name-case faults show up)."""
    encoding = "cp1252" if "windows-1252" in delivery.content_type else "utf-8"
    text = delivery.body.decode("ascii").lstrip("&")
    return parse_qsl(text, keep_blank_values=True, encoding=encoding)


def _local_address(response: httpx.Response) -> str | None:
    """The local address the connection really used, when the transport exposes it."""
    stream = response.extensions.get("network_stream")
    try:
        address = stream.get_extra_info("client_addr") if stream is not None else None
    except Exception:  # purely informational: never let it fail a delivery
        return None
    return address[0] if address else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
