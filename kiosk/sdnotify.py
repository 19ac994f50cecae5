"""Running the agent under systemd (docs/kiosk.md#the-systemd-units): `READY=1` once uvicorn's
sockets are bound (uvicorn has no sd_notify of its own), and `WATCHDOG=1` from a task that feeds the
watchdog only while the card reader's thread is alive. No library needed: a datagram to
`$NOTIFY_SOCKET`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

import uvicorn

log = logging.getLogger("patronpay.kiosk.systemd")


def sd_notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Tell systemd `state`; False when not under systemd (no NOTIFY_SOCKET)."""
    addr = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET")
    if not addr:
        return False
    addr = "\0" + addr[1:] if addr.startswith("@") else addr  # abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), addr)
    except OSError as exc:
        log.warning("sd_notify failed", extra={"event": "sd_notify_failed",
                                               "error": type(exc).__name__})
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Half of `WatchdogSec=` (systemd passes it as WATCHDOG_USEC), or None when not set."""
    usec = (environ if environ is not None else os.environ).get("WATCHDOG_USEC", "")
    return int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else None


async def feed_watchdog(interval: float, healthy: Callable[[], bool]) -> None:
    """Send WATCHDOG=1 every `interval` seconds while `healthy()`; stop feeding when it is not,
    so systemd restarts the agent (Restart=always)."""
    while True:
        if healthy():
            sd_notify("WATCHDOG=1")
        else:
            log.error("card reader thread stalled; not feeding the watchdog",
                      extra={"event": "watchdog_starved"})
        await asyncio.sleep(interval)


class _KioskServer(uvicorn.Server):
    """uvicorn that says STOPPING=1 and runs `on_shutdown` as soon as shutdown begins (before
    it waits for open responses), so the page's event streams end at once. (uvicorn then
    re-raises the stop signal, so the process ends by SIGTERM, which systemd counts as clean.)"""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets=None) -> None:
        sd_notify("STOPPING=1")
        self._on_shutdown()
        await super().shutdown(sockets)


async def serve(config: uvicorn.Config, *, on_shutdown: Callable[[], None],
                healthy: Callable[[], bool]) -> None:
    server = _KioskServer(config, on_shutdown)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    watchdog = None
    if server.started:
        sd_notify("READY=1")  # patronpay-kiosk-browser.service is ordered after this
        interval = watchdog_interval()
        if interval:
            watchdog = asyncio.create_task(feed_watchdog(interval, healthy))
    try:
        await task
    finally:
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
