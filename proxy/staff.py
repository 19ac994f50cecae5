"""What staff see of the ledger: a payment summed up (with what to do about it), its full
detail, both as text for the terminal, the bursar's CSV, and the day windows staff ask about.

Times are shown and taken in UTC; dates are `YYYY-MM-DD`, and a `--until` date includes that
whole day. The commands that use these are in patronpay/staff_commands.py.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

from proxy.cashnet_checks import ECHO_CAUSES
from proxy.ledger import Ledger, PaymentRecord, UnmatchedSuccess
from proxy.ledger.unmatched import echoed_total
from proxy.money import format_amount
from proxy.notification import Message
from proxy.spreadsheet import text_cell
from proxy.states import EventKind, PaymentState
from proxy.terminal import iso, printable, shorten, table, when

EXPORT_COLUMNS = ("date", "payment_id", "patron_id", "cashnet_tx", "batchno", "amount",
                  "currency", "fees", "unapplied", "state")
LINE_EXPORT_COLUMNS = ("date", "payment_id", "patron_id", "custcode", "cashnet_tx", "batchno",
                       "line", "item_code", "library", "amount", "currency", "state")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StaffError(Exception):
    """What a staff command cannot do (unknown payment, bad date, refused action): one line
    for the terminal, exit status 2."""


# --- dates and times ---


def parse_day(text: str, option: str) -> date:
    """`YYYY-MM-DD`, nothing else (no week dates, no times)."""
    if _DAY.fullmatch(text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            pass
    raise StaffError(f"{option} must be a date like 2025-03-14 (UTC), not {text!r}")


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """Epoch bounds [since, until) for two optional dates; `until` counts in full."""
    start = day_start(parse_day(since, "--since")) if since else None
    end = day_start(parse_day(until, "--until") + timedelta(days=1)) if until else None
    if start is not None and end is not None and end <= start:
        raise StaffError("--until is before --since")
    return start, end


# --- what a payment looks like to staff ---


def summary(payment: PaymentRecord, institution: str = "") -> dict:
    """`institution`: the consortium institution whose ledger holds it (none outside one),
    named when the payment records none (one older than schema 6 in a ledger not yet
    claimed); the code the payment records wins."""
    shown = payment.institution or institution
    return ({"institution": shown} if shown else {}) | {
        "id": payment.id,
        "created_at": iso(payment.created_at),
        "patron_id": payment.patron_id,
        "patron_name": payment.patron_name,
        "channel": payment.channel,
        "state": payment.state,
        "amount": format_amount(payment.amount),
        "currency": payment.currency,
        "applied": format_amount(payment.applied),
        "unapplied": format_amount(payment.unapplied),
        "cashnet_tx": payment.cashnet_tx,
        "batchno": payment.batchno,
        "reason": payment.reason,
        "review": payment.review,
    }


def detail(ledger: Ledger, payment: PaymentRecord, institution: str = "") -> dict:
    """Everything the ledger knows of one payment, the event trail included."""
    return summary(payment, institution) | {
        "effdate": payment.effdate,
        "pmtcode": payment.pmtcode,
        "paid_at": iso(payment.paid_at),
        "posted_at": iso(payment.posted_at),
        "updated_at": iso(payment.updated_at),
        "lines": [{"number": line.number, "item_code": line.item_code,
                   "amount": format_amount(line.amount), "description": line.description}
                  for line in payment.lines],
        "allocations": [{
            "fee_id": a.fee_id, "fee_type": a.fee_type, "fee_label": a.fee_label,
            "planned": format_amount(a.planned), "amount": format_amount(a.amount),
            "unapplied": format_amount(a.unapplied), "state": a.state, "origin": a.origin,
            "outcome": a.outcome, "attempts": a.attempts,
            "last_attempt_at": iso(a.last_attempt_at), "next_attempt_at": iso(a.next_attempt_at),
        } for a in payment.allocations],
        "events": [{"at": iso(e["at"]), "kind": e["kind"], "source": e["source"],
                    "detail": e["detail"]} for e in ledger.events(payment.id)],
        "advice": advice(payment),
    }


def command(action: str, payment: PaymentRecord, note: str = "...") -> str:
    """An action as the terminal's advice names it: the command to type."""
    if action == "record-paid":
        return (f"`patronpay payments record-paid {payment.id} --tx N --amount "
                f"{format_amount(payment.amount)} --note '{note}'`")
    if action == "resolve":
        return f"`patronpay payments resolve {payment.id} --note '{note}'`"
    return f"`patronpay payments {action} {payment.id}`"


# How advice names an action (retry, resolve, record-paid): `command` for the terminal; the
# staff pages name their buttons instead (proxy/staffweb/routes.py).
ActionName = Callable[..., str]


def advice(payment: PaymentRecord, act: ActionName = command) -> str:
    """What staff should do about a payment, or "" when nothing."""
    if payment.review.startswith("custcode"):
        return ("CashNet echoed another custcode than the one patronpay sent; the reference, "
                "lines and amounts matched, so the money was posted. Check in CashNet that "
                f"the payer is this patron, then {act('resolve', payment, 'what you found')}.")
    if payment.review:
        return ("Check this payment in CashNet: " + payment.review + ". Refund any extra "
                f"charge in CashNet, then {act('resolve', payment, 'what you did')}.")
    if payment.state != PaymentState.ATTENTION:
        return ""
    if not payment.cashnet_tx:
        return ("CashNet reported success without a transaction number: find the payment in "
                f"CashNet by its reference; if the money is there, {act('record-paid', payment)}"
                " posts it to Alma; otherwise settle it by hand and "
                f"{act('resolve', payment)}.")
    if payment.reason.startswith(ECHO_CAUSES):
        return ("CashNet's notification does not match what patronpay sent to CashNet. Compare "
                f"with CashNet transaction {payment.cashnet_tx}. If CashNet took the full "
                f"amount, {act('retry', payment)} posts it; otherwise refund and "
                f"{act('resolve', payment)}.")
    return (f"{format_amount(payment.unapplied)} taken by CashNet (transaction "
            f"{payment.cashnet_tx}) is not in Alma. Fix the cause in Alma (see the reason and "
            f"the allocations), then {act('retry', payment)} — it looks at Alma before paying, "
            "so nothing is posted twice. Or apply or refund the money by hand and "
            f"{act('resolve', payment)}.")


def fees_cell(payment: PaymentRecord) -> str:
    """`fee=amount` for each allocation carrying money, for the bursar's CSV."""
    return ";".join(f"{a.fee_id}={format_amount(a.amount)}" for a in payment.allocations
                    if a.amount > 0)


def unmatched_json(ledger: Ledger, item: UnmatchedSuccess) -> dict:
    """A success that named no payment, with the candidates found when it came (and what
    they are now)."""
    total = echoed_total(Message(item.fields))
    candidates = [p for p in (ledger.payment(i) for i in item.candidates) if p is not None]
    return {
        "notice": item.notice_id,
        "received_at": iso(item.received_at),
        "tx": item.tx,
        "custcode": item.fields.get("custcode", ""),
        "amount": format_amount(total) if total is not None else None,
        "candidates": [{"id": p.id, "state": p.state, "amount": format_amount(p.amount),
                        "patron_id": p.patron_id, "channel": p.channel,
                        "created_at": iso(p.created_at)} for p in candidates],
    }


# --- text output ---


def render_list(payments: Sequence[PaymentRecord], institution: str = "") -> str:
    if not payments:
        return "no payments match" + (f" at {printable(institution)}" if institution else "")
    rows = []
    for p in payments:
        note = f"REVIEW: {p.review}" if p.review else p.reason
        rows.append([when(p.created_at), p.id, p.patron_id, p.state, format_amount(p.amount),
                     p.cashnet_tx or "-", shorten(note) if note else ""])
    headers = ["CREATED (UTC)", "PAYMENT", "PATRON", "STATE", "AMOUNT", "CASHNET TX", "NOTE"]
    right = [4]
    if institution or any(p.institution for p in payments):
        # A consortium's: the institution each payment records, on every row.
        headers, right = ["INSTITUTION", *headers], [5]
        rows = [[p.institution or institution or "-", *r] for p, r in zip(payments, rows,
                                                                           strict=True)]
    return table(headers, rows, right=right) + f"\n{len(payments)} payment(s)"


def render_unmatched(items: Sequence[dict]) -> str:
    """Each unmatched success, its candidates, and the command that attaches it."""
    if not items:
        return "no unmatched successes"
    parts = []
    for item in items:
        head = (f"notification {item['notice']}  received {_utc(item['received_at'])}  "
                f"CashNet tx {item['tx'] or '-'}  custcode {item['custcode'] or '-'}  "
                f"amount {item['amount'] or '-'}")
        rows = [[c["id"], c["patron_id"], c["channel"], c["state"], c["amount"],
                 _utc(c["created_at"])] for c in item["candidates"]]
        found = _indent(table(["CANDIDATE", "PATRON", "CHANNEL", "STATE", "AMOUNT",
                               "CREATED (UTC)"], rows, right=[4])) if rows else \
            "  no candidate: no pending payment with this custcode and total"
        parts.append(f"{shorten(head, 200)}\n{found}\n  after checking in CashNet: "
                     f"patronpay payments attach {item['notice']} --to PAYMENT")
    return "\n\n".join(parts) + f"\n\n{len(items)} unmatched success(es)"


def render_detail(info: dict) -> str:
    cashnet = "-"
    if info["cashnet_tx"]:
        cashnet = f"transaction {info['cashnet_tx']}, batch {info['batchno'] or '-'}, " \
                  f"date {info['effdate'] or '-'}, payment code {info['pmtcode'] or '-'}"
    state = info["state"] + (f": {info['reason']}" if info["reason"] else "")
    head = [
        *([("institution", info["institution"])] if info.get("institution") else []),
        ("payment", info["id"]),
        ("patron", f"{info['patron_id']} ({info['patron_name']})"),
        ("channel", info["channel"]),
        ("amount", f"{info['amount']} {info['currency']} (applied in Alma {info['applied']}, "
                   f"not applied {info['unapplied']})"),
        ("state", state),
        ("review", info["review"] or "-"),
        ("cashnet", cashnet),
        ("created", _utc(info["created_at"])),
        ("paid", _utc(info["paid_at"])),
        ("posted", _utc(info["posted_at"])),
    ]
    parts = ["\n".join(f"{name:<9} {printable(value)}" for name, value in head)]
    parts.append("lines\n" + _indent(table(
        ["NO", "ITEM CODE", "AMOUNT", "DESCRIPTION"],
        [[str(x["number"]), x["item_code"], x["amount"], x["description"]]
         for x in info["lines"]], right=[0, 2])))
    parts.append("allocations\n" + _indent(table(
        ["FEE", "TYPE", "AMOUNT", "UNAPPLIED", "STATE", "TRIES", "OUTCOME"],
        [[a["fee_id"], a["fee_type"], a["amount"], a["unapplied"], a["state"],
          str(a["attempts"]), a["outcome"] + (f" ({a['origin']})" if a["origin"] not in
                                               ("", "patron") else "")]
         for a in info["allocations"]], right=[2, 3, 5])))
    parts.append("events\n" + _indent(table(
        ["TIME (UTC)", "EVENT", "SOURCE", "DETAIL"],
        [[_utc(e["at"]), e["kind"], e["source"], event_text(e["kind"], e["detail"])]
         for e in info["events"]])))
    if info["advice"]:
        parts.append("what to do\n  " + printable(info["advice"]))
    return "\n\n".join(parts)


def event_text(kind: str, detail: dict) -> str:
    """One event's detail on one line; for notifications, the fields that matter."""
    if kind == EventKind.NOTIFICATION:
        fields = detail.get("fields") or {}
        shown = {"kind": detail.get("kind"), "outcome": detail.get("outcome")}
        shown |= {k: fields[k] for k in ("result", "tx", "failedtx", "batchno") if k in fields}
        detail = shown
    pairs = []
    for key, value in detail.items():
        if value in ("", None, [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True,
                                                                separators=(",", ":"))
        pairs.append(f"{key}={text}")
    return " ".join(pairs)


def _utc(text: str | None) -> str:
    return text.replace("T", " ").replace("Z", "") if text else "-"


def _indent(text: str) -> str:
    return "\n".join("  " + row for row in text.splitlines())


# --- the bursar's export ---

def write_csv(payments: Sequence[PaymentRecord], handle: TextIO, institution: str = "") -> None:
    """With `institution` (a consortium's), a last column names on every row the institution
    the payment records (else `institution`), so the exports of several institutions can be
    put together. Without it the columns are the fixed ones of EXPORT_COLUMNS."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS + (("institution",) if institution else ()))
    for p in payments:
        paid = datetime.fromtimestamp(p.paid_at or p.created_at, UTC).date().isoformat()
        writer.writerow([paid, p.id, text_cell(p.patron_id), text_cell(p.cashnet_tx),
                         text_cell(p.batchno), format_amount(p.amount), p.currency,
                         text_cell(fees_cell(p)),
                         format_amount(p.unapplied), p.state,
                         *([p.institution or institution] if institution else [])])


def write_lines_csv(payments: Sequence[PaymentRecord], handle: TextIO,
                    institution: str = "") -> None:
    """One row per CashNet line and owning library: the item code the money was booked under
    and the library whose fees it paid. A line carrying fees of several libraries (they share
    its item code) gives one row per library, and the rows of a line add up to it. With
    `institution`, a last column names it, as in write_csv."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(LINE_EXPORT_COLUMNS + (("institution",) if institution else ()))
    for p in payments:
        paid = datetime.fromtimestamp(p.paid_at or p.created_at, UTC).date().isoformat()
        for line in p.lines:
            for library, amount in _line_parts(p, line.number, format_amount(line.amount)):
                writer.writerow([paid, p.id, text_cell(p.patron_id), text_cell(p.custcode),
                                 text_cell(p.cashnet_tx), text_cell(p.batchno), line.number,
                                 text_cell(line.item_code), text_cell(library), amount,
                                 p.currency, p.state,
                                 *([p.institution or institution] if institution else [])])


def _line_parts(payment: PaymentRecord, number: int, whole: str) -> list[tuple[str, str]]:
    """(library, amount) of one line, as stored with the payment; a payment made before
    libraries were stored gives the whole line with no library."""
    parts = (payment.checkout.get("line_libraries") or {}).get(str(number)) or {}
    return list(parts.items()) or [("", whole)]
