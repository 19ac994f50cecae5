"""Payments per second end to end with 1, 2 and 3 `patronpay serve` instances sharing one
PostgreSQL database, beside one instance on SQLite, in one run (docs/deploy.md#two-nodes).

    .venv/bin/python -m bench.instances [--seconds 20] [--patrons 12]

Each simulated patron loops: sign in at one instance (patrons are spread over them), start a
$1.00 payment of a large fee, post the hand-off to the sandbox CashNet, press Pay there (the
sandbox delivers the notification to the first instance before it answers) and wait until the
ledger says `posted`. Alma is uncapped (the proxies' limit at 500 calls a second, the sandbox's
own per-second throttle off): what the instances can do, not what a library's Alma allows. A
throwaway PostgreSQL cluster is started for the run (tests/support/postgres.py). All instances,
the sandbox, the database and the patrons share this machine's cores: on a small machine more
instances mostly share the same CPU, and the figures say so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.postgres import TEMPLATE, running_cluster  # noqa: E402
from support.rig import ProxyProcess, Rig, free_port  # noqa: E402

UNCAPPED = "500"


def run(database: Path | str, instances: int, seconds: float, patrons: int,
        folder: Path) -> dict:
    rig = Rig(folder, database)
    extra: list[ProxyProcess] = []
    try:
        # Alma uncapped, and no per-patron pace: each simulated patron pays again and again.
        rig.proxy.env.update({"PATRONPAY_ALMA_REQUESTS_PER_SECOND": UNCAPPED,
                              "PATRONPAY_SESSION_BURST": "100000",
                              "PATRONPAY_SESSION_REQUESTS_PER_MINUTE": "1000000",
                              "PATRONPAY_PATRON_REQUESTS_PER_MINUTE": "1000000",
                              "PATRONPAY_LOG_LEVEL": "WARNING"})
        for n in range(instances - 1):
            other = ProxyProcess(dict(rig.proxy.env), free_port(), folder / f"proxy-{n}.log")
            other.env["PATRONPAY_PUBLIC_URL"] = other.url
            extra.append(other)
        proxies = [rig.proxy, *extra]
        for proxy in proxies:
            proxy.start()
        rig.alma.set_faults({"per_second_limit": None})  # measure us, not the sandbox's throttle
        names = [f"bench{i:02d}" for i in range(patrons)]
        for name in names:
            rig.alma.add_user({"primary_id": name, "first_name": "Bench", "last_name": name,
                               "fees": [{"type": "OVERDUEFINE", "original_amount": "9000.00",
                                         "owner": "MAIN"}]})
        posted: list[float] = []
        refused: list[int] = []  # a payment refused stops that patron: counted, not hidden
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def patron(index: int) -> None:
            proxy = proxies[index % len(proxies)]
            with httpx.Client(base_url=proxy.url, headers={"Origin": proxy.url},
                              timeout=60) as client:
                client.get("/auth/sso", headers={"X-Remote-User": names[index]})
                client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
                while time.monotonic() < deadline:
                    began = time.monotonic()
                    response = client.post("/api/payments", json={"amount": "1.00"})
                    if response.status_code != 201:
                        with lock:
                            refused.append(response.status_code)
                        return
                    created = response.json()
                    checkout = created["checkout"]
                    handed = httpx.post(checkout["action"], data=checkout["fields"], timeout=60)
                    rig.cashnet.complete(handed.headers["X-Emulator-Checkout"])
                    payment_id = created["payment"]["id"]
                    while rig.payment(payment_id).state != "posted":
                        time.sleep(0.02)
                    with lock:
                        posted.append(time.monotonic() - began)

        threads = [threading.Thread(target=patron, args=(i,)) for i in range(patrons)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        posted.sort()
        if refused:
            raise SystemExit(f"payments refused with {sorted(set(refused))}: figures void")
        return {"payments": len(posted), "per_second": len(posted) / elapsed,
                "p50_ms": 1000 * posted[len(posted) // 2] if posted else 0.0}
    finally:
        for proxy in extra:
            proxy.stop()
        rig.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instances",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--patrons", type=int, default=12)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_cluster() as cluster:
        cluster.prepare_template()
        setups = [("SQLite", 1, None), *(("PostgreSQL", n, "pg") for n in (1, 2, 3))]
        for backend, instances, kind in setups:
            folder = Path(tmp) / f"{backend}-{instances}"
            folder.mkdir()
            database = (cluster.create_database(template=TEMPLATE) if kind
                        else folder / "ledger.sqlite3")
            figures = run(database, instances, args.seconds, args.patrons, folder)
            rows.append((backend, instances, figures))
            print(f"{backend:10} x{instances}: {figures['payments']:4d} payments,"
                  f" {figures['per_second']:5.1f}/s, p50 {figures['p50_ms']:.0f} ms", flush=True)
    print("\n| ledger | instances | payments posted | per second | create to posted p50 |")
    print("|---|---|---|---|---|")
    for backend, instances, f in rows:
        print(f"| {backend} | {instances} | {f['payments']} | {f['per_second']:.1f} |"
              f" {f['p50_ms']:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
