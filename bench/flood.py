"""One session floods, another patron opens the fees page (issue 14 item 1).

`python -m bench.flood [--quick]` (not part of `python -m bench`: it measures a defence, not
the service's speed). One signed-in session sends GET /api/fees from 32 connections in a
closed loop; meanwhile other patrons, one after another, open their fees page for the first
time (a cold read: their fees must come from Alma). Reported: those patrons' latency with no
flood and during the flood, the flooding session's answers (200 / 429), and the Alma calls the
flood window cost, on two proxies side by side against one sandbox Alma (150 ms latency, its
25-calls-a-second throttle on, like Alma's):

- "unprotected": no per-session or per-patron limit, no kept fee list (every request reads
  Alma): the service as it was when the abuse was reported;
- "shipped": the shipped settings (docs/security.md#rate-limits).

Figures only; nothing here passes or fails. The machine's figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Sandbox, start_proxy, start_sandbox
from bench.loadgen import closed_loop
from bench.rawhttp import Connection
from bench.stats import summary_ms

NAME = "flood"
FLOOD_CONNECTIONS = 32
ALMA_LATENCY_MS = 150
FEES = [{"type": "OVERDUEFINE", "owner": "MAIN", "original_amount": "4.75"},
        {"type": "DAMAGEDITEMFINE", "owner": "LAW", "original_amount": "12.50"}]
UNPROTECTED = {"fees_fresh_seconds": "0", "session_burst": "1000000",
               "session_requests_per_minute": "100000000",
               "patron_requests_per_minute": "100000000"}
SHIPPED = {"fees_fresh_seconds": "30", "session_burst": "10",
           "session_requests_per_minute": "30", "patron_requests_per_minute": "60"}


async def _cold_loads(url: str, headers: list[dict[str, str]], start_after: float) -> list[float]:
    """Each patron opens the fees page once, one after another; their latencies."""
    await asyncio.sleep(start_after)
    latencies = []
    for patron_headers in headers:
        connection = Connection(url)
        try:
            started = time.monotonic()
            status, _, _ = await connection.request("GET", "/api/fees", patron_headers)
            latencies.append(time.monotonic() - started)
            if status != 200:
                raise RuntimeError(f"a victim's fees page answered {status}")
        finally:
            await connection.close()
    return latencies


async def _flood_loop(url: str, flooder: dict[str, str], seconds: float) -> dict[str, Any]:
    connections = [Connection(url) for _ in range(FLOOD_CONNECTIONS)]

    async def fees(index: int) -> int:
        status, _, _ = await connections[index].request("GET", "/api/fees", flooder)
        return status

    try:
        flood = await closed_loop(fees, FLOOD_CONNECTIONS, seconds, warmup=0.0)
    finally:
        for connection in connections:
            await connection.close()
    return {"statuses": dict(sorted(flood.statuses.items())), "requests": flood.completed,
            "errors": flood.errors}


def _flood_process(url: str, flooder: dict[str, str], seconds: float,
                   results: multiprocessing.Queue) -> None:
    results.put(asyncio.run(_flood_loop(url, flooder, seconds)))


def _flood(url: str, flooder: dict[str, str], victims: list[dict[str, str]],
           seconds: float) -> tuple[dict[str, Any], list[float]]:
    """The flood from a process of its own, so that its loop does not delay the victims'
    requests in this one."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_flood_process, args=(url, flooder, seconds, results))
    process.start()
    try:
        victim = asyncio.run(_cold_loads(url, victims, start_after=min(2.0, seconds / 4)))
        flood = results.get(timeout=seconds + 120)
    finally:
        process.join(timeout=30)
    return flood, victim


def _alma_calls(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.alma_requests() if r["path"].startswith("/almaws/"))


def run(workdir: Path, seconds: float = 10.0, victims: int = 8) -> dict[str, Any]:
    sandbox = start_sandbox(workdir)
    started = []
    try:
        rows = {}
        for name, overrides in (("unprotected", UNPROTECTED), ("shipped", SHIPPED)):
            proxy = start_proxy(sandbox, workdir, f"proxy-{name}", **overrides)
            started.append(proxy)
            sandbox.alma_faults(latency_ms=0)  # sign-ins are set-up, not measured
            ids = [f"{name}{n:03d}" for n in range(2 * victims + 1)]
            for user_id in ids:
                sandbox.add_patron(user_id, FEES)
            patrons = [proxy.sign_in(user_id).headers() for user_id in ids]
            flooder, quiet, during = patrons[0], patrons[1:victims + 1], patrons[victims + 1:]
            sandbox.alma_faults(latency_ms=ALMA_LATENCY_MS, per_second_limit=25)
            baseline = asyncio.run(_cold_loads(proxy.url, quiet, 0.0))
            before = _alma_calls(sandbox)
            flood, victim = _flood(proxy.url, flooder, during, seconds)
            rows[name] = {
                "victim_quiet": summary_ms(baseline),
                "victim_during_flood": summary_ms(victim),
                "flood": flood,
                "alma_calls_during_flood": _alma_calls(sandbox) - before,
                "flood_seconds": seconds,
            }
        return {"rows": rows, "notes": {"flood_connections": FLOOD_CONNECTIONS,
                                        "alma_latency_ms": ALMA_LATENCY_MS,
                                        "alma_per_second_limit": 25,
                                        "settings": {"unprotected": UNPROTECTED,
                                                     "shipped": SHIPPED}}}
    finally:
        for proxy in reversed(started):
            proxy.close()
        sandbox.close()


def table(result: dict[str, Any]) -> str:
    lines = ["| proxy | victim p50 / max, no flood (ms) | victim p50 / max, during flood (ms) "
             "| flooding session: 200 / 429 | Alma calls in the flood window |",
             "|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        quiet, during, statuses = row["victim_quiet"], row["victim_during_flood"], \
            row["flood"]["statuses"]
        lines.append(f"| {name} | {quiet['p50_ms']} / {quiet['max_ms']} | {during['p50_ms']} / "
                     f"{during['max_ms']} | {statuses.get(200, 0)} / {statuses.get(429, 0)} | "
                     f"{row['alma_calls_during_flood']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4-second flood, 4 victims")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="patronpay-bench-flood-") as folder:
        result = run(Path(folder), *((4.0, 4) if args.quick else (10.0, 8)))
    print("### One session floods /api/fees; other patrons open their fees page\n")
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
