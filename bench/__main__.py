"""`python -m bench [--quick] [--only NAME[,NAME]] [--json PATH]`

Runs the benchmarks of issues 8 and 16 against real processes on loopback (the kiosk and
page benchmarks with headless Debian Chromium), prints one table per benchmark and writes
everything as JSON (default bench/results/latest.json, not committed). Figures only: nothing
here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import (
    alma_calls,
    fees_browser,
    fees_page,
    kiosk_scan,
    notification_rate,
    payment_roundtrip,
    posting_under_load,
    report,
    startup,
    throughput,
)
from bench.profiles import FULL, PROFILES, QUICK, Profile

BENCHMARKS: dict[str, ModuleType] = {module.NAME: module for module in (
    fees_page, payment_roundtrip, alma_calls, throughput, startup, posting_under_load,
    kiosk_scan, fees_browser, notification_rate)}
# Run only when named (`--only NAME`); every benchmark is part of the default run now.
ON_REQUEST: set[str] = set()
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "system": platform.platform(), "load_before": os.getloadavg()[0]}


def run_benchmarks(profile: Profile, names: Sequence[str],
                   progress: bool = True) -> dict[str, Any]:
    """Run the named benchmarks one after another, each with its own processes and folder."""
    started = time.monotonic()
    result: dict[str, Any] = {"profile": profile.name, "machine": machine(),
                              "results": {}, "errors": {}}
    for name in names:
        if progress:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"patronpay-bench-{name}-") as folder:
            try:
                result["results"][name] = BENCHMARKS[name].run(profile, Path(folder))
            except Exception as exc:  # report it and go on with the others
                traceback.print_exc()
                result["errors"][name] = f"{type(exc).__name__}: {exc}"
        if progress:
            print(f"bench: {name} took {time.monotonic() - began:.0f} s", file=sys.stderr,
                  flush=True)
    result["machine"]["load_after"] = os.getloadavg()[0]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def parse_names(text: str | None) -> list[str]:
    if not text:
        return [name for name in BENCHMARKS if name not in ON_REQUEST]
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"bench: unknown benchmark {unknown[0]!r}; "
                         f"choose from {', '.join(BENCHMARKS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="short runs (about 4 minutes)")
    parser.add_argument("--only", metavar="NAME", help=f"comma list of {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", metavar="PATH", type=Path, default=DEFAULT_JSON,
                        help="where to write the results (default bench/results/latest.json)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile] if args.profile else QUICK if args.quick else FULL
    result = run_benchmarks(profile, parse_names(args.only))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report.render(result))
    print(f"\nJSON: {args.json}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
