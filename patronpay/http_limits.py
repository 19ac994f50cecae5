"""The limits of the HTTP server `patronpay serve` runs (docs/deploy.md#timeouts-and-limits):
how many connections at once, how long a client may take over a request's head and over its
body, how long an idle keep-alive connection stays, and how big a request head may be.

uvicorn has the connection limit and the keep-alive time, but no deadline for a request's head
or body: a client that opens a connection and sends a byte now and then would hold it for ever
(and, with a connection limit, enough of them would shut everyone else out). Its head size
limit applies only to a head that arrives in pieces. `DeadlineProtocol` is uvicorn's own
HTTP/1.1 protocol with these added: it closes a connection whose head is not complete within
the head timeout of its first byte (or of the connection opening), or whose body is not
complete within the body timeout of its head, and answers 431 to a head over the size limit
however it arrives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from proxy.config import Settings

log = logging.getLogger("patronpay.http")


TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
             b"Content-Length: 32\r\nConnection: close\r\n\r\nThe request head is too large.\r\n")


class DeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0
    body_timeout: float = 20.0
    max_head_bytes: int = 16384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for = ""  # "head", "body" or "" (nothing of the client's is awaited)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect("head")

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            log.info("request head too large: refused", extra={"event": "head_too_large"})
            self.transport.write(TOO_LARGE)
            self.transport.close()
            return
        super().data_received(data)
        self._follow()

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the head being received (what h11 holds of it, and `data`) is over the
        limit, whether or not it is complete."""
        held = self.conn.trailing_data[0]
        received = held + data if held else data
        end = received.find(b"\r\n\r\n")
        return (end if end >= 0 else len(received)) > self.max_head_bytes

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:
            # uvicorn's keep-alive timer runs until the next request's first byte arrives.
            self._expect("")
        else:
            self._follow()  # a body the app did not read, or a pipelined request

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect("")
        super().connection_lost(exc)

    def _follow(self) -> None:
        """After bytes arrived: what the client still owes us, and since when."""
        state = self.conn.their_state
        if state is h11.IDLE:  # part of a request head has come
            self._expect("head")
        elif state is h11.SEND_BODY:
            self._expect("body")
        else:
            self._expect("")

    def _expect(self, what: str) -> None:
        if what == self._waiting_for:
            return  # the deadline counts from the start of what is awaited, not the last byte
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = what
        if what:
            seconds = self.header_timeout if what == "head" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _too_slow(self) -> None:
        what, self._deadline = self._waiting_for, None
        self._waiting_for = ""
        if self.transport is None or self.transport.is_closing():
            return
        log.info("client too slow: connection closed", extra={
            "event": "slow_client", "waiting_for": what})
        # A body cut short reaches the app as a disconnect (a 400 and an INFO line there).
        self.transport.close()


def deadline_protocol(header_timeout: float, body_timeout: float,
                      max_head_bytes: int) -> type[DeadlineProtocol]:
    """DeadlineProtocol with these limits (uvicorn builds one protocol per connection)."""
    return type("ConfiguredDeadlineProtocol", (DeadlineProtocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout,
                 "max_head_bytes": max_head_bytes})


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config's keyword arguments for the settings' limits."""
    return {
        "http": deadline_protocol(float(settings.http_header_timeout_seconds),
                                  float(settings.http_body_timeout_seconds),
                                  settings.http_max_header_bytes),
        "limit_concurrency": settings.http_max_connections,
        "timeout_keep_alive": settings.http_keepalive_seconds,
        # h11's own bound on a head still arriving: past ours, so ours answers first.
        "h11_max_incomplete_event_size": settings.http_max_header_bytes + 4,
    }
