"""The emulator's front door: latency, throttling, fault rules and the request log
(docs/sandbox.md#alma-fault-injection, docs/sandbox.md#request-log-and-control-endpoints), as a pure
ASGI middleware in front of the Alma routes.

Control endpoints (`/_emulator/...`) pass straight through: neither throttled nor logged.
JWKS requests are logged and subject to latency and rules, but not to the API thresholds (the
key set is public and fetched without an API key).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.alma_drop import drop_connection
from sandbox.alma_faults import Verdict
from sandbox.alma_json import dumps
from sandbox.alma_render import error_document, error_xml, message_for
from sandbox.alma_sandbox import AlmaSandbox

CONTEXT_KEY = "alma.ctx"
JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml;charset=UTF-8"
THRESHOLD_CODES = {"per_second_limit": "PER_SECOND_THRESHOLD", "daily_limit": "DAILY_THRESHOLD"}


@dataclass
class RequestContext:
    """One request's bookkeeping, shared with the route through the scope."""

    seq: int
    committed: bool = False  # set by the route when the call changed Alma's state
    recorded: bool = False


def route_path(scope: Scope) -> str:
    """The path below the app's own root (works mounted under a prefix too)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


def error_response(
    sandbox: AlmaSandbox, code: str, message: str, *, status: int = 400, tracked: bool = True
) -> Response:
    tracking = sandbox.tracking_id() if tracked else None
    style = sandbox.settings.error_style
    if style == "xml":
        return Response(error_xml(code, message, tracking), status_code=status,
                        media_type=XML_TYPE)
    document = error_document(code, message, tracking, style)
    return Response(dumps(document), status_code=status, media_type=JSON_TYPE)


def _dated(send: Send, offset: int, text: str | None) -> Send:
    """Stamp each answer with a `Date` `offset` seconds off the real time (the
    `date_offset_seconds` knob), or with `text` instead (`date_text`: not a date). The server
    may add its own `Date` too: run it with `date_header=False` to send only this one."""

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            date = (text if text is not None else
                    formatdate(time.time() + offset, usegmt=True)).encode("ascii")
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
            message = {**message, "headers": [*headers, (b"date", date)]}
        await send(message)

    return stamped


class AlmaGateway:
    """Pure ASGI middleware: everything outside `/_emulator/` passes the gate and is logged."""

    def __init__(self, app: ASGIApp, sandbox: AlmaSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or path == "/_emulator" or path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        offset = self.sandbox.settings.date_offset_seconds
        text = self.sandbox.settings.date_text
        if offset or text is not None:
            send = _dated(send, offset, text)
        delay = self.sandbox.latency_seconds()
        if delay:
            # Not cancelled when the client gives up: the call is still applied afterwards.
            await asyncio.sleep(delay)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        seq, verdict = self.sandbox.admit(
            scope["method"], path, query, throttled=path.startswith("/almaws/"))
        context = RequestContext(seq=seq)
        scope = {**scope, CONTEXT_KEY: context}
        try:
            await self._respond(verdict, scope, receive, send, context)
        finally:
            if not context.recorded:  # the route failed before answering
                self._record(context, None)

    def _record(self, context: RequestContext, status: int | None) -> None:
        """Close the log entry. Called *before* the answer goes out, so a client that has its
        answer always finds the entry complete in the log."""
        context.recorded = True
        self.sandbox.finish(context.seq, status, context.committed)

    async def _respond(
        self, verdict: Verdict, scope: Scope, receive: Receive, send: Send, context: RequestContext
    ) -> None:
        """Answer one admitted request as its verdict says."""
        fault, rule = verdict.fault, verdict.rule
        if fault in THRESHOLD_CODES:
            code = THRESHOLD_CODES[fault]
            status = self.sandbox.settings.throttle_status if fault == "per_second_limit" else 429
            response = error_response(self.sandbox, code, message_for(code), status=status,
                                      tracked=False)
        elif fault == "http_5xx" and rule is not None:
            status = rule.status or 500
            response = PlainTextResponse(f"{status} {HTTPStatus(status).phrase}", status)
        elif fault == "alma_error" and rule is not None:
            code = rule.code or "402119"
            response = error_response(self.sandbox, code, message_for(code),
                                      status=rule.status or 400)
        elif fault == "drop":
            self._record(context, None)
            await drop_connection(receive)
            return
        elif fault == "slow" and rule is not None:
            await asyncio.sleep(rule.latency_ms / 1000)
            await self._run_route(None, scope, receive, send, context)
            return
        else:
            await self._run_route(fault, scope, receive, send, context)
            return
        self._record(context, response.status_code)
        await response(scope, receive, send)

    async def _run_route(self, fault: str | None, scope: Scope, receive: Receive, send: Send,
                         context: RequestContext) -> None:
        """Let the route do the call; in the commit_then_* modes swallow its answer."""
        swallow = fault in ("commit_then_500", "commit_then_drop")

        async def forward(message: Message) -> None:
            if swallow:
                return
            if message["type"] == "http.response.start":
                self._record(context, message["status"])
            await send(message)

        await self.app(scope, receive, forward)
        if fault == "commit_then_500":
            response = PlainTextResponse("500 Internal Server Error", 500)
            self._record(context, 500)
            await response(scope, receive, send)
        elif fault == "commit_then_drop":
            self._record(context, None)
            await drop_connection(receive)
