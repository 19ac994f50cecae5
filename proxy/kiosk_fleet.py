"""The kiosk fleet (docs/kiosk.md#the-fleet): the latest report of each kiosk, which kiosks are
offline, and the ledger events staff are alerted by.

Each kiosk agent reports every minute, signed (kiosk/fleet.py): its reader's and printer's
state, software version, last scan, last payment and free disk. The proxy keeps the latest
report per kiosk in `kiosk_reports`, with the time it heard it by its own clock. A configured
kiosk not heard from for OFFLINE_AFTER_SECONDS is offline: `sweep` marks it so and records one
`kiosk_offline` event in the ledger's trail per offline spell (the e-mail alerts read the
trail), and its next report records `kiosk_back`. No Starlette here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from proxy.db import Database

log = logging.getLogger("patronpay.kiosk_fleet")

OFFLINE_AFTER_SECONDS = 300.0
SWEEP_EVERY_SECONDS = 30.0
KIOSK_OFFLINE = "kiosk_offline"  # an event kind in the ledger's trail (no payment)
KIOSK_BACK = "kiosk_back"
SOURCE = "kiosk_fleet"

READER_STATES = frozenset({"none", "connecting", "connected", "disconnected"})
PRINTER_STATES = frozenset({"none", "ready", "paper_low", "paper_out", "cover_open", "offline",
                            "unknown"})
FIELDS = ("version", "reader", "printer", "last_scan_at", "last_payment_at", "disk_free_bytes")
_VERSION = re.compile(r"[0-9A-Za-z.+_-]{1,40}")


@dataclass(frozen=True)
class Report:
    """What a kiosk says about itself (times are the kiosk's, as epoch seconds)."""

    version: str
    reader: str
    printer: str
    last_scan_at: float | None
    last_payment_at: float | None
    disk_free_bytes: int | None


@dataclass(frozen=True)
class KioskStatus:
    """One kiosk as staff see it."""

    kiosk_id: str
    configured: bool
    state: str  # online, offline or never_heard
    heard_at: float | None
    report: Report | None


def parse_report(body: Mapping) -> Report:
    """A kiosk's report, checked field by field; ValueError naming the first bad one."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field: {unknown[0]}")
    version, reader, printer = body.get("version"), body.get("reader"), body.get("printer")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError("version must be a short version text")
    if reader not in READER_STATES:
        raise ValueError(f"reader must be one of {', '.join(sorted(READER_STATES))}")
    if printer not in PRINTER_STATES:
        raise ValueError(f"printer must be one of {', '.join(sorted(PRINTER_STATES))}")
    disk = body.get("disk_free_bytes")
    if disk is not None and (type(disk) is not int or disk < 0):
        raise ValueError("disk_free_bytes must be a whole number of bytes or null")
    return Report(version, reader, printer, _time(body, "last_scan_at"),
                  _time(body, "last_payment_at"), disk)


def _time(body: Mapping, name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(f"{name} must be an ISO 8601 time or null")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time or null") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry its time zone")
    return moment.timestamp()


def record_report(db: Database, kiosk_id: str, report: Report, now: float) -> bool:
    """Keep the kiosk's latest report, heard now. True if it was offline until now (its
    return is recorded in the trail)."""
    with db.write() as conn:
        row = conn.execute("SELECT offline_since FROM kiosk_reports WHERE kiosk_id = ?",
                           (kiosk_id,)).fetchone()
        was_offline = row is not None and row[0] is not None
        conn.execute(
            "INSERT INTO kiosk_reports (kiosk_id, heard_at, version, reader, printer,"
            " last_scan_at, last_payment_at, disk_free_bytes, offline_since)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (kiosk_id) DO UPDATE SET heard_at = excluded.heard_at,"
            " version = excluded.version, reader = excluded.reader,"
            " printer = excluded.printer, last_scan_at = excluded.last_scan_at,"
            " last_payment_at = excluded.last_payment_at,"
            " disk_free_bytes = excluded.disk_free_bytes, offline_since = NULL",
            (kiosk_id, now, report.version, report.reader, report.printer,
             report.last_scan_at, report.last_payment_at, report.disk_free_bytes))
        if was_offline:
            _event(conn, now, KIOSK_BACK, {"kiosk_id": kiosk_id, "offline_since": row[0]})
    if was_offline:
        log.info("kiosk heard from again", extra={"event": KIOSK_BACK, "kiosk_id": kiosk_id})
    return was_offline


def sweep(db: Database, kiosk_ids: Iterable[str], now: float,
          offline_after: float = OFFLINE_AFTER_SECONDS) -> list[str]:
    """Mark the configured kiosks not heard from for `offline_after` offline; each one newly
    offline gets one `kiosk_offline` event. In one write transaction, so two proxies sweeping
    at once record each spell once. Returns the kiosks newly offline."""
    wanted = set(kiosk_ids)
    newly = []
    with db.write() as conn:
        rows = conn.execute(
            "SELECT kiosk_id, heard_at FROM kiosk_reports"
            " WHERE offline_since IS NULL AND heard_at < ? ORDER BY kiosk_id",
            (now - offline_after,)).fetchall()
        for kiosk_id, heard_at in rows:
            if kiosk_id not in wanted:
                continue
            conn.execute("UPDATE kiosk_reports SET offline_since = ? WHERE kiosk_id = ?",
                         (now, kiosk_id))
            _event(conn, now, KIOSK_OFFLINE, {"kiosk_id": kiosk_id, "last_heard_at": heard_at})
            newly.append(kiosk_id)
    for kiosk_id in newly:
        log.warning("kiosk offline", extra={"event": KIOSK_OFFLINE, "kiosk_id": kiosk_id})
    return newly


def _event(conn, now: float, kind: str, detail: dict) -> None:
    conn.execute(
        "INSERT INTO events (payment_id, at, kind, source, detail) VALUES (NULL, ?, ?, ?, ?)",
        (now, kind, SOURCE, json.dumps(detail, sort_keys=True)))


def fleet(db: Database, kiosk_ids: Iterable[str], now: float,
          offline_after: float = OFFLINE_AFTER_SECONDS) -> list[KioskStatus]:
    """Every configured kiosk, and any other that has reported (a kiosk since removed from
    PATRONPAY_KIOSK_KEYS), by id. The state follows the clock, not the last sweep."""
    configured = set(kiosk_ids)
    rows = {row[0]: row for row in db.read(
        "SELECT kiosk_id, heard_at, version, reader, printer, last_scan_at, last_payment_at,"
        " disk_free_bytes FROM kiosk_reports")}
    statuses = []
    for kiosk_id in sorted(configured | set(rows)):
        row = rows.get(kiosk_id)
        if row is None:
            statuses.append(KioskStatus(kiosk_id, True, "never_heard", None, None))
            continue
        heard_at = row[1]
        state = "offline" if heard_at < now - offline_after else "online"
        statuses.append(KioskStatus(kiosk_id, kiosk_id in configured, state, heard_at,
                                    Report(*tuple(row)[2:])))
    return statuses


def counts(statuses: Iterable[KioskStatus]) -> dict[str, int]:
    """How many configured kiosks are in each state (for /metrics)."""
    result = {"online": 0, "offline": 0, "never_heard": 0}
    for status in statuses:
        if status.configured:
            result[status.state] += 1
    return result


async def watch(db: Database, kiosk_ids: Iterable[str], clock,
                every: float = SWEEP_EVERY_SECONDS) -> None:
    """Inside `patronpay serve`: sweep for offline kiosks every `every` seconds."""
    ids = tuple(kiosk_ids)
    while True:
        try:
            await asyncio.to_thread(sweep, db, ids, clock())
        except Exception as exc:  # the watcher must never die; type only
            log.error("kiosk sweep failed", extra={"event": "kiosk_sweep_error",
                                                   "error": type(exc).__name__})
        await asyncio.sleep(every)
