"""The baseline: the least a fees page could be. One Starlette route that forwards the Alma
fees call with httpx and hands Alma's bytes back, nothing else (no session, no parsing, no
middleware, no logging), through `httpx.AsyncClient` as a plain forwarder would, with the
proxy's pool size. The fees benchmark runs the same load against it and against the proxy.
The proxy sends its Alma calls without the client's layers (proxy/alma_http.py), so the ratio
is what the proxy costs against this plain forwarder, not its own work alone
(docs/performance.md#the-fees-pages-own-cpu).

Run by the harness as `python -m bench.baseline --port P --alma-url URL --api-key KEY`. The
patron comes in the `X-Patron` header (the proxy takes it from the session).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Sequence
from urllib.parse import quote

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.alma import connection_limit


def create_app(alma_url: str, api_key: str, requests_per_second: int) -> Starlette:
    # The proxy's Alma connection pool for the same rate limit (proxy/alma.py), so the ratio
    # measures what the proxy does around the call: a bigger pool costs httpcore more CPU per
    # request, a smaller one queues calls while Alma is slow.
    connections = connection_limit(requests_per_second)
    client = httpx.AsyncClient(
        base_url=alma_url.rstrip("/"), trust_env=False, timeout=30.0,
        headers={"Authorization": f"apikey {api_key}", "Accept": "application/json"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))

    async def fees(request: Request) -> Response:
        patron = quote(request.headers.get("x-patron", ""), safe="")
        answer = await client.get(f"/users/{patron}/fees", params={"status": "ACTIVE"})
        return Response(answer.content, answer.status_code, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/api/fees", fees), Route("/healthz", healthz)],
                     lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alma-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--requests-per-second", type=int, required=True,
                        help="the proxy's PATRONPAY_ALMA_REQUESTS_PER_SECOND to match")
    args = parser.parse_args(argv)
    # The same server options as `patronpay serve`, so only the app differs.
    app = create_app(args.alma_url, args.api_key, args.requests_per_second)
    uvicorn.run(app, host="127.0.0.1", port=args.port, proxy_headers=False, access_log=False,
                log_level="warning", server_header=False)


if __name__ == "__main__":
    main()
