"""How long and how hard each benchmark runs: the full run, `--quick`, and the smoke test's
smallest configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # 1. fees page
    fees_concurrency: tuple[int, ...] = (1, 16, 64)
    # 1000 ms: Alma on a busy day (the issue asks for 0 and 150)
    fees_latencies_ms: tuple[int, ...] = (0, 150, 1000)
    fees_seconds: float = 5.0
    fees_warmup_seconds: float = 1.0
    # 2. payment round trip (sequential payments, per case)
    roundtrip_payments: int = 30
    roundtrip_latency_ms: int = 150
    # 3. Alma calls per payment: one payment per case, no timing
    # 4. end-to-end throughput
    throughput_concurrency: int = 16
    throughput_seconds: float = 10.0
    throughput_warmup_seconds: float = 2.0  # at least 8 Alma round trips, see throughput.py
    # (proxy's Alma rate limit, Alma latency ms): "uncapped" shows what one process can do,
    # "capped" (the shipped 20 calls a second) what a library gets
    throughput_runs: tuple[tuple[str, int], ...] = (
        ("uncapped", 0), ("uncapped", 150), ("capped", 0), ("capped", 150), ("capped", 1000))
    # 5. start-up
    startup_runs: int = 5
    # 6. posting while patrons reload their fees pages (shipped rate limit)
    posting_load_payments: int = 20
    posting_load_patrons: int = 64
    posting_load_latency_ms: int = 150
    # 7. the kiosk from scan to fees on screen (real browser)
    kiosk_latencies_ms: tuple[int, ...] = (0, 150)
    kiosk_scans: int = 20
    # 8. the patron's fees page in the real browser
    page_loads: int = 20
    page_latencies_ms: tuple[int, ...] = (0, 150)
    # 9. the notification handler at a fixed rate
    notify_rate: float = 100.0
    notify_seconds: float = 5.0


FULL = Profile("full")
QUICK = Profile("quick", fees_concurrency=(1, 16), fees_latencies_ms=(0, 150),
                fees_seconds=1.5, fees_warmup_seconds=0.5, roundtrip_payments=5,
                throughput_concurrency=8, throughput_seconds=3.0, throughput_warmup_seconds=1.0,
                throughput_runs=(("uncapped", 0), ("capped", 0), ("capped", 150)),
                startup_runs=2, posting_load_payments=6, kiosk_scans=5, page_loads=5,
                notify_seconds=2.0)
SMOKE = Profile("smoke", fees_concurrency=(2,), fees_latencies_ms=(0,), fees_seconds=0.3,
                fees_warmup_seconds=0.1, roundtrip_payments=1, roundtrip_latency_ms=0,
                throughput_concurrency=2, throughput_seconds=0.5, throughput_warmup_seconds=0.2,
                throughput_runs=(("uncapped", 0), ("capped", 0)), startup_runs=1,
                posting_load_payments=1, posting_load_patrons=4, posting_load_latency_ms=0,
                kiosk_latencies_ms=(0,), kiosk_scans=1, page_loads=1, page_latencies_ms=(0,),
                notify_rate=20.0, notify_seconds=0.2)
PROFILES = {p.name: p for p in (FULL, QUICK, SMOKE)}
