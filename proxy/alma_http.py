"""How the Alma client's requests travel: one httpx connection pool, each request built whole.

`httpx.AsyncClient` merges a base URL with the path and the query, keeps a cookie jar, runs an
auth flow and a redirect loop for every call: about a fifth of a fees page's CPU
(docs/performance.md#the-fees-pages-own-cpu). Alma needs none of it: a call is authenticated by
the key in its header, Alma does not redirect API calls (and must not be followed if it did),
and nothing one patron's call received, a cookie above all, should ride on the next patron's.
So a request is built whole here and handed to httpx's transport, which keeps the pool, the
timeouts and httpx's exceptions.

What `httpx.AsyncClient` takes from the environment still applies (docs/alma.md#the-connection):
HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY choose a proxy for the Alma URL, and
SSL_CERT_FILE or SSL_CERT_DIR replace the CA bundle.
"""

from __future__ import annotations

import functools
import urllib.request
from importlib import metadata
from urllib.parse import quote, urlencode, urlsplit

import httpx

URLS_KEPT = 1024  # parsed URLs kept, the least recently used dropped first: bounded memory

def user_agent() -> str:
    """`patronpay/<version>`: Alma's logs (and the campus firewall's) can tell our calls apart."""
    try:
        return f"patronpay/{metadata.version('patronpay')}"
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "patronpay"


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, or None: NO_PROXY first, then the scheme's
    own variable, then ALL_PROXY (the lower-case names win, as in urllib and httpx)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


@functools.lru_cache(maxsize=URLS_KEPT)
def _parsed(url: str) -> httpx.URL:
    """httpx's URL for `url`. Parsing one is about a twentieth of a fees page's CPU, and a
    patron's pages ask for the same few URLs again and again; a URL object never changes."""
    return httpx.URL(url)


class AlmaHttp:
    """One pool of connections to Alma, shared by every call of a process."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = httpx.Headers({"User-Agent": user_agent(),
                                       "Accept-Encoding": "gzip, deflate", **headers})
        self._extensions = {"timeout": timeout.as_dict()}
        self._transport = transport or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
            proxy=environment_proxy(self.base_url),
        )

    def url(self, path: str, params: dict[str, str]) -> str:
        """The base URL, `path` (its segments already quoted) and `params` as the query, every
        reserved character of a value quoted (a PAY comment carries `;`, `:` and spaces)."""
        if not params:
            return self.base_url + path
        return f"{self.base_url}{path}?{urlencode(params, quote_via=quote, safe='')}"

    async def send(self, method: str, path: str, params: dict[str, str],
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """One call, its answer read whole. Raises httpx's exceptions, as the client did."""
        request = httpx.Request(
            method, _parsed(self.url(path, params)),
            headers=self._headers if headers is None else httpx.Headers(
                {**self._headers, **headers}),
            extensions=self._extensions,
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
