"""The fees page's own CPU, in process: a quick comparison for trying changes
(docs/performance.md#the-fees-pages-own-cpu).

`python -m bench.fees_inproc [BLOCKS] [REQUESTS]` (not part of `python -m bench`): the sandbox
runs in its own process at 0 ms Alma latency; the proxy's ASGI app (`create_app`, reading Alma
on every request, uncapped, logging at INFO to a file as `patronpay serve` logs to its
journal) and the bare forwarder's (bench/baseline.py) are called here directly, one
`GET /api/fees` after another, with no HTTP server in front, timed on this thread's CPU clock
(the Alma call's httpx work included, the sandbox's not). The two apps take turns, a block of
REQUESTS requests each, BLOCKS times, so both see the same machine; on a machine shared with
other work a block's figure swings by a tenth or more, so the figures printed are the median
and the lower quartile of the blocks (the quartile: the least disturbed).

Without uvicorn and h11 (the same for both, and most of what `bench.fees_cpu` counts) the
ratio is higher than through HTTP and means little; the difference, proxy minus forwarder in
µs, is the proxy's own work, and is what to compare between two versions of the code. Confirm
a gain with `python -m bench.fees_cpu`, which measures the real servers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import baseline
from bench.fees_page import UNCAPPED, add_patrons
from bench.harness import LOOPBACK, proxy_environment, start_sandbox
from proxy.app import create_app
from proxy.config import load_settings
from proxy.logs import configure_logging
from sandbox.app import ALMA_API_KEY

WARMUP = 200
CLIENT = (LOOPBACK, 40000)
ASGIApp = Callable


def fees_scope(headers: dict[str, str]) -> dict:
    """GET /api/fees over HTTP/1.1 from loopback, as uvicorn would hand it to the app."""
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "server": (LOOPBACK, 8000), "client": CLIENT,
        "scheme": "http", "method": "GET", "root_path": "", "path": "/api/fees",
        "raw_path": b"/api/fees", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")]
        + [(name.lower().encode("latin-1"), value.encode("latin-1"))
           for name, value in headers.items()],
        "state": {},
    }


async def call(app: ASGIApp, scope: dict) -> int:
    """One request through `app`; its status (the body is read and dropped)."""
    status = 0
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # never: the app does not wait for a disconnect here
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def cpu_per_request(app: ASGIApp, scope: dict, requests: int) -> float:
    """Thread CPU µs per request over `requests` requests."""
    started = time.thread_time()
    for _ in range(requests):
        status = await call(app, scope)
        if status != 200:
            raise RuntimeError(f"GET /api/fees answered {status}")
    return (time.thread_time() - started) / requests * 1e6


async def sign_in(app: ASGIApp, patron: str) -> str:
    """Single sign-on through the proxy app; the session cookie header."""
    transport = httpx.ASGITransport(app=app, client=CLIENT)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        answer = await http.get("/auth/sso", headers={"X-Remote-User": patron})
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:300]}")
        return "; ".join(f"{name}={value}" for name, value in answer.cookies.items())


async def measure(alma_url: str, env: dict[str, str], patron: str, blocks: int,
                  requests: int) -> None:
    forwarder = baseline.create_app(alma_url, ALMA_API_KEY, int(UNCAPPED))
    proxy = create_app(load_settings(env), run_worker=False)
    cookie = await sign_in(proxy, patron)
    scopes = {"forwarder": fees_scope({"X-Patron": patron}),
              "proxy": fees_scope({"Cookie": cookie, "Accept": "application/json"})}
    apps = {"forwarder": forwarder, "proxy": proxy}
    for name in apps:  # warm-up: connections, caches, the first cookie check
        for _ in range(WARMUP):
            await call(apps[name], scopes[name])
    figures: dict[str, list[float]] = {"forwarder": [], "proxy": []}
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for _ in range(blocks):
        for name in ("forwarder", "proxy"):
            figures[name].append(await cpu_per_request(apps[name], scopes[name], requests))
    print(f"load average {os.getloadavg()[0]:.2f}; {blocks} blocks of {requests} requests")
    for label, pick in (("median", statistics.median), ("lower quartile", _lower_quartile)):
        forward, own = (pick(figures[name]) for name in ("forwarder", "proxy"))
        print(f"{label}: forwarder {forward:.0f} µs, proxy {own:.0f} µs, "
              f"difference {own - forward:.0f} µs, ratio {own / forward:.2f}")


def _lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def main(blocks: int, requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="patronpay-fees-inproc-") as tmp:
        workdir = Path(tmp)
        sandbox = start_sandbox(workdir)
        try:
            patron = add_patrons(sandbox, 1, "inprocpatron")[0]
            sandbox.alma_faults(latency_ms=0)
            env, _, _ = proxy_environment(sandbox, workdir, 8000, "proxy",
                                          alma_requests_per_second=UNCAPPED,
                                          fees_fresh_seconds="0")
            configure_logging("INFO")
            # The log lines go to a file, as `patronpay serve`'s go to its journal.
            with open(workdir / "proxy.log", "w") as log_file:
                logging.getLogger().handlers[0].setStream(log_file)  # type: ignore[attr-defined]
                asyncio.run(measure(sandbox.where["alma_api"], env, patron, blocks, requests))
        finally:
            sandbox.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40,
         int(sys.argv[2]) if len(sys.argv) > 2 else 200)
