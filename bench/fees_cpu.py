"""The fees page's CPU beside the forwarder's, one pair at a time (docs/performance.md).

`python -m bench.fees_cpu [ROUNDS]` (not part of `python -m bench`): the sandbox at 0 ms, the
bare forwarder (bench/baseline.py) and `patronpay serve` reading Alma on every request
(`PATRONPAY_FEES_FRESH_SECONDS=0`, its Alma limit out of the way), one patron in a closed loop
for 4 s after 1 s of warm-up, the forwarder then the proxy in each round, so the two see the
same machine. Besides the process CPU per request it prints each server's CPU per thread
(/proc/PID/task), and each one's CPU over 3 idle seconds first, so the background threads and
timers (posting worker, mail worker, sweeps) can be told apart from the requests' own work.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.fees_page import UNCAPPED, Target, _load, add_patrons
from bench.harness import CLOCK_TICKS, start_baseline, start_proxy, start_sandbox
from bench.profiles import Profile

WINDOW = Profile("fees_cpu", fees_seconds=4.0, fees_warmup_seconds=1.0)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each of the process's threads, by `tid:name`."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seconds[f"{tid}:{name}"] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {tid: round(after[tid] - before.get(tid, 0.0), 2) for tid in after
            if after[tid] > before.get(tid, 0.0)}


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="patronpay-fees-cpu-") as tmp:
        workdir = Path(tmp)
        sandbox = start_sandbox(workdir)
        started = []
        try:
            patron = add_patrons(sandbox, 1, "cpupatron")[0]
            baseline = start_baseline(sandbox, workdir, int(UNCAPPED))
            started.append(baseline)
            proxy = start_proxy(sandbox, workdir, "proxy", alma_requests_per_second=UNCAPPED,
                                fees_fresh_seconds="0")
            started.append(proxy)
            sandbox.alma_faults(latency_ms=0)
            targets = [Target("forwarder", baseline.url, baseline.process, [{"X-Patron": patron}]),
                       Target("proxy", proxy.url, proxy.process,
                              [proxy.sign_in(patron).headers()])]
            for target in targets:
                before = thread_cpu(target.process.pid)
                time.sleep(3)
                print(f"idle 3 s, {target.name}: CPU s by thread",
                      spent(before, thread_cpu(target.process.pid)), flush=True)
            for number in range(1, rounds + 1):
                cpu = {}
                for target in targets:
                    before = thread_cpu(target.process.pid)
                    figures = asyncio.run(_load(target, 1, WINDOW))
                    cpu[target.name] = figures["server_cpu_ms_per_request"]
                    print(f"round {number}, {target.name}: {figures['rps']} req/s, "
                          f"{cpu[target.name]} CPU ms/req, CPU s by thread",
                          spent(before, thread_cpu(target.process.pid)), flush=True)
                print(f"round {number}: ratio {cpu['proxy'] / cpu['forwarder']:.2f}, "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            for server in reversed(started):
                server.close()
            sandbox.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
