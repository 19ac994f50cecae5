"""2. The payment round trip at 150 ms Alma latency, one payment at a time:

- notification received → ledger posted: `posted_at - paid_at` from the ledger, both stamped
  by the proxy's own clock (the notification is recorded, then the worker reads the fees and
  pays each one in Alma);
- the notification handler's response time, seen by the sender. CashNet's sandbox is told to
  drop its own delivery (`faults: {drop: true}`) and the benchmark posts exactly the fields it
  would have sent, on a warm keep-alive connection, so the figure is the handler and nothing
  else. It must not wait for Alma: compare it with the 150 ms of one Alma call.

Cases: a patron paying one fee, and a patron paying five (five PAY calls in a row).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import BenchError, Proxy, Sandbox, deployment
from bench.profiles import Profile
from bench.rawhttp import Connection
from bench.stats import summary_ms

NAME = "roundtrip"
POST_DEADLINE = 60.0
FEE = {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "4.75"}
CASES = {"one_fee": 1, "five_fees": 5}


def notification_fields(sandbox: Sandbox, cid: str) -> list[tuple[str, str]]:
    """Complete the checkout with delivery dropped; the fields CashNet would have posted."""
    result = sandbox.complete(cid, faults={"drop": True})
    record = result["notifications"][0]
    if record.get("skipped") != "drop":
        raise BenchError(f"expected a dropped notification, got {record}")
    return [(name, value) for name, value in record["fields"]]


def wait_posted(proxy: Proxy, payment_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + POST_DEADLINE
    while time.monotonic() < deadline:
        row = proxy.payment_times([payment_id]).get(payment_id)
        if row and row["state"] == "posted":
            return row
        if row and row["state"] not in ("pending", "paid"):
            raise BenchError(f"payment {payment_id} ended {row['state']}, not posted")
        time.sleep(0.01)
    raise BenchError(f"payment {payment_id} not posted after {POST_DEADLINE}s")


async def _post_notification(connection: Connection, proxy: Proxy,
                             fields: list[tuple[str, str]]) -> float:
    body = urlencode(fields).encode("ascii")
    started = time.monotonic()
    status, _, answer = await connection.request(
        "POST", f"/cashnet/postback/{proxy.postback_token}",
        {"Content-Type": "application/x-www-form-urlencoded"}, body)
    elapsed = time.monotonic() - started
    if status != 200:
        raise BenchError(f"notification answered {status}: {answer[:200]!r}")
    return elapsed


def _one_case(sandbox: Sandbox, proxy: Proxy, fees: int, payments: int,
              prefix: str) -> dict[str, Any]:
    handler, round_trip = [], []
    connection = Connection(proxy.url)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(connection.request("GET", "/healthz"))  # warm the connection
        for number in range(payments):
            user_id = f"{prefix}{number:03d}"
            sandbox.add_patron(user_id, [FEE] * fees)
            patron = proxy.sign_in(user_id)
            created = proxy.http.post("/api/payments", json={},
                                      headers=patron.headers(unsafe=True))
            if created.status_code != 201:
                raise BenchError(f"payment not created: {created.text[:300]}")
            body = created.json()
            cid = sandbox.hand_off(body["checkout"])
            fields = notification_fields(sandbox, cid)
            handler.append(loop.run_until_complete(
                _post_notification(connection, proxy, fields)))
            row = wait_posted(proxy, body["payment"]["id"])
            round_trip.append(row["posted_at"] - row["paid_at"])
    finally:
        loop.run_until_complete(connection.close())
        loop.close()
    return {"fees": fees, "payments": payments,
            "notification_to_posted": summary_ms(round_trip),
            "handler_response": summary_ms(handler)}


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    with deployment(workdir) as (sandbox, proxy):  # shipped settings: one payment at a time
        sandbox.alma_faults(latency_ms=profile.roundtrip_latency_ms)
        cases = {name: _one_case(sandbox, proxy, fees, profile.roundtrip_payments, f"rt{name}")
                 for name, fees in CASES.items()}
    return {"alma_latency_ms": profile.roundtrip_latency_ms, "cases": cases,
            "notes": {"sandbox_per_second_limit": "off", "one_payment_at_a_time": True}}
