"""The staff pages' payment routes, and every staff route in one list for proxy/app.py.

`/staff/` lists what needs staff first (attention, then needs review) above the search; a
payment's page shows what `patronpay payments show` shows (proxy/staff.py's `detail`, the same
"what to do" advice) with its actions as forms. Each action is a POST with the session's CSRF
token and is recorded in the payment's trail as `staff:<user id>`; retry and record-paid wake
this process's posting worker, which reads Alma before paying, as always.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from proxy.ledger import Ledger, PaymentRecord
from proxy.money import AmountError, parse_typed
from proxy.staff import (
    StaffError,
    advice,
    day_start,
    detail,
    event_text,
    parse_day,
    summary,
)
from proxy.staffweb import auth, kiosks, reports
from proxy.staffweb.forms import FormRefused, read_form
from proxy.staffweb.pages import STATIC, plain, render
from proxy.staffweb.sessions import StaffSession
from proxy.states import STATES, UNSETTLED, PaymentState
from proxy.web.common import services

log = logging.getLogger("patronpay.staff")

SHOWN = 500  # payments a search lists, newest first
DEFAULT_DAYS = 7  # a search with no filter lists the payments of the last week
BUTTONS = {"retry": "“Retry posting to Alma” below",
           "resolve": "“Resolve” below, with a note",
           "record-paid": "“Record as paid” below, with CashNet's transaction number and amount"}
DONE = {"retry": "Sent back to posting: the service reads Alma before paying.",
        "resolve": "Resolved, with your note in the trail.",
        "record-paid": "Recorded as paid: the service posts it to Alma."}


def base(request: Request, session: StaffSession, section: str) -> dict[str, Any]:
    """What every staff page shows: who is signed in, the sign-out form's token, the menu."""
    return {"staff": session.user_id, "csrf": session.csrf_token, "section": section}


@auth.staff_only
async def home(request: Request, session: StaffSession) -> Response:
    ledger = services(request).ledger
    needing = ledger.find_payments(needs_review=True, limit=None)
    attention = [summary(p) for p in needing if p.state == PaymentState.ATTENTION]
    review = [summary(p) for p in needing if p.state != PaymentState.ATTENTION]
    return render("home.html", base(request, session, "home") | {
        "attention": attention, "review": review, "states": STATES, "query": {}})


@auth.staff_only
async def search(request: Request, session: StaffSession) -> Response:
    query = {name: request.query_params.get(name, "").strip()
             for name in ("patron", "tx", "state", "since", "until")}
    context = base(request, session, "payments") | {"states": STATES, "query": query}
    try:
        found, described = find(services(request).ledger, query)
    except StaffError as exc:
        return render("payments.html", context | {"error": str(exc), "payments": [],
                                                   "described": "", "more": False}, 400)
    return render("payments.html", context | {
        "error": "", "payments": [summary(p) for p in found[:SHOWN]],
        "more": len(found) > SHOWN, "described": described})


def find(ledger: Ledger, query: dict[str, str]) -> tuple[list[PaymentRecord], str]:
    """The payments a search names, newest first, and how the search reads in words."""
    if query["state"] and query["state"] not in STATES:
        raise StaffError(f"There is no state {query['state']!r}.")
    since = day_start(parse_day(query["since"], "“From”")) if query["since"] else None
    until = day_start(parse_day(query["until"], "“To”")) + 86400 if query["until"] else None
    if since is not None and until is not None and until <= since:
        raise StaffError("“To” is before “From”.")
    described = "Matching payments"
    if not any(query.values()):
        since = ledger.clock() - DEFAULT_DAYS * 86400
        described = f"Payments started in the last {DEFAULT_DAYS} days"
    found = ledger.find_payments(state=query["state"] or None,
                                 patron_id=query["patron"] or None, tx=query["tx"] or None,
                                 since=since, until=until, limit=None)
    return found[::-1], described


@auth.staff_only
async def payment_page(request: Request, session: StaffSession) -> Response:
    payment = services(request).ledger.payment(request.path_params["payment_id"])
    if payment is None:
        return plain(404, "No such payment", "The ledger has no payment with this id.",
                     link=("/staff/", "Staff pages"))
    done = DONE.get(request.query_params.get("done", ""), "")
    return show(request, session, payment, done=done)


def show(request: Request, session: StaffSession, payment: PaymentRecord, *, done: str = "",
         failed: str = "", error: str = "", field: str = "",
         form: dict[str, str] | None = None, status: int = 200) -> Response:
    """A payment's page; after a refused action, `failed` names it, with the error, the field
    to correct and what was typed."""
    ledger = services(request).ledger
    info = detail(ledger, payment, services(request).settings.institution) | {
        "advice": advice(payment, button)}
    for event in info["events"]:
        event["text"] = event_text(event["kind"], event["detail"])
    return render("payment.html", base(request, session, "payments") | {
        "p": info, "done": done, "failed": failed, "error": error, "field": field,
        "form": form or {}, "can": actions_for(ledger, payment)}, status)


def button(action: str, payment: PaymentRecord, note: str = "") -> str:
    """An action as this page's advice names it: the form below that does it."""
    return BUTTONS[action] + (f" saying {note}" if note and action == "resolve" else "")


def actions_for(ledger: Ledger, payment: PaymentRecord) -> dict[str, bool]:
    """Which action forms a payment's page offers (the ledger refuses the others anyway)."""
    waiting = payment.state in UNSETTLED or (
        payment.state == PaymentState.ATTENTION and not payment.cashnet_tx)
    return {
        "retry": payment.state == PaymentState.ATTENTION and bool(payment.cashnet_tx),
        "resolve": payment.state == PaymentState.ATTENTION or bool(payment.review),
        "record_paid": waiting and not payment.cashnet_tx,
    }


async def act(request: Request, session: StaffSession, action: str) -> Response:
    """One action on a payment: the form checked, the ledger asked, the page again."""
    svc = services(request)
    payment = svc.ledger.payment(request.path_params["payment_id"])
    if payment is None:
        return plain(404, "No such payment", "The ledger has no payment with this id.")
    try:
        form = await read_form(request, session)
    except FormRefused as exc:
        return plain(exc.status, "Not done", exc.text,
                     link=(f"/staff/payments/{payment.id}", "Back to the payment"))
    try:
        changed = apply(svc.ledger, payment, action, form, session.user_id)
    except InputError as exc:
        return show(request, session, payment, failed=action, error=str(exc),
                    field=exc.field, form=form, status=400)
    except ValueError as exc:
        return show(request, session, payment, failed=action, error=str(exc), form=form,
                    status=409)
    log.info("staff action", extra={"event": "staff_action", "action": action,
                                    "payment_id": payment.id, "user": session.user_id,
                                    "state": changed.state})
    if changed.state == PaymentState.PAID:
        svc.worker.wake()
    return RedirectResponse(f"/staff/payments/{payment.id}?done={action}", status_code=303)


class InputError(ValueError):
    """A form field staff must correct; `field` names it."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field = field


def apply(ledger: Ledger, payment: PaymentRecord, action: str, form: dict[str, str],
          actor: str) -> PaymentRecord:
    note = form.get("note", "").strip()
    if action == "retry":
        return ledger.retry(payment.id, actor)
    if not note:
        raise InputError("note", "Write a note saying what you found or did.")
    if action == "resolve":
        return ledger.resolve(payment.id, note, actor)
    tx = form.get("tx", "").strip()
    if not tx:
        raise InputError("tx", "Enter CashNet's transaction number.")
    try:
        amount = parse_typed(form.get("amount", ""))
    except AmountError:
        raise InputError("amount", "Enter the amount CashNet took, like 12.50.") from None
    return ledger.record_paid(payment.id, cashnet_tx=tx, amount=amount, note=note, actor=actor,
                              amount_differs=form.get("amount_differs") == "yes")


@auth.staff_only
async def retry(request: Request, session: StaffSession) -> Response:
    return await act(request, session, "retry")


@auth.staff_only
async def resolve(request: Request, session: StaffSession) -> Response:
    return await act(request, session, "resolve")


@auth.staff_only
async def record_paid(request: Request, session: StaffSession) -> Response:
    return await act(request, session, "record-paid")


async def stylesheet(request: Request) -> Response:
    return FileResponse(STATIC / "staff.css", media_type="text/css")


async def slash(request: Request) -> Response:
    return RedirectResponse("/staff/", status_code=308)


routes = [
    Route("/staff", slash, methods=["GET"]),
    Route("/staff/", home, methods=["GET"]),
    Route("/staff/payments", search, methods=["GET"]),
    Route("/staff/payments/{payment_id}", payment_page, methods=["GET"]),
    Route("/staff/payments/{payment_id}/retry", retry, methods=["POST"]),
    Route("/staff/payments/{payment_id}/resolve", resolve, methods=["POST"]),
    Route("/staff/payments/{payment_id}/record-paid", record_paid, methods=["POST"]),
    Route("/staff/reconcile", reports.reconcile_page, methods=["GET"]),
    Route("/staff/export", reports.export_page, methods=["GET"]),
    Route("/staff/export.csv", reports.export_csv, methods=["GET"]),
    Route("/staff/kiosks", kiosks.kiosks_page, methods=["GET"]),
    Route("/staff/static/staff.css", stylesheet, methods=["GET"]),
    Route(auth.SSO_PATH, auth.sso, methods=["GET"]),
    Route(auth.CAS_PATH, auth.cas, methods=["GET"]),
    Route("/staff/sign-out", auth.sign_out, methods=["POST"]),
    Route("/staff/signed-out", auth.signed_out, methods=["GET"]),
]
