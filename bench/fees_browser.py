"""8. The patron's fees page in the real browser: bytes transferred, requests to anything but
this machine, and the time from navigation to the fees table shown.

Debian's Chromium, headless (bench/browser.py), opens `/` of `patronpay serve` as a patron
who has just signed in by single sign-on (the session cookie is set in the browser; the
sign-in itself is not timed). Two visits per patron:

- *first visit*: a new browser profile (nothing cached) and a patron whose fee list the proxy
  has not read yet, so the page waits for one Alma LIST;
- *reload*: the same tab reloaded at once, with the browser's cache and the proxy's kept fee
  list (`PATRONPAY_FEES_FRESH_SECONDS`, 30 s by default).

Bytes are what went over the wire for every answer to the page, as the DevTools protocol's
`encodedDataLength` counts them: with the HTTP/1.1 headers (about 0.7 KB an answer, most of
it the security headers; a front end speaking HTTP/2 compresses repeated headers to a few
bytes), and the bodies alone beside them. Every host but loopback is unresolvable
in this browser; a request to one is still counted as a third-party request. Issue 16's
targets: under 30 KB, no third-party request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.browser import chromium, fees_shown, new_page
from bench.fees_page import FEES_PER_PATRON
from bench.harness import BenchError, Proxy, Sandbox, deployment
from bench.profiles import Profile
from bench.stats import summary_ms

NAME = "page"
DESKTOP = {"width": 1280, "height": 900}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class Wire:
    """What the page's requests cost, from the DevTools protocol's Network events."""

    def __init__(self, page: Any) -> None:
        self.bytes = 0
        self.body_bytes = 0
        self.requests: list[str] = []
        self.third_party: list[str] = []
        self.failed = 0
        session = page.context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", self._sent)
        session.on("Network.dataReceived", self._data)
        session.on("Network.loadingFinished", self._finished)
        session.on("Network.loadingFailed", self._failed)
        session.send("Network.enable")
        self._session = session

    def _sent(self, event: dict[str, Any]) -> None:
        url = event["request"]["url"]
        if url.startswith("data:"):
            return
        self.requests.append(url)
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            self.third_party.append(url)

    def _data(self, event: dict[str, Any]) -> None:
        self.body_bytes += int(event.get("encodedDataLength", 0))

    def _finished(self, event: dict[str, Any]) -> None:
        self.bytes += int(event.get("encodedDataLength", 0))

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed += 1

    def reset(self) -> None:
        self.bytes, self.body_bytes, self.failed = 0, 0, 0
        self.requests, self.third_party = [], []


def _visit(browser: Any, sandbox: Sandbox, proxy: Proxy, user_id: str) -> dict[str, Any]:
    """One patron's first visit and an immediate reload: time to the table and the bytes."""
    sandbox.add_patron(user_id, FEES_PER_PATRON)
    patron = proxy.sign_in(user_id)
    context, page = new_page(browser, DESKTOP)
    try:
        host = urlsplit(proxy.url).hostname
        context.add_cookies([{"name": name.strip(), "value": value, "domain": host, "path": "/"}
                             for name, value in (part.split("=", 1)
                                                 for part in patron.cookie.split("; "))])
        wire = Wire(page)
        visits = {}
        for visit in ("first", "reload"):
            wire.reset()
            if visit == "first":
                page.goto(proxy.url + "/")
            else:
                page.reload()
            shown = fees_shown(page)
            page.wait_for_load_state("networkidle")  # every request of the page has finished
            rows = page.locator("#fee-rows tr").count()
            if rows < len(FEES_PER_PATRON):
                raise BenchError(f"the fees table shows {rows} rows")
            visits[visit] = {"ms": shown["frameSinceNavigation"], "bytes": wire.bytes,
                             "body_bytes": wire.body_bytes,
                             "requests": len(wire.requests), "failed": wire.failed,
                             "third_party": list(wire.third_party)}
        return visits
    finally:
        context.close()


def run(profile: Profile, workdir: Path) -> dict[str, Any]:
    rows = []
    with deployment(workdir) as (sandbox, proxy), chromium() as browser:
        _visit(browser, sandbox, proxy, "pagewarm")  # the proxy's first requests, not timed
        for latency in profile.page_latencies_ms:
            sandbox.alma_faults(latency_ms=latency)
            visits = [_visit(browser, sandbox, proxy, f"page{latency}x{n:03d}")
                      for n in range(profile.page_loads)]
            sandbox.alma_faults()
            row: dict[str, Any] = {"alma_latency_ms": latency, "loads": len(visits)}
            for visit in ("first", "reload"):
                done = [v[visit] for v in visits]
                row[visit] = {
                    "to_fees_shown": summary_ms([v["ms"] / 1000 for v in done]),
                    "bytes_max": max(v["bytes"] for v in done),
                    "bytes_min": min(v["bytes"] for v in done),
                    "body_bytes_max": max(v["body_bytes"] for v in done),
                    "requests": max(v["requests"] for v in done),
                    "failed_requests": sum(v["failed"] for v in done),
                    "third_party_requests": sum(len(v["third_party"]) for v in done),
                    "third_party_hosts": sorted({urlsplit(url).hostname or "" for v in done
                                                 for url in v["third_party"]}),
                }
            rows.append(row)
    return {"rows": rows,
            "notes": {"browser": "Debian chromium, headless", "viewport": DESKTOP,
                      "fees_per_patron": len(FEES_PER_PATRON),
                      "bytes": "DevTools encodedDataLength of every answer, headers included; "
                               "body_bytes: the bodies alone (dataReceived)",
                      "targets": "under 30 KB, no third-party request"}}
