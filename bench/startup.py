"""5. Start-up: from launching `patronpay serve` to its first ready answer (GET /readyz 200,
polled every 5 ms), with a fresh ledger each time (so the schema is created too). For
context, the time the same interpreter takes just to import the proxy and uvicorn, and the
resident memory of the idle proxy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import REPO, clean_environment, start_proxy, start_sandbox
from bench.profiles import Profile
from bench.stats import summary_ms

NAME = "startup"
IMPORT_TIMEOUT = 60.0


def import_seconds() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import proxy.app, uvicorn"], cwd=REPO, check=True,
                   env=clean_environment(), timeout=IMPORT_TIMEOUT)
    return time.monotonic() - started


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    sandbox = start_sandbox(workdir)
    ready, idle_rss = [], []
    try:
        for number in range(profile.startup_runs):
            proxy = start_proxy(sandbox, workdir, f"proxy-start{number}")
            try:
                ready.append(proxy.startup_seconds)
                idle_rss.append(proxy.process.rss_mib())
            finally:
                proxy.close()
    finally:
        sandbox.close()
    imports = [import_seconds() for _ in range(profile.startup_runs)]
    return {"runs": profile.startup_runs, "to_ready": summary_ms(ready),
            "import_only": summary_ms(imports),
            "idle_rss_mib": max(idle_rss) if idle_rss else None}
