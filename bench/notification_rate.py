"""9. The notification handler at a fixed rate: CashNet's store notifications sent to one
`patronpay serve` at 100 a second (issue 16 asks for p99 under 20 ms there).

Payments are prepared first (sign in, start, hand off to the sandbox CashNet, Pay with the
delivery dropped: the fields CashNet would have posted), one patron each. Then the
notifications are sent open-loop: notification i leaves at start + i / rate whatever the
earlier ones are doing, each on a free keep-alive connection from a pool, so a slow answer
delays nobody's send and the rate is the rate. Reported: the answer time as CashNet sees it
from the scheduled send (queueing in this client included, which stays near zero while the
pool has connections) and the proxy's own access-log time for the request. Meanwhile the
posting worker posts the payments to the sandbox Alma (0 ms latency). Two proxies: one with
its Alma limit out of the way ("uncapped": the worker posts as fast as it can, the worst case
for the event loop the handler shares with it) and one with the shipped 20 calls a second
("capped": the worker posts about ten payments a second and the rest wait their turn).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import BenchError, Proxy, Sandbox, deployment
from bench.payment_roundtrip import notification_fields
from bench.profiles import Profile
from bench.rawhttp import Connection
from bench.stats import summary_ms
from bench.throughput import handler_times

NAME = "notify_rate"
FEE = {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "4.75"}
CONNECTIONS = 64
POSTED_DEADLINE = 120.0
CAPS = {"uncapped": {"alma_requests_per_second": "100000"}, "capped": {}}  # capped: shipped 20


def _prepare(sandbox: Sandbox, proxy: Proxy, count: int, prefix: str) -> list[tuple[str, bytes]]:
    """`count` payments handed to CashNet and paid there: (payment id, notification body)."""
    prepared = []
    for number in range(count):
        user_id = f"{prefix}{number:04d}"
        sandbox.add_patron(user_id, [FEE])
        patron = proxy.sign_in(user_id)
        created = proxy.http.post("/api/payments", json={}, headers=patron.headers(unsafe=True))
        if created.status_code != 201:
            raise BenchError(f"payment not created: {created.text[:300]}")
        body = created.json()
        fields = notification_fields(sandbox, sandbox.hand_off(body["checkout"]))
        prepared.append((body["payment"]["id"], urlencode(fields).encode("ascii")))
    return prepared


async def _send_all(proxy: Proxy, bodies: list[bytes], rate: float) -> list[float]:
    """Every body at its scheduled time; each answer's seconds from that time."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    connections = [Connection(proxy.url) for _ in range(CONNECTIONS)]
    for connection in connections:
        await connection.request("GET", "/healthz")  # connected before the clock starts
        pool.put_nowait(connection)
    path = f"/cashnet/postback/{proxy.postback_token}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    answered: list[float] = []

    async def send(due: float, body: bytes) -> None:
        connection = await pool.get()
        try:
            status, _, answer = await connection.request("POST", path, headers, body)
        finally:
            pool.put_nowait(connection)
        if status != 200:
            raise BenchError(f"notification answered {status}: {answer[:200]!r}")
        answered.append(time.monotonic() - due)

    start = time.monotonic() + 0.05
    tasks = []
    try:
        for index, body in enumerate(bodies):
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(send(due, body)))
        await asyncio.gather(*tasks)
    finally:
        for connection in connections:
            await connection.close()
    return answered


def _wait_posted(proxy: Proxy, payment_ids: list[str]) -> int:
    """Wait (bounded) for the worker to post them all; how many were posted."""
    deadline = time.monotonic() + POSTED_DEADLINE
    while True:
        rows = proxy.payment_times(payment_ids)
        posted = sum(1 for row in rows.values() if row["state"] == "posted")
        if posted == len(payment_ids) or time.monotonic() > deadline:
            return posted
        time.sleep(0.1)


def _one(profile: Profile, workdir: Path, cap: str) -> dict[str, Any]:
    rate, seconds = profile.notify_rate, profile.notify_seconds
    count = max(1, round(rate * seconds))
    with deployment(workdir / cap, **CAPS[cap]) as (sandbox, proxy):
        prepared = _prepare(sandbox, proxy, count, f"nr{cap}")
        ids = [payment_id for payment_id, _ in prepared]
        log_offset = proxy.process.log_path.stat().st_size
        cpu_before, wall = proxy.process.cpu_seconds(), time.monotonic()
        answered = asyncio.run(_send_all(proxy, [body for _, body in prepared], rate))
        wall = time.monotonic() - wall
        cpu = proxy.process.cpu_seconds() - cpu_before
        handler = handler_times(proxy, log_offset)
        posted_by_end = sum(1 for row in proxy.payment_times(ids).values()
                            if row["state"] == "posted")
        posted = _wait_posted(proxy, ids) if cap == "uncapped" else None
    return {
        "proxy": cap, "rate_per_s": rate, "notifications": len(answered),
        "sent_over_s": round(wall, 2),
        "answer_from_schedule": summary_ms(answered),
        "handler_from_access_log": summary_ms(handler),
        "proxy_cpu_utilisation": round(cpu / wall, 2) if wall else None,
        "posted_by_end": posted_by_end, "posted": posted,
    }


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    rows = []
    for cap in CAPS:
        (workdir / cap).mkdir()
        rows.append(_one(profile, workdir, cap))
    return {"rows": rows,
            "notes": {"alma_latency_ms": 0,
                      "proxy_alma_requests_per_second": {"uncapped": 100000, "capped": 20},
                      "connections": CONNECTIONS, "target": "handler p99 under 20 ms",
                      "posted": "uncapped only: posted within two minutes of the last send"}}
