"""Three `patronpay serve` instances sharing one PostgreSQL ledger (docs/deploy.md#two-nodes):
patrons spread over them, Alma failing about 30% of the calls, each instance killed with
SIGKILL mid-run and PostgreSQL restarted once. Every payment ends posted, each fee's share
is in Alma once, and no payment call Alma applied was for the same allocation twice.

PATRONPAY_CHAOS_PAYMENTS sets the number of payments (30 by default, for CI; the figures in
docs/guarantees.md#several-instances-on-postgresql are from a run with 300)."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import datetime

import httpx
import pytest
from support.alma import payments_carrying
from support.rig import ProxyProcess, Rig, free_port
from support.waiting import wait_for
from test_chaos import FAULTS

from proxy.database.errors import Unavailable
from sandbox.alma_sandbox import LOG_CAP

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)]

PAYMENTS = int(os.environ.get("PATRONPAY_CHAOS_PAYMENTS", "30"))


def start_payment(proxy: ProxyProcess, patron: str) -> tuple[str, str]:
    """A patron signs in at this instance and hands the payment to CashNet."""
    with httpx.Client(base_url=proxy.url, headers={"Origin": proxy.url}, timeout=30) as client:
        assert client.get("/auth/sso", headers={"X-Remote-User": patron}).status_code == 303
        client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
        response = client.post("/api/payments", json={})
        assert response.status_code == 201, response.text
        created = response.json()
    checkout = created["checkout"]
    handed = httpx.post(checkout["action"], data=checkout["fields"], timeout=30)
    return created["payment"]["id"], handed.headers["X-Emulator-Checkout"]


def posted(rig: Rig, payment_id: str) -> bool:
    """Read by the test's own connection, which a database restart cuts too."""
    try:
        return rig.payment(payment_id).state == "posted"
    except Unavailable:
        return False


@pytest.mark.timeout(300 + 3 * PAYMENTS)
def test_three_instances_kills_and_a_database_restart_lose_nothing(tmp_path, ledger_target,
                                                                  postgres_cluster):
    rig = Rig(tmp_path, ledger_target("ledger"))
    others = []
    try:
        for name in ("b", "c"):
            other = ProxyProcess(dict(rig.proxy.env), free_port(), tmp_path / f"proxy-{name}.log")
            other.env["PATRONPAY_PUBLIC_URL"] = other.url
            others.append(other)
        instances = [rig.proxy, *others]
        for instance in instances:
            instance.start()
        rng = random.Random(17)
        patrons = [f"multi{i:02d}" for i in range(PAYMENTS)]
        for patron in patrons:
            rig.alma.add_user({"primary_id": patron, "first_name": "Multi", "last_name": patron,
                               "fees": [{"type": "OVERDUEFINE", "original_amount": "3.10",
                                         "owner": "MAIN"},
                                        {"type": "DAMAGEDITEMFINE", "original_amount": "7.25",
                                         "owner": "LAW"}]})
        started = [start_payment(instances[i % 3], p) for i, p in enumerate(patrons)]
        rig.alma.set_faults(FAULTS | {"latency_ms": 40, "latency_jitter_ms": 80})
        for _, cid in started:  # CashNet notifies the first instance, retrying a failure
            rig.complete_in_background(cid)

        def progress() -> int:
            return len([r for r in rig.pays() if r["committed"]])

        began, marks, load = time.monotonic(), [], os.getloadavg()[0]
        began_wall = time.time()
        for round_ in range(4):  # spread over the run: after each fifth of the payment calls
            mark = (round_ + 1) * 2 * PAYMENTS // 5
            wait_for(lambda n=mark: progress() >= n or all(
                posted(rig, p) for p, _ in started), "progress", timeout=60 + PAYMENTS)
            if round_ == 2:
                postgres_cluster.restart()
                marks.append(f"PostgreSQL restarted {time.monotonic() - began:.0f}s")
            victim = rng.choice(instances)
            victim.signal(signal.SIGKILL)
            victim.process.wait(10)
            victim.start()
            marks.append(f"{time.monotonic() - began:.0f}s")

        rig.alma.set_faults({})
        for payment_id, _ in started:
            wait_for(lambda p=payment_id: posted(rig, p), f"payment {payment_id} posted",
                     timeout=120)
        marks.append(f"all posted {time.monotonic() - began:.0f}s")
        for (payment_id, _), patron in zip(started, patrons, strict=True):
            payment = rig.payment(payment_id)
            fees = {a.fee_id: [a.amount] for a in payment.allocations}
            assert payments_carrying(rig.alma, payment.cashnet_tx, patron) == fees
        calls = rig.alma.requests()
        assert len(calls) < LOG_CAP  # the sandbox's log kept every call
        applied = [r["path"] for r in rig.pays() if r["committed"]]
        assert len(applied) == len(set(applied)) == 2 * PAYMENTS
        over_limit = sorted({int(datetime.fromisoformat(r["time"]).timestamp() - began_wall)
                             for r in calls if r["fault"] == "per_second_limit"})
        refused = len([r for r in calls if r["fault"] == "per_second_limit"])
        print(f"\n{PAYMENTS} payments over 3 instances: {len(calls)} Alma calls,"
              f" {len(rig.pays())} payment calls ({len(applied)} applied, 0 twice),"
              f" {refused} refused by Alma's per-second limit (in seconds {over_limit}),"
              f" {sum(i.starts for i in instances) - 3} kills, 1 PostgreSQL restart;"
              f" kills at {', '.join(marks)}; load average {load:.1f} at the start,"
              f" {os.getloadavg()[0]:.1f} at the end")
    finally:
        for other in others:
            other.stop()
        rig.close()
