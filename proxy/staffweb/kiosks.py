"""The staff pages' kiosk list: what `patronpay kiosks` prints, in a browser (issue 19 item 3,
docs/staff.md#staff-pages): every kiosk in PATRONPAY_KIOSK_KEYS (and any other that has
reported), its state and when it was last heard from, its reader, printer and version.

It reads the ledger and changes nothing. A kiosk's report is not trusted text: the page
renders it through the staff pages' escaping like every other value (proxy/staffweb/pages.py).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from proxy import kiosk_fleet
from proxy.staffweb import auth
from proxy.staffweb.pages import render
from proxy.staffweb.sessions import StaffSession
from proxy.terminal import gibibytes, heard, when
from proxy.web.common import services

STATE_WORDS = {"online": "online", "offline": "offline", "never_heard": "never heard"}


def row(status: kiosk_fleet.KioskStatus, now: float) -> dict[str, object]:
    report = status.report
    return {
        "kiosk_id": status.kiosk_id, "configured": status.configured, "state": status.state,
        "state_words": STATE_WORDS[status.state], "heard": heard(status.heard_at, now),
        "reader": report.reader if report else "-",
        "printer": report.printer if report else "-",
        "version": report.version if report else "-",
        "last_scan": when(report.last_scan_at) if report else "-",
        "last_payment": when(report.last_payment_at) if report else "-",
        "disk": gibibytes(report.disk_free_bytes) if report else "-",
    }


@auth.staff_only
async def kiosks_page(request: Request, session: StaffSession) -> Response:
    svc = services(request)
    now = time.time()
    statuses = kiosk_fleet.fleet(svc.db, svc.settings.kiosk_keys, now)
    rows = [row(status, now) for status in statuses]
    not_online = [r for r in rows if r["configured"] and r["state"] != "online"]
    return render("kiosks.html", {"staff": session.user_id, "csrf": session.csrf_token,
                                  "section": "kiosks", "kiosks": rows,
                                  "not_online": len(not_online),
                                  "offline_minutes": int(kiosk_fleet.OFFLINE_AFTER_SECONDS
                                                         // 60)})
