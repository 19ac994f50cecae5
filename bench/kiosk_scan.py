"""7. The kiosk from scan to fees on screen, in the real browser.

Real processes on loopback, as at a library: the sandbox, `patronpay serve`, the kiosk agent
(`patronpay kiosk`) reading a simulated card reader over `socket://` (kiosk/simulated_reader.py,
the same framing as a serial barcode reader), and Debian's Chromium, headless, on the agent's
kiosk page. Each scan sends a library card's barcode through the reader; the time runs from
the moment the reader sends it to the first animation frame after the page shows the fee rows
(bench/browser.py). Then "Start over" resets the kiosk and the next scan, of another seeded
patron's card, waits until the fresh page is listening to the agent again.

The path between: the agent asks the proxy to open a session for the card (the proxy reads the
patron from Alma, USER, and at the same time the card's fee list, LIST: proxy/kiosk_fees.py),
tells the page over its event stream, the page reads its session and the fees from the agent,
which asks the proxy (which has the list kept, or waits for the read in flight). The proxy keeps
a fee list for FRESH_SECONDS only, and a card is scanned again only after that, so every scan is
a patron's first. Issue 16's target: under 150 ms plus one Alma round trip.
"""

from __future__ import annotations

import itertools
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.alma_calls import kind_of
from bench.browser import chromium, fees_shown, new_page
from bench.harness import (
    LOOPBACK,
    BenchError,
    Process,
    Sandbox,
    clean_environment,
    free_port,
    start_proxy,
    start_sandbox,
    wait_until_ready,
)
from bench.profiles import Profile
from bench.stats import summary_ms
from kiosk.simulated_reader import DEMO_CARDS, ScannerSocket

NAME = "kiosk"
KIOSK_ID = "bench-kiosk"
# Seeded sandbox patrons with fees, in turn: the agent ignores the same card twice in 2 s.
CARDS = [DEMO_CARDS["mkowalski"][1], DEMO_CARDS["jsmith"][1]]
PORTRAIT = {"width": 1080, "height": 1920}
READER_DEADLINE = 15.0
# Long enough for the page to find the list read beside USER; a card comes round again only
# after it, so no scan finds an earlier scan's list (0 would read nothing ahead).
FRESH_SECONDS = 1


def start_agent(workdir: Path, port: int, secret: str, proxy_url: str,
                reader_url: str) -> Process:
    """`patronpay kiosk` on `port`, its reader the simulated one."""
    env = clean_environment() | {
        "PATRONPAY_KIOSK_ID": KIOSK_ID, "PATRONPAY_KIOSK_SECRET": secret,
        "PATRONPAY_KIOSK_PROXY_URL": proxy_url, "PATRONPAY_KIOSK_READER": reader_url}
    argv = [sys.executable, "-m", "patronpay", "kiosk", "--host", LOOPBACK, "--port", str(port)]
    process = Process("kiosk", argv, env, workdir / "kiosk.log")
    wait_until_ready(process, f"http://{LOOPBACK}:{port}/healthz")
    return process


def _wait_reader(scanner: ScannerSocket) -> None:
    deadline = time.monotonic() + READER_DEADLINE
    while scanner.connected == 0:
        if time.monotonic() > deadline:
            raise BenchError("the kiosk agent never connected to the simulated reader")
        time.sleep(0.01)


_last_scan: dict[str, float] = {}


def _wait_past_fresh(card: str) -> None:
    """Until this card's last list is no longer kept (with room for the clocks)."""
    while time.monotonic() - _last_scan.get(card, 0.0) < FRESH_SECONDS + 0.5:
        time.sleep(0.02)


def _calls(sandbox: Sandbox) -> Counter:
    entries = [e for e in sandbox.alma_requests() if e["path"].startswith("/almaws/")]
    sandbox.clear_alma_requests()
    return Counter(kind_of(entry) for entry in entries)


def _scans(page: Any, scanner: ScannerSocket, sandbox: Sandbox, agent_url: str,
           cards: Iterator[str], count: int) -> tuple[list[float], list[float], Counter]:
    """`count` scans, each from the idle screen; (to frame, to DOM) seconds and Alma calls."""
    frames, doms, calls = [], [], Counter()
    page.goto(agent_url + "/kiosk/")
    for _ in range(count):
        page.wait_for_function(
            "() => window.__agentHello && !document.getElementById('idle').hidden")
        card = next(cards)
        _wait_past_fresh(card)
        sandbox.clear_alma_requests()
        sent = time.time() * 1000
        _last_scan[card] = time.monotonic()
        if scanner.scan(card) != 1:
            raise BenchError("the scan reached no reader")
        shown = fees_shown(page)
        frames.append((shown["frame"] - sent) / 1000)
        doms.append((shown["dom"] - sent) / 1000)
        calls += _calls(sandbox)
        with page.expect_navigation():
            page.click("#start-over")
    return frames, doms, calls


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    sandbox = start_sandbox(workdir)
    scanner = ScannerSocket().start()
    stops: list[Any] = []  # what to stop, in reverse order
    try:
        agent_port, secret = free_port(), secrets.token_urlsafe(32)
        agent_url = f"http://{LOOPBACK}:{agent_port}"
        proxy = start_proxy(sandbox, workdir, "proxy", fees_fresh_seconds=str(FRESH_SECONDS),
                            kiosk_keys=f"{KIOSK_ID}={secret}",
                            kiosk_return_url=agent_url + "/kiosk/return")
        stops.append(proxy.close)
        sandbox.point_store_at(proxy)
        stops.append(start_agent(workdir, agent_port, secret, proxy.url, scanner.url).stop)
        _wait_reader(scanner)
        rows = []
        with chromium() as browser:
            context, page = new_page(browser, PORTRAIT)
            try:
                cards = itertools.cycle(CARDS)
                _scans(page, scanner, sandbox, agent_url, cards, 2)  # warm-up: connections
                for latency in profile.kiosk_latencies_ms:
                    sandbox.alma_faults(latency_ms=latency)
                    frames, doms, calls = _scans(page, scanner, sandbox, agent_url, cards,
                                                 profile.kiosk_scans)
                    rows.append({
                        "alma_latency_ms": latency, "scans": len(frames),
                        "scan_to_fees_shown": summary_ms(frames),
                        "scan_to_fees_in_page": summary_ms(doms),
                        "alma_calls_per_scan": {kind: n / len(frames)
                                                for kind, n in sorted(calls.items())},
                        "target_ms": 150 + latency,
                    })
            finally:
                sandbox.alma_faults()
                context.close()
    finally:
        for stop in reversed(stops):
            stop()
        scanner.close()
        sandbox.close()
    return {"rows": rows,
            "notes": {"fees_fresh_seconds": FRESH_SECONDS, "browser": "Debian chromium, headless",
                      "viewport": PORTRAIT, "reader": "simulated, socket://, CR-terminated",
                      "target": "150 ms plus one Alma round trip (the Alma latency)"}}
