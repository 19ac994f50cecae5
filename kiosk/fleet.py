"""The kiosk's report to the proxy (docs/kiosk.md#the-fleet), every
`PATRONPAY_KIOSK_REPORT_SECONDS`: the reader's and the printer's state, the software version,
when a card was last read and a payment last started, and the free disk space. Signed like
every request of the agent; the proxy keeps the latest one per kiosk and marks a kiosk it has
not heard from for five minutes offline (proxy/kiosk_fleet.py). Nothing about a patron is in
it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata

from kiosk.proxy_client import ProxyClient, ProxyUnavailable
from kiosk.visits import KioskService

log = logging.getLogger("patronpay.kiosk.fleet")

DISK_PATH = "/"


def software_version() -> str:
    try:
        return metadata.version("patronpay")
    except metadata.PackageNotFoundError:
        return "unknown"


def free_disk_bytes(path: str = DISK_PATH) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


class FleetReporter:
    def __init__(self, service: KioskService, client: ProxyClient,
                 printer_state: Callable[[], str], every_seconds: float) -> None:
        self.service = service
        self.client = client
        self.printer_state = printer_state
        self.every_seconds = every_seconds
        self.sent = 0
        self._failing = False

    def report(self) -> dict:
        service = self.service
        return {
            "version": software_version(),
            "reader": service.reader_state,
            "printer": self.printer_state(),
            "last_scan_at": _iso(service.last_scan_at),
            "last_payment_at": _iso(service.last_payment_at),
            "disk_free_bytes": free_disk_bytes(),
        }

    async def send(self) -> bool:
        """One report; True if the proxy took it. Trouble is logged once, not every minute."""
        try:
            answer = await self.client.report(self.report())
            ok = answer.ok
        except ProxyUnavailable:
            ok, answer = False, None
        if ok:
            self.sent += 1
            if self._failing:
                log.info("kiosk report accepted again", extra={"event": "report_ok"})
        elif not self._failing:
            log.warning("kiosk report not accepted", extra={
                "event": "report_failed", "status": answer.status if answer else None,
                "code": answer.code if answer else "unreachable"})
        self._failing = not ok
        return ok

    async def run(self) -> None:
        """Every interval, the first one interval after start (the agent is up by then)."""
        while True:
            await asyncio.sleep(self.every_seconds)
            try:
                await self.send()
            except Exception as exc:  # the reporter must never die; type only
                log.error("kiosk report failed", extra={"event": "report_error",
                                                        "error": type(exc).__name__})
