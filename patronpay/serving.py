"""Run ASGI apps under uvicorn on loopback: one in a background thread (tests, benchmarks) or
several together in the foreground (the demo and the sandbox commands)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner and reports when it is up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


def http_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so the port (ephemeral when 0) is known and never races."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets created with it,
    # and without that every keep-alive answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _config(app: Any, **options: Any) -> uvicorn.Config:
    options.setdefault("log_level", "warning")
    options.setdefault("access_log", False)
    options.setdefault("lifespan", "on")
    return uvicorn.Config(app, **options)


class ServerThread:
    """An app served on an ephemeral loopback port from a daemon thread.

    >>> with ServerThread(app) as server:
    ...     httpx.get(server.url + "/healthz")
    """

    def __init__(self, app: Any, host: str = LOOPBACK, port: int = 0,
                 sock: socket.socket | None = None, **options: Any) -> None:
        self._socket = sock or bind(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = _QuietServer(_config(app, **options))
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported to the thread that waits in start()
            self._error = exc
            self._server.ready.set()

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        if not self._server.ready.wait(timeout) or self._error or not self._server.started:
            raise RuntimeError(f"server on {self.url} did not start: {self._error!r}")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class Listener:
    """One app of a foreground group and the socket it listens on (see `bind`)."""

    name: str
    app: Any
    sock: socket.socket

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return http_url(host, port)


async def serve_together(listeners: list[Listener], **options: Any) -> None:
    """Serve several apps in this process until SIGINT or SIGTERM, then stop them all."""
    servers = []
    tasks = []
    for listener in listeners:
        server = _QuietServer(_config(listener.app, **options))
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve(sockets=[listener.sock])))

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop_all)
    try:
        await asyncio.gather(*tasks)
    finally:
        stop_all()
