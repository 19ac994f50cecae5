"""1. The fees page: GET /api/fees from 1, 16 and 64 distinct signed-in patrons, against the
sandbox Alma at 0 ms and 150 ms added latency, on the proxy and, in the same run, on the bare
baseline. Reported: requests per second, p50/p99 latency, the server's CPU per request, and
the proxy/baseline ratios.

The proxy runs twice: with its Alma rate limit set out of the way ("uncapped", what the code
costs) and with the default `PATRONPAY_ALMA_REQUESTS_PER_SECOND` of 20 ("capped", what a
library gets: Alma allows 25 calls a second per institution, so the cap is the real ceiling).
The sandbox's own 25-per-second throttle is switched off for the whole run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    Process,
    Sandbox,
    start_baseline,
    start_proxy,
    start_sandbox,
)
from bench.loadgen import closed_loop
from bench.profiles import Profile
from bench.rawhttp import Connection

NAME = "fees"
FEES_PER_PATRON = [
    {"type": "LOSTITEMREPLACEMENTFEE", "owner": "MAIN", "original_amount": "75.00"},
    {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "4.75"},
    {"type": "DAMAGEDITEMFINE", "owner": "LAW", "original_amount": "12.50"},
]
UNCAPPED = "100000"


@dataclass
class Target:
    """One server under load and how a patron asks it for the fees page."""

    name: str
    url: str
    process: Process
    headers: list[dict[str, str]]  # per patron


def add_patrons(sandbox: Sandbox, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}{number:03d}" for number in range(count)]
    for user_id in ids:
        sandbox.add_patron(user_id, FEES_PER_PATRON)
    return ids


async def _load(target: Target, concurrency: int, profile: Profile) -> dict[str, Any]:
    connections = [Connection(target.url) for _ in range(concurrency)]

    async def fees(index: int) -> int:
        status, _, _ = await connections[index].request("GET", "/api/fees",
                                                        target.headers[index])
        return status

    cpu_before = target.process.cpu_seconds()
    try:
        result = await closed_loop(fees, concurrency, profile.fees_seconds,
                                   profile.fees_warmup_seconds)
    finally:
        for connection in connections:
            await connection.close()
    server_cpu = target.process.cpu_seconds() - cpu_before
    figures = result.figures()
    figures["server_cpu_ms_per_request"] = (
        round(server_cpu / result.total * 1000, 3) if result.total else None)
    figures["server_rss_mib"] = target.process.rss_mib()
    return figures


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    sandbox = start_sandbox(workdir)
    started = []
    try:
        patrons = add_patrons(sandbox, max(profile.fees_concurrency), "feespatron")
        baseline = start_baseline(sandbox, workdir, int(UNCAPPED))
        started.append(baseline)
        # Every request reads Alma, as the forwarder does: the fee list kept for a reload
        # (PATRONPAY_FEES_FRESH_SECONDS) would measure something else.
        uncapped = start_proxy(sandbox, workdir, "proxy-uncapped",
                               alma_requests_per_second=UNCAPPED, fees_fresh_seconds="0")
        started.append(uncapped)
        capped = start_proxy(sandbox, workdir, "proxy-capped", fees_fresh_seconds="0")
        started.append(capped)
        targets = [
            Target("baseline", baseline.url, baseline.process,
                   [{"X-Patron": user_id} for user_id in patrons]),
            Target("proxy", uncapped.url, uncapped.process,
                   [uncapped.sign_in(user_id).headers() for user_id in patrons]),
            Target("proxy_capped", capped.url, capped.process,
                   [capped.sign_in(user_id).headers() for user_id in patrons]),
        ]
        rows = []
        for latency in profile.fees_latencies_ms:
            sandbox.alma_faults(latency_ms=latency)
            for concurrency in profile.fees_concurrency:
                row: dict[str, Any] = {"alma_latency_ms": latency, "concurrency": concurrency}
                for target in targets:
                    row[target.name] = asyncio.run(_load(target, concurrency, profile))
                row["ratios"] = _ratios(row["baseline"], row["proxy"])
                rows.append(row)
        return {
            "rows": rows,
            "notes": {
                "sandbox_per_second_limit": "off",
                "proxy_alma_requests_per_second": {"proxy": int(UNCAPPED),
                                                   "proxy_capped": 20},
                "fees_per_patron": len(FEES_PER_PATRON),
                "seconds_per_point": profile.fees_seconds,
                "warmup_seconds": profile.fees_warmup_seconds,
            },
        }
    finally:
        for server in reversed(started):
            server.close()
        sandbox.close()


def _ratios(baseline: dict[str, Any], proxy: dict[str, Any]) -> dict[str, float | None]:
    """Proxy over baseline: below 1 for throughput, above 1 for latency and CPU means cost."""

    def ratio(name: str) -> float | None:
        a, b = proxy.get(name), baseline.get(name)
        return round(a / b, 2) if a is not None and b else None

    return {"rps": ratio("rps"), "p50": ratio("p50_ms"), "p99": ratio("p99_ms"),
            "cpu_per_request": ratio("server_cpu_ms_per_request")}
