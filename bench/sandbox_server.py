"""`patronpay sandbox` as the benchmarks start it: the same command and code, with two costs of
the sandbox itself taken out, so the figures measure the proxy and not its stand-ins. Both are
reported on issue 8 with a patch; once the patches land this wrapper changes nothing.
`python -m bench --sandbox-as-shipped` runs the plain command instead, for comparison.

1. Nagle's algorithm. `patronpay.serving.bind` creates its socket with protocol 0, and asyncio
   sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP, so each keep-alive answer
   of the sandbox waits for the client's delayed ACK: about 40 ms on every Alma call. Linux
   copies TCP_NODELAY from a listening socket to the sockets it accepts, so it is set there.
2. A TLS context per notification. `sandbox.cashnet_notify.send` opens a new
   `httpx.AsyncClient` for every delivery, and each one loads the CA bundle (about 30 ms of
   CPU on the benchmark machine), stalling the whole sandbox, Alma included, while it does.
   Here every client of the sandbox process shares one context (deliveries are plain http
   on loopback; the context is never even used).
"""

from __future__ import annotations

import socket
import ssl
import sys
from typing import Any

import httpx

from patronpay import cli, serving

_bind = serving.bind
_client_init = httpx.AsyncClient.__init__
_SHARED_TLS = ssl.create_default_context()


def bind_without_nagle(host: str, port: int) -> socket.socket:
    sock = _bind(host, port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def client_with_shared_tls(self: httpx.AsyncClient, *args: Any, verify: Any = True,
                           **kwargs: Any) -> None:
    _client_init(self, *args, verify=_SHARED_TLS if verify is True else verify, **kwargs)


def apply() -> None:
    serving.bind = bind_without_nagle  # cmd_sandbox imports it when it runs
    httpx.AsyncClient.__init__ = client_with_shared_tls  # type: ignore[method-assign]


if __name__ == "__main__":
    apply()
    sys.exit(cli.main(["sandbox", *sys.argv[1:]]))
