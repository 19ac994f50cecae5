"""`patronpay kiosks`: every configured kiosk, its state and when it was last heard from
(docs/staff.md#kiosks).

It reads the ledger `patronpay serve` writes (the settings name it) and changes nothing. A
kiosk reports every minute; one not heard from for five minutes is offline. Everything a
kiosk reported is shown escaped (proxy/terminal.py): a kiosk's report is not trusted text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from proxy import kiosk_fleet
from proxy.config import Settings, load_settings
from proxy.db import Database, ledger_exists
from proxy.staff import StaffError
from proxy.terminal import gibibytes, heard, iso, table, when

STATE_WORDS = {"online": "online", "offline": "OFFLINE", "never_heard": "never heard"}


def add_kiosk_commands(commands: argparse._SubParsersAction) -> None:
    kiosks = commands.add_parser(
        "kiosks", help="staff: every kiosk, its reader and printer, when it was last heard")
    kiosks.add_argument("--json", action="store_true")
    kiosks.set_defaults(handler=cmd_kiosks)


def cmd_kiosks(args: argparse.Namespace) -> int:
    try:
        return run_kiosks(args, load_settings(), sys.stdout)
    except StaffError as exc:
        print(f"patronpay: {exc}", file=sys.stderr)
        return 2


def run_kiosks(args: argparse.Namespace, settings: Settings, out: TextIO,
               now: float | None = None) -> int:
    """Exit status 0 when every configured kiosk is online, 1 otherwise (for scripts)."""
    db = _open(settings)
    try:
        statuses = kiosk_fleet.fleet(db, settings.kiosk_keys, time.time() if now is None
                                     else now)
    finally:
        db.close()
    if args.json:
        json.dump([status_json(s) for s in statuses], out, indent=2)
        out.write("\n")
    else:
        print(render(statuses, time.time() if now is None else now), file=out)
    return 0 if all(s.state == "online" for s in statuses if s.configured) else 1


def _open(settings: Settings) -> Database:
    """The ledger `serve` writes; never an empty one made at a mistyped path."""
    if not ledger_exists(settings.database):
        raise StaffError(f"no ledger at {settings.database} (PATRONPAY_DATABASE)")
    return Database(settings.database)


def status_json(status: kiosk_fleet.KioskStatus) -> dict:
    report = status.report
    return {
        "kiosk_id": status.kiosk_id,
        "configured": status.configured,
        "state": status.state,
        "last_heard": iso(status.heard_at),
        "reader": report.reader if report else None,
        "printer": report.printer if report else None,
        "version": report.version if report else None,
        "last_scan": iso(report.last_scan_at) if report else None,
        "last_payment": iso(report.last_payment_at) if report else None,
        "disk_free_bytes": report.disk_free_bytes if report else None,
    }


def render(statuses: Sequence[kiosk_fleet.KioskStatus], now: float) -> str:
    if not statuses:
        return "No kiosks: none in PATRONPAY_KIOSK_KEYS and none has reported."
    rows = []
    for status in statuses:
        report = status.report
        name = status.kiosk_id + ("" if status.configured else " (not configured)")
        rows.append([
            name, STATE_WORDS[status.state], heard(status.heard_at, now),
            report.reader if report else "-", report.printer if report else "-",
            report.version if report else "-",
            when(report.last_scan_at) if report else "-",
            when(report.last_payment_at) if report else "-",
            gibibytes(report.disk_free_bytes) if report else "-"])
    headers = ["KIOSK", "STATE", "LAST HEARD (UTC)", "READER", "PRINTER", "VERSION",
               "LAST SCAN (UTC)", "LAST PAYMENT (UTC)", "FREE DISK"]
    return table(headers, rows, right=[8])
