"""3. Alma calls per completed payment, by case, counted from the sandbox Alma's request log.

Each case is one patron's whole visit: sign in (SSO), open the fees page, reload it (within
`PATRONPAY_FEES_FRESH_SECONDS`, 30 s by default: no call), start the payment, pay on CashNet,
and the worker posting to Alma until the ledger says `posted`. The log is cleared before each
phase and read after it, so every call is charged to the phase that made it. Alma's daily quota
is shared by every integration of the institution (docs/alma.md#call-budget), so these counts
are the cost that matters most to a library. The floor beside them is issue 16's: USER at
sign-in, LIST for the page, LIST before posting and one PAY per fee, 3 + N for N fees.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import BenchError, Proxy, Sandbox, deployment
from bench.payment_roundtrip import wait_posted
from bench.profiles import Profile

NAME = "calls"
TEN = {"type": "OVERDUEFINE", "owner": "SCI", "original_amount": "10.00"}
PAY_PATH = "/almaws/v1/users/*/fees/*"

# name: (fees of the patron, payment request body, Alma fault rules during posting)
CASES: dict[str, tuple[int, dict[str, Any], list[dict[str, Any]]]] = {
    "one_fee": (1, {}, []),
    "five_fees": (5, {}, []),
    "partial": (3, {"amount": "15.00"}, []),  # 10.00 + 5.00 of three 10.00 fees
    "retry_after_5xx": (1, {}, [{"match": {"method": "POST", "path": PAY_PATH},
                                 "mode": "http_5xx", "status": 503, "next": 1}]),
    "applied_then_5xx": (1, {}, [{"match": {"method": "POST", "path": PAY_PATH},
                                  "mode": "commit_then_500", "next": 1}]),
}
PHASES = ("sign_in", "fees_page", "reload", "create_payment", "posting")
# Speeds up the retry cases only; the number of calls does not depend on the wait.
FAST_RETRIES = {"posting_backoff_cap_seconds": "0.2", "alma_recheck_seconds": "0.3"}

_USER = re.compile(r"^/almaws/v1/users/[^/]+$")
_LIST = re.compile(r"^/almaws/v1/users/[^/]+/fees$")
_FEE = re.compile(r"^/almaws/v1/users/[^/]+/fees/[^/]+$")


def kind_of(entry: dict[str, Any]) -> str:
    """The call's name in docs/alma.md#calls: USER, AUTH, LIST, FEE, PAY (or OTHER)."""
    path, method = entry["path"], entry["method"]
    op = (entry.get("query") or {}).get("op", [""])[0]
    if _USER.match(path):
        return "AUTH" if method == "POST" and op == "auth" else "USER"
    if _LIST.match(path):
        return "LIST"
    if _FEE.match(path):
        return op.upper() if method == "POST" and op else "FEE"
    return "OTHER"


def _calls(sandbox: Sandbox) -> Counter:
    entries = [e for e in sandbox.alma_requests() if e["path"].startswith("/almaws/")]
    sandbox.clear_alma_requests()
    return Counter(kind_of(entry) for entry in entries)


def _one_case(sandbox: Sandbox, proxy: Proxy, name: str) -> dict[str, Any]:
    fees, body, rules = CASES[name]
    user_id = f"calls_{name}"
    sandbox.add_patron(user_id, [TEN] * fees)
    sandbox.alma_faults()
    sandbox.clear_alma_requests()
    phases: dict[str, Counter] = {}

    patron = proxy.sign_in(user_id)
    phases["sign_in"] = _calls(sandbox)

    page = proxy.http.get("/api/fees", headers=patron.headers())
    if page.status_code != 200:
        raise BenchError(f"fees page answered {page.status_code}")
    phases["fees_page"] = _calls(sandbox)

    again = proxy.http.get("/api/fees", headers=patron.headers())
    if again.status_code != 200:
        raise BenchError(f"fees page reload answered {again.status_code}")
    phases["reload"] = _calls(sandbox)

    created = proxy.http.post("/api/payments", json=body, headers=patron.headers(unsafe=True))
    if created.status_code != 201:
        raise BenchError(f"payment not created: {created.text[:300]}")
    payment = created.json()["payment"]
    phases["create_payment"] = _calls(sandbox)

    sandbox.alma_faults(rules=rules)
    started = time.monotonic()
    sandbox.complete(sandbox.hand_off(created.json()["checkout"]))
    wait_posted(proxy, payment["id"])
    posting_seconds = time.monotonic() - started
    phases["posting"] = _calls(sandbox)
    sandbox.alma_faults()

    total: Counter = sum(phases.values(), Counter())
    return {
        "fees_paid": len(payment["allocations"]),
        "total": sum(total.values()),
        "floor": 3 + len(payment["allocations"]),  # USER, LIST, LIST, N PAY
        "by_phase": {phase: sum(phases[phase].values()) for phase in PHASES},
        "by_kind": dict(sorted(total.items())),
        "phases": {phase: dict(sorted(phases[phase].items())) for phase in PHASES},
        "posting_seconds": round(posting_seconds, 2),
    }


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    with deployment(workdir, **FAST_RETRIES) as (sandbox, proxy):
        cases = {name: _one_case(sandbox, proxy, name) for name in CASES}
    return {"cases": cases,
            "notes": {"alma_latency_ms": 0, "phases": list(PHASES),
                      "floor": "3 + N for N fees by single sign-on: USER at sign-in, LIST for "
                               "the fees page, LIST before posting, one PAY per fee"}}
