"""The check's only way out: an HTTP transport that sends GETs and nothing else (the check must
never pay, write or sign anyone in), and keeps each answer's `Date` for the clock check."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from proxy.alma_http import environment_proxy

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class NotARead(RuntimeError):
    """Something in the check tried to send more than a GET: a bug, never sent."""


@dataclass(frozen=True)
class Answer:
    url: str
    status: int
    dates: tuple[str, ...]  # every `Date` header sent (normally one)
    received_at: float      # this machine's clock when the answer arrived


class ReadOnlyTransport(httpx.AsyncBaseTransport):
    """Without `inner`, each host is reached the way the service reaches it: through the proxy
    the environment names for it, if any (proxy/alma_http.py)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner
        self._by_proxy: dict[str | None, httpx.AsyncBaseTransport] = {}
        self.answers: list[Answer] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            raise NotARead(f"the check sends only GETs, not {request.method}")
        response = await self._way_to(str(request.url)).handle_async_request(request)
        self.answers.append(Answer(str(request.url), response.status_code,
                                   tuple(response.headers.get_list("date")), time.time()))
        return response

    def _way_to(self, url: str) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        proxy = environment_proxy(url)
        if proxy not in self._by_proxy:
            self._by_proxy[proxy] = httpx.AsyncHTTPTransport(proxy=proxy)
        return self._by_proxy[proxy]

    async def aclose(self) -> None:
        for transport in (self._inner, *self._by_proxy.values()):
            if transport is not None:
                await transport.aclose()


def client(transport: ReadOnlyTransport) -> httpx.AsyncClient:
    """For CashNet and the sign-in services; Alma goes through the Alma client."""
    # trust_env off: the environment's proxies are the transport's business, and a client that
    # mounted its own would send around the read-only guard.
    return httpx.AsyncClient(transport=transport, timeout=TIMEOUT, follow_redirects=False,
                             trust_env=False)


async def get(http: httpx.AsyncClient, url: str, **params: str) -> httpx.Response | str:
    """The answer, or why there is none (a word staff can act on: ConnectError, ...)."""
    try:
        return await http.get(url, params=params or None)
    except httpx.HTTPError as exc:
        return type(exc).__name__
