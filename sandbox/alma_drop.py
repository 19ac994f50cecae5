"""Close a client's TCP connection without sending any HTTP response (fault modes `drop`,
`commit_then_drop`, docs/sandbox.md#alma-fault-injection).

ASGI has no "hang up" message, and the obvious tricks fail under uvicorn: raising before
`http.response.start`, or returning without a response, both make uvicorn answer
`500 Internal Server Error` itself. So we reach the socket's asyncio transport and abort it:

* uvicorn calls the app with `receive` bound to its per-request `RequestResponseCycle`
  (h11, httptools and zttp alike), and that cycle keeps the connection's `transport`. Starlette
  passes `receive` through `Mount`, routers and its own middleware unchanged.
* If something wrapped `receive` (e.g. uvicorn's trace-level message logger), the request still
  runs inside the task uvicorn created for `cycle.run_asgi(app)`; that coroutine's `self` is the
  same cycle, so we look there second.

After `transport.abort()` uvicorn's `connection_lost` marks the cycle disconnected; we wait for
the `http.disconnect` that follows so that uvicorn sees a client that went away (and stays
quiet) rather than an app that forgot to answer. The client sees the socket close before any
byte of a status line: httpx raises `RemoteProtocolError` ("Server disconnected without sending
a response") or `ReadError` if the kernel turned the close into a reset.

In-process transports (httpx.ASGITransport) have no socket; there we raise `ConnectionDropped`,
which reaches the test as an exception instead of an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.types import Receive

DISCONNECT_WAIT_S = 2.0


class ConnectionDropped(ConnectionError):
    """Raised where there is no socket to close (the app runs without a real server)."""


def _transport_of(owner: Any) -> asyncio.BaseTransport | None:
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


def find_transport(receive: Receive) -> asyncio.BaseTransport | None:
    """The transport of the connection this request arrived on, if a real server runs us."""
    transport = _transport_of(getattr(receive, "__self__", None))
    if transport is not None:
        return transport
    task = asyncio.current_task()
    coro = task.get_coro() if task is not None else None
    frame = getattr(coro, "cr_frame", None)
    return _transport_of(frame.f_locals.get("self")) if frame is not None else None


async def drop_connection(receive: Receive) -> None:
    """Hang up on the client without a response; the caller must then send nothing at all."""
    transport = find_transport(receive)
    if transport is None:
        raise ConnectionDropped("fault injection: connection dropped (no socket to close)")
    transport.abort()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCONNECT_WAIT_S):
            for _ in range(16):  # any unread body comes first, then the disconnect
                if (await receive())["type"] == "http.disconnect":
                    return
