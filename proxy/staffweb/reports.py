"""The staff pages' reports: reconcile a date range with Alma (as `patronpay reconcile`) and
download the bursar's CSVs (as `patronpay payments export` and `export --lines`).

Reconciling reads the fees of every patron who paid in the range from Alma, sharing this
process's Alma client and rate limit with the posting worker; so a range is at most MAX_DAYS
days and one reconciliation runs at a time per process. It changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from proxy.reconcile import FINE, reconcile
from proxy.staff import StaffError, day_start, parse_day, write_csv, write_lines_csv
from proxy.staffweb import auth
from proxy.staffweb.pages import NO_STORE, plain, render
from proxy.staffweb.sessions import StaffSession
from proxy.web.common import services

MAX_DAYS = 31
DAY = 86400


def window(since: str, until: str, *, max_days: int | None = None) -> tuple[float, float]:
    """Epoch bounds [start, end) of two `YYYY-MM-DD` days (UTC), the second counted in full."""
    start = day_start(parse_day(since, "“From”"))
    end = day_start(parse_day(until, "“To”")) + DAY
    if end <= start:
        raise StaffError("“To” is before “From”.")
    if max_days is not None and end - start > max_days * DAY:
        raise StaffError(f"Reconcile at most {max_days} days at a time: each one reads Alma.")
    return start, end


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@auth.staff_only
async def reconcile_page(request: Request, session: StaffSession) -> Response:
    query = {"since": request.query_params.get("since", "").strip(),
             "until": request.query_params.get("until", "").strip()}
    context = {"staff": session.user_id, "csrf": session.csrf_token, "section": "reconcile",
               "query": query, "max_days": MAX_DAYS, "today": today(), "error": "",
               "report": None}
    if not query["since"]:
        return render("reconcile.html", context)
    try:
        since, until = window(query["since"], query["until"] or today(), max_days=MAX_DAYS)
    except StaffError as exc:
        return render("reconcile.html", context | {"error": str(exc)}, 400)
    lock = _one_at_a_time(request.app.state)
    if lock.locked():
        return plain(503, "Reconciliation busy", "Another reconciliation is reading Alma "
                     "right now. Try again in a minute.", link=("/staff/reconcile", "Back"))
    svc = services(request)
    async with lock:
        report = await reconcile(svc.ledger, svc.alma, since=since, until=until)
    body = report.to_json()
    return render("reconcile.html", context | {
        "report": body, "fine": FINE, "span": (query["since"], query["until"] or today()),
        "needs_staff": [p for p in body["payments"] if p["status"] not in FINE]})


def _one_at_a_time(state: State) -> asyncio.Lock:
    lock = getattr(state, "staff_reconcile_lock", None)
    if lock is None:
        lock = state.staff_reconcile_lock = asyncio.Lock()
    return lock


@auth.staff_only
async def export_page(request: Request, session: StaffSession) -> Response:
    return render("export.html", {"staff": session.user_id, "csrf": session.csrf_token,
                                  "section": "export", "today": today(), "error": "",
                                  "query": {"since": "", "until": "", "lines": ""}})


@auth.staff_only
async def export_csv(request: Request, session: StaffSession) -> Response:
    """Money CashNet took in the range (by the day it was paid), as the bursar's CSV."""
    query = {name: request.query_params.get(name, "").strip()
             for name in ("since", "until", "lines")}
    try:
        since, until = window(query["since"], query["until"])
    except StaffError as exc:
        return render("export.html", {"staff": session.user_id, "csrf": session.csrf_token,
                                      "section": "export", "today": today(),
                                      "error": str(exc), "query": query}, 400)
    # The selection of `patronpay payments export`: paid in the range, with a transaction.
    payments = [p for p in services(request).ledger.find_payments(
        since=since, until=until, by="paid_at", limit=None) if p.cashnet_tx]
    out = io.StringIO()
    # In a consortium, the institution column of the command's export too.
    (write_lines_csv if query["lines"] == "yes" else write_csv)(
        payments, out, services(request).settings.institution)
    kind = "lines" if query["lines"] == "yes" else "payments"
    name = f"patronpay-{kind}-{query['since']}-to-{query['until']}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=NO_STORE | {
        "Content-Disposition": f'attachment; filename="{name}"'})
