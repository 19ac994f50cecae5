"""6. Posting while patrons reload their fees pages, at the shipped 20 Alma calls a second.

Payments are made one after another (sign in, start, pay on the sandbox CashNet, its
notification) and each one's `posted_at - paid_at` is read from the ledger: first with no other
traffic, then while 64 patrons reload their fees pages in a closed loop. The fee list is not
kept between reloads here (`PATRONPAY_FEES_FRESH_SECONDS=0`), so every reload is an Alma call
and the pages alone ask for more than the 20 a second: the worst case for posting, which the
limiter serves first (proxy/alma_pace.py). The pages' own latency is reported beside it: they
are slowed, never stopped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from bench.fees_page import FEES_PER_PATRON, add_patrons
from bench.harness import BenchError, Proxy, Sandbox, deployment
from bench.loadgen import LoadResult, closed_loop
from bench.payment_roundtrip import wait_posted
from bench.profiles import Profile
from bench.rawhttp import Connection
from bench.stats import summary_ms

NAME = "posting_load"
FEE = {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "4.75"}


def _payments(sandbox: Sandbox, proxy: Proxy, count: int, prefix: str) -> list[float]:
    """`count` one-fee payments in a row; each one's notification → posted seconds."""
    seconds = []
    for number in range(count):
        user_id = f"{prefix}{number:03d}"
        sandbox.add_patron(user_id, [FEE])
        patron = proxy.sign_in(user_id)
        created = proxy.http.post("/api/payments", json={}, headers=patron.headers(unsafe=True))
        if created.status_code != 201:
            raise BenchError(f"payment not created: {created.text[:300]}")
        body = created.json()
        sandbox.complete(sandbox.hand_off(body["checkout"]))
        row = wait_posted(proxy, body["payment"]["id"])
        seconds.append(row["posted_at"] - row["paid_at"])
    return seconds


def _page_load(proxy: Proxy, patrons: list[str], seconds: float,
               result: list[LoadResult]) -> None:
    headers = [proxy.sign_in(user_id).headers() for user_id in patrons]
    connections = [Connection(proxy.url) for _ in patrons]

    async def fees(index: int) -> int:
        status, _, _ = await connections[index].request("GET", "/api/fees", headers[index])
        return status

    async def main() -> None:
        try:
            result.append(await closed_loop(fees, len(patrons), seconds, 1.0))
        finally:
            for connection in connections:
                await connection.close()

    asyncio.run(main())


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    payments, patrons = profile.posting_load_payments, profile.posting_load_patrons
    with deployment(workdir, fees_fresh_seconds="0") as (sandbox, proxy):
        sandbox.alma_faults(latency_ms=profile.posting_load_latency_ms)
        quiet = _payments(sandbox, proxy, payments, "plquiet")
        readers = add_patrons(sandbox, patrons, "plpage")
        for user_id in readers:  # signed in before the clock starts
            proxy.sign_in(user_id)
        pages: list[LoadResult] = []
        # Long enough for the payments; they are made inside the window.
        window = 3.0 + payments * 2.5
        loader = threading.Thread(target=_page_load, args=(proxy, readers, window, pages))
        loader.start()
        try:
            time.sleep(2.0)  # sign-ins and the load's warm-up second
            loaded = _payments(sandbox, proxy, payments, "plload")
        finally:
            loader.join()
    page = pages[0].figures() if pages else {}
    return {
        "alma_latency_ms": profile.posting_load_latency_ms,
        "patrons_reloading": patrons,
        "payments": payments,
        "quiet": summary_ms(quiet),
        "under_load": summary_ms(loaded),
        "pages_under_load": page,
        "notes": {"alma_requests_per_second": 20, "fees_fresh_seconds": 0,
                  "fees_per_reloading_patron": len(FEES_PER_PATRON)},
    }

