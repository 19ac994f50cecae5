"""The staff commands, `patronpay payments list|show|retry|resolve|record-paid|unmatched|attach|
export` and `patronpay reconcile`: their arguments and what each does.

They read the same ledger as `patronpay serve` (the settings name it). `payments` never calls
Alma: `retry` hands a payment back to the running service's posting worker, which reads the
fee in Alma before paying, as always. `reconcile` reads Alma and changes nothing. Dates are
`YYYY-MM-DD` in UTC, and an `--until` day counts in full. What a command cannot do is one line
on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, TextIO

from proxy.config import Settings, load_settings
from proxy.ledger import Ledger, PaymentRecord
from proxy.money import AmountError, parse_typed
from proxy.staff import (
    StaffError,
    detail,
    render_detail,
    render_list,
    render_unmatched,
    summary,
    unmatched_json,
    window,
    write_csv,
    write_lines_csv,
)
from proxy.states import STATES, PaymentState

if TYPE_CHECKING:
    from proxy.reconcile import Report


def add_staff_commands(commands: argparse._SubParsersAction) -> None:
    """`payments` (list, show, retry, resolve, record-paid, unmatched, attach, export) and
    `reconcile`: dates are YYYY-MM-DD in UTC, and an --until day counts in full."""
    payments = commands.add_parser("payments", help="staff: the payments in the ledger")
    actions = payments.add_subparsers(dest="payments_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="payments, newest last, with filters")
    listing.add_argument("--state", help=", ".join(STATES[:-1]) + " or " + STATES[-1])
    listing.add_argument("--patron", help="Alma primary id")
    listing.add_argument("--tx", help="CashNet transaction number")
    listing.add_argument("--since", help="created on or after this day")
    listing.add_argument("--until", help="created on or before this day")
    listing.add_argument("--attention", action="store_true",
                         help="only payments needing staff (attention, or flagged for review)")
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one payment with its full event trail")
    show.add_argument("payment_id")
    show.add_argument("--json", action="store_true")
    retry = actions.add_parser("retry", help="send a payment in attention back to posting")
    retry.add_argument("payment_id")
    retry.add_argument("--actor", help="who does this (default: your user name)")
    retry.add_argument("--json", action="store_true")
    resolve = actions.add_parser("resolve", help="close a payment settled by hand")
    resolve.add_argument("payment_id")
    resolve.add_argument("--note", required=True, help="what was done (refund, manual posting)")
    resolve.add_argument("--actor", help="who does this (default: your user name)")
    resolve.add_argument("--json", action="store_true")
    record = actions.add_parser(
        "record-paid", help="record money seen in CashNet whose notification never came")
    record.add_argument("payment_id")
    record.add_argument("--tx", required=True, help="CashNet's transaction number")
    record.add_argument("--amount", required=True, help="what CashNet took, e.g. 12.50")
    record.add_argument("--note", required=True, help="what you saw in CashNet")
    record.add_argument("--amount-differs", action="store_true",
                        help="CashNet took another amount than the one issued: record it")
    record.add_argument("--actor", help="who does this (default: your user name)")
    record.add_argument("--json", action="store_true")
    unmatched = actions.add_parser(
        "unmatched", help="successes that named no payment, with their candidate payments")
    unmatched.add_argument("--json", action="store_true")
    attach = actions.add_parser("attach", help="apply an unmatched success to its payment")
    attach.add_argument("notice", help="the notification number `unmatched` lists")
    attach.add_argument("--to", required=True, dest="payment_id", metavar="PAYMENT")
    attach.add_argument("--actor", help="who does this (default: your user name)")
    attach.add_argument("--json", action="store_true")
    export = actions.add_parser("export", help="CSV of the money taken, for the bursar")
    export.add_argument("--since", required=True, help="paid on or after this day")
    export.add_argument("--until", required=True, help="paid on or before this day")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.add_argument("--lines", action="store_true",
                        help="one row per CashNet line and library (item code, library)")
    payments.set_defaults(handler=cmd_payments)

    reconcile = commands.add_parser(
        "reconcile", help="staff: compare the ledger with Alma (changes nothing)")
    reconcile.add_argument("--since", required=True, help="payments created on or after this day")
    reconcile.add_argument("--until", help="... and on or before this day (default: today)")
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(handler=cmd_reconcile)


def cmd_payments(args: argparse.Namespace) -> int:
    try:
        return run_payments(args, load_settings(), sys.stdout)
    except StaffError as exc:
        print(f"patronpay: {exc}", file=sys.stderr)
        return 2


def cmd_reconcile(args: argparse.Namespace) -> int:
    try:
        return run_reconcile(args, load_settings(), sys.stdout)
    except StaffError as exc:
        print(f"patronpay: {exc}", file=sys.stderr)
        return 2


def open_ledger(settings: Settings) -> Ledger:
    """The ledger `serve` writes; refuses to create an empty one at a mistyped path."""
    try:
        return Ledger.open_existing(settings.database)
    except FileNotFoundError:
        raise StaffError(f"no ledger at {settings.database} (PATRONPAY_DATABASE)") from None


def get_payment(ledger: Ledger, payment_id: str) -> PaymentRecord:
    payment = ledger.payment(payment_id.strip())
    if payment is None:
        raise StaffError(f"no payment {payment_id!r} in the ledger")
    return payment


def default_actor() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "staff"


# --- patronpay payments ---


def run_payments(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`patronpay payments <action>`; raises StaffError for the terminal."""
    ledger = open_ledger(settings)
    # A consortium's institution is named on what the actions print (its code, else '').
    args.shown_institution = settings.institution
    try:
        return ACTIONS[args.payments_command](ledger, args, out)
    finally:
        ledger.db.close()


def list_payments(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    since, until = window(args.since, args.until)
    if args.state and args.state not in STATES:
        raise StaffError(f"--state must be one of {', '.join(STATES)}")
    payments = ledger.find_payments(state=args.state, patron_id=args.patron, tx=args.tx,
                                    since=since, until=until, needs_review=args.attention,
                                    limit=None)
    if args.json:
        json.dump([summary(p, args.shown_institution) for p in payments], out, indent=2)
        out.write("\n")
    else:
        print(render_list(payments, args.shown_institution), file=out)
    return 0


def show_payment(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    info = detail(ledger, get_payment(ledger, args.payment_id), args.shown_institution)
    if args.json:
        json.dump(info, out, indent=2)
        out.write("\n")
    else:
        print(render_detail(info), file=out)
    return 0


def retry_payment(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    payment = get_payment(ledger, args.payment_id)
    try:
        payment = ledger.retry(payment.id, args.actor or default_actor())
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    return _acted(payment, "sent back to the posting worker; it reads Alma before paying",
                  args, out)


def resolve_payment(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    payment = get_payment(ledger, args.payment_id)
    try:
        payment = ledger.resolve(payment.id, args.note, args.actor or default_actor())
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    return _acted(payment, "resolved", args, out)


def _acted(payment: PaymentRecord, what: str, args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        json.dump(summary(payment, args.shown_institution), out, indent=2)
        out.write("\n")
    else:
        print(f"payment {payment.id}: {what}; state is now {payment.state}", file=out)
    return 0


def export_payments(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    """Money CashNet took in the window (by the day it was paid), one row per payment, or with
    --lines one row per CashNet line and library."""
    since, until = window(args.since, args.until)
    payments = [p for p in ledger.find_payments(since=since, until=until, by="paid_at",
                                                limit=None) if p.cashnet_tx]
    write = write_lines_csv if args.lines else write_csv
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            write(payments, handle, args.shown_institution)
        print(f"{len(payments)} payment(s) written to {args.output}", file=out)
    else:
        write(payments, out, args.shown_institution)
    return 0


def record_paid(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    """The money is in CashNet but no usable notification came: `paid` as CashNet would have
    made it; the running service's worker posts it to Alma, once."""
    payment = get_payment(ledger, args.payment_id)
    try:
        amount = parse_typed(args.amount)
    except AmountError:
        raise StaffError(f"--amount must be an amount like 12.50, not {args.amount!r}") from None
    try:
        payment = ledger.record_paid(payment.id, cashnet_tx=args.tx, amount=amount,
                                     note=args.note, actor=args.actor or default_actor(),
                                     amount_differs=args.amount_differs)
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    return _acted(payment, "recorded as paid; the service posts it to Alma", args, out)


def list_unmatched(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    waiting = [unmatched_json(ledger, item) for item in ledger.unmatched_successes()]
    if args.json:
        json.dump(waiting, out, indent=2)
        out.write("\n")
    else:
        print(render_unmatched(waiting), file=out)
    return 0


def attach_notice(ledger: Ledger, args: argparse.Namespace, out: TextIO) -> int:
    if not args.notice.strip().isdigit():
        raise StaffError(f"{args.notice!r} is not a notification number (see `payments "
                         "unmatched`)")
    payment = get_payment(ledger, args.payment_id)
    try:
        payment = ledger.attach_notification(int(args.notice), payment.id,
                                             args.actor or default_actor())
    except (LookupError, ValueError) as exc:
        raise StaffError(str(exc).strip("'\"")) from None
    what = f"notification {args.notice} attached"
    if payment.state == PaymentState.PAID:
        what += "; the service posts it to Alma"
    return _acted(payment, what, args, out)


ACTIONS = {"list": list_payments, "show": show_payment, "retry": retry_payment,
           "resolve": resolve_payment, "record-paid": record_paid,
           "unmatched": list_unmatched, "attach": attach_notice, "export": export_payments}


# --- patronpay reconcile ---


def run_reconcile(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`patronpay reconcile`: 0 when nothing needs staff, 1 when something does."""
    # Imported here: only this command talks to Alma, and the Alma client pulls in the
    # whole service's runtime.
    from proxy.reconcile import reconcile, render
    from proxy.runtime import alma_client

    since, until = window(args.since, args.until)
    ledger = open_ledger(settings)

    async def check() -> Report:
        alma = alma_client(settings)
        try:
            return await reconcile(ledger, alma, since=since, until=until)
        finally:
            await alma.aclose()

    try:
        report = asyncio.run(check())
    finally:
        ledger.db.close()
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        print(render(report), file=out)
    return 1 if report.needs_staff else 0
