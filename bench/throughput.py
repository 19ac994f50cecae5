"""4. End-to-end payment throughput on one `patronpay serve` process, and its memory.

Each simulated patron loops: start a payment (POST /api/payments, $1.00 of a large fee), post
the hand-off form to the sandbox CashNet, press Pay there (the sandbox delivers the store
notification to the proxy before it answers), and wait until the ledger says `posted`. The
ledger is watched read-only by the benchmark (one query every 20 ms for all open payments), so
the waiting adds no HTTP load to the proxy. Reported: payments posted per second, create →
posted latency, the notification delivery as CashNet's sandbox sees it, the handler's own time
from the proxy's access log, the proxy's CPU use, and its resident memory (sampled every
100 ms, plus the kernel's peak VmHWM).

Runs with the proxy's Alma rate limit out of the way ("uncapped": what one process can do)
and at the shipped 20 calls a second ("capped": what a library gets, three Alma calls per
payment), at 0 ms and 150 ms Alma latency, and capped at 1000 ms (Alma on a busy day). The
sandbox's own throttle is off. Both proxies run side by side; the store notifies the one
under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.harness import (
    BenchError,
    Proxy,
    Sandbox,
    open_ledger,
    payment_rows,
    start_proxy,
    start_sandbox,
)
from bench.loadgen import closed_loop
from bench.profiles import Profile
from bench.rawhttp import Connection
from bench.stats import summary_ms

NAME = "throughput"
BIG_FEE = {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "100000.00"}
PAYMENT_BODY = json.dumps({"amount": "1.00"}).encode()
POSTED_DEADLINE = 60.0
POLL_SECONDS = 0.02
MEMORY_SAMPLE_SECONDS = 0.1
CAPS = {"uncapped": "100000", "capped": None}  # None: the shipped default (20)


class PostedWatcher:
    """Resolves a future per payment when the ledger shows it posted (one query per tick)."""

    def __init__(self, database: Path) -> None:
        self._conn = open_ledger(database)
        self._waiting: dict[str, asyncio.Future] = {}
        self._stopped = False

    def wait(self, payment_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiting[payment_id] = future
        return future

    async def run(self) -> None:
        while not self._stopped:
            if self._waiting:
                for payment_id, row in payment_rows(self._conn, list(self._waiting)).items():
                    state = row["state"]
                    if state == "posted":
                        self._waiting.pop(payment_id).set_result(time.monotonic())
                    elif state not in ("pending", "paid"):
                        self._waiting.pop(payment_id).set_exception(
                            BenchError(f"payment {payment_id} ended {state}"))
            await asyncio.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._stopped = True
        self._conn.close()


class MemorySampler:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.samples: list[float] = []
        self._stopped = False

    async def run(self) -> None:
        while not self._stopped:
            self.samples.append(self.proxy.process.rss_mib())
            await asyncio.sleep(MEMORY_SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stopped = True


def handler_times(proxy: Proxy, log_offset: int) -> list[float]:
    """The proxy's own timing of each notification (access log, whole milliseconds)."""
    seconds = []
    with open(proxy.process.log_path, "rb") as log:
        log.seek(log_offset)
        for line in log:
            if b"/cashnet/postback/" not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "request":
                    seconds.append(entry["ms"] / 1000)
    return seconds


async def _load(sandbox: Sandbox, proxy: Proxy, patrons: list, seconds: float,
                warmup: float) -> dict[str, Any]:
    concurrency = len(patrons)
    to_proxy = [Connection(proxy.url) for _ in patrons]
    to_cashnet = [Connection(sandbox.url) for _ in patrons]
    create_headers = [p.headers(unsafe=True) for p in patrons]
    watcher, sampler = PostedWatcher(proxy.database), MemorySampler(proxy)
    background = [asyncio.create_task(watcher.run()), asyncio.create_task(sampler.run())]
    stages: list[tuple[float, str, float, float, float, float]] = []

    async def pay(index: int) -> int:
        began = time.monotonic()
        status, _, body = await to_proxy[index].request(
            "POST", "/api/payments", create_headers[index], PAYMENT_BODY)
        if status != 201:
            raise BenchError(f"payment not created ({status}): {body[:200]!r}")
        created = json.loads(body)
        checkout = created["checkout"]
        handing_off = time.monotonic()
        status, headers, _ = await to_cashnet[index].request(
            "POST", urlsplit(checkout["action"]).path,
            {"Content-Type": "application/x-www-form-urlencoded"},
            urlencode(checkout["fields"]).encode("ascii"))
        if status != 200 or "x-emulator-error" in headers:
            raise BenchError(f"hand-off refused ({status})")
        posted = watcher.wait(created["payment"]["id"])
        paying = time.monotonic()
        status, _, body = await to_cashnet[index].request(
            "POST", f"/cashnet/_emulator/checkouts/{headers['x-emulator-checkout']}/complete",
            {"Content-Type": "application/json"}, b'{"outcome": "pay"}')
        notified = time.monotonic()
        if status != 200 or json.loads(body)["notifications"][0].get("status") != 200:
            raise BenchError(f"notification not accepted: {body[:300]!r}")
        seen = await asyncio.wait_for(posted, POSTED_DEADLINE)
        stages.append((seen, created["payment"]["id"], handing_off - began,
                       paying - handing_off, notified - paying, seen - notified))
        return 200

    log_offset = proxy.process.log_path.stat().st_size
    cpu = {"proxy": proxy.process.cpu_seconds(), "sandbox": sandbox.process.cpu_seconds()}
    wall = time.monotonic()
    try:
        result = await closed_loop(pay, concurrency, seconds, warmup)
    finally:
        watcher.stop()
        sampler.stop()
        await asyncio.gather(*background, return_exceptions=True)
        for connection in to_proxy + to_cashnet:
            await connection.close()
    wall = time.monotonic() - wall
    if result.errors:
        raise BenchError(f"{result.errors} payments failed; see {proxy.process.log_path}")
    done = [s for s in stages if result.window_start <= s[0] <= result.window_end]
    ledger = proxy.payment_times([s[1] for s in done])
    figures = result.figures()
    return {
        "concurrency": concurrency,
        "payments": figures["requests"],
        "payments_per_s": figures["rps"],
        "create_to_posted": {k: figures[k] for k in ("n", "p50_ms", "p99_ms", "mean_ms",
                                                      "max_ms")},
        "stages": {
            "create_payment": summary_ms([s[2] for s in done]),
            "hand_off": summary_ms([s[3] for s in done]),
            "notification_delivery": summary_ms([s[4] for s in done]),
            "notified_to_posted_seen": summary_ms([s[5] for s in done]),
        },
        "ledger_paid_to_posted": summary_ms([row["posted_at"] - row["paid_at"]
                                             for row in ledger.values()]),
        "handler_from_access_log": summary_ms(handler_times(proxy, log_offset)),
        "proxy_cpu_utilisation": round((proxy.process.cpu_seconds() - cpu["proxy"]) / wall, 2),
        "sandbox_cpu_utilisation": round(
            (sandbox.process.cpu_seconds() - cpu["sandbox"]) / wall, 2),
        "load_generator_cpu_utilisation": round(result.client_cpu_seconds / wall, 2),
        "proxy_rss_mib": {"max_sampled": max(sampler.samples, default=None),
                          "after": proxy.process.rss_mib(),
                          "peak_vmhwm": proxy.process.peak_rss_mib()},
    }


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    sandbox = start_sandbox(workdir)
    rows = []
    proxies: dict[str, Proxy] = {}
    idle_rss: dict[str, float] = {}
    try:
        for cap, latency in profile.throughput_runs:
            if cap not in proxies:
                per_second = CAPS[cap]
                overrides = {"alma_requests_per_second": per_second} if per_second else {}
                proxies[cap] = start_proxy(sandbox, workdir, f"proxy-{cap}", **overrides)
                idle_rss[cap] = proxies[cap].process.rss_mib()
            proxy = proxies[cap]
            sandbox.point_store_at(proxy)
            sandbox.alma_faults(latency_ms=0)  # sign-ins are set-up, not measured
            patrons = []
            for number in range(profile.throughput_concurrency):
                user_id = f"tp{cap}{latency}x{number:03d}"
                sandbox.add_patron(user_id, [BIG_FEE])
                patrons.append(proxy.sign_in(user_id))
            sandbox.alma_faults(latency_ms=latency)
            # Long enough for a few payments per patron to reach a steady state first.
            warmup = max(profile.throughput_warmup_seconds, 8 * latency / 1000)
            row = asyncio.run(_load(sandbox, proxy, patrons, profile.throughput_seconds, warmup))
            rows.append({"proxy": cap, "alma_latency_ms": latency,
                         "proxy_rss_mib_idle": idle_rss[cap], **row})
    finally:
        for proxy in proxies.values():
            proxy.close()
        sandbox.close()
    return {"rows": rows,
            "notes": {"sandbox_per_second_limit": "off",
                      "proxy_alma_requests_per_second": {
                          cap: int(value) if value else "default (20)"
                          for cap, value in CAPS.items()},
                      "alma_calls_per_payment": 3,
                      "seconds": profile.throughput_seconds,
                      "warmup_seconds": profile.throughput_warmup_seconds}}
