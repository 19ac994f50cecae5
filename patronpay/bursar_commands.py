"""`patronpay bursar export | import | holds`: the bursar models (docs/bursar.md).

Each command reads the same settings and ledger as `patronpay serve`. Exit status: 0 all well;
1 a file or some rows were refused (see the report and the rejects file); 2 a configuration or
usage problem; 75 Alma could not be asked (temporary: run again later, nothing is lost).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from proxy.alma import AlmaClient
from proxy.bursar.analytics import AnalyticsError, AnalyticsReader
from proxy.bursar.columns import import_headers, report_headings
from proxy.bursar.export import (
    ExportLayout,
    build_export,
    default_name,
    save_export,
    summary_lines,
    write_atomically,
)
from proxy.bursar.fines import Fines, fines_from_report
from proxy.bursar.holds import HoldsError, ids_csv, work_out_holds
from proxy.bursar.import_file import FileRefused, PaidsFile, parse_paids
from proxy.bursar.import_report import printable, rejects_csv, report_text
from proxy.bursar.importer import (
    CHANNEL,
    REFUSED_EVENT,
    REJECTED_EVENT,
    BursarImporter,
    ImportResult,
)
from proxy.bursar.inbox import BUSY, DONE, LEFT, REJECTED, Handled, run_inbox
from proxy.bursar.store import BursarStore
from proxy.config import Settings, load_settings
from proxy.db import Database, ledger_exists
from proxy.ledger import Ledger

log = logging.getLogger("patronpay.bursar")

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: systemd and cron callers retry on the next run
POST_HORIZON_SECONDS = 60.0


class BursarError(Exception):
    """A problem to tell staff in one line (exit status 2)."""


def add_bursar_commands(commands: argparse._SubParsersAction) -> None:
    bursar = commands.add_parser("bursar", help="the bursar models: fines file out, payments "
                                 "file in, registration holds")
    actions = bursar.add_subparsers(dest="bursar_command", required=True, metavar="ACTION")

    export = actions.add_parser("export", help="the fines report as the file for the bursar")
    export.add_argument("--output", help="file to write, or - for standard output (default: "
                        "library-fines-DAY.csv in PATRONPAY_BURSAR_OUTBOX)")
    export.add_argument("--day", help="the day the file is for, YYYY-MM-DD (default: today)")
    export.add_argument("--allow-empty", action="store_true",
                        help="write a file without rows even though the last file had some")
    export.set_defaults(handler=cmd_export)

    imports = actions.add_parser("import", help="post the bursar's payments file to Alma")
    source = imports.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, help="a payments file (CSV)")
    source.add_argument("--inbox", action="store_true",
                        help="every complete file in PATRONPAY_BURSAR_INBOX")
    imports.add_argument("--dry-run", action="store_true",
                         help="print what would be posted; record nothing")
    imports.add_argument("--rejects", type=Path,
                         help="where to write refused rows (default: FILE.rejects.csv)")
    imports.add_argument("--post", action="store_true",
                         help="also post to Alma now (when no `patronpay serve` runs)")
    imports.set_defaults(handler=cmd_import)

    holds = actions.add_parser("holds", help="who to hold, and whose hold can be lifted")
    holds.add_argument("--output-dir", type=Path,
                       help="folder for the two files (default: PATRONPAY_BURSAR_OUTBOX)")
    holds.add_argument("--day", help="the day the files are for, YYYY-MM-DD (default: today)")
    holds.add_argument("--new-only", action="store_true",
                       help="list only patrons not held last time (default: all held now)")
    holds.add_argument("--dry-run", action="store_true",
                       help="print the lists; write and record nothing")
    holds.add_argument("--allow-empty", action="store_true",
                       help="accept an empty report even though patrons were held last time")
    holds.set_defaults(handler=cmd_holds)


# --- what every command holds ---


@dataclass
class Context:
    settings: Settings
    ledger: Ledger
    store: BursarStore
    alma: AlmaClient

    @classmethod
    def open(cls, settings: Settings) -> Context:
        from proxy.runtime import alma_client

        if not ledger_exists(settings.database):
            raise BursarError(f"no ledger at {settings.database} (PATRONPAY_DATABASE): start "
                              "`patronpay serve` once, or check the setting")
        db = Database(settings.database)
        ledger = Ledger(db, institution=settings.institution)  # the imported payments'
        return cls(settings, ledger, BursarStore(db, ledger.clock), alma_client(settings))

    async def aclose(self) -> None:
        await self.alma.aclose()
        self.ledger.db.close()


def layout(settings: Settings) -> ExportLayout:
    return ExportLayout(
        rows=settings.bursar_export_rows, columns=settings.bursar_export_columns,
        item_code=settings.bursar_item_code or settings.cashnet_item_code,
        item_codes=settings.bursar_item_codes or settings.cashnet_item_codes,
        term=settings.bursar_term, date_format=settings.bursar_date_format)


def the_day(text: str | None) -> date:
    if not text:
        return date.today()  # the campus's own day: timers run in local time
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BursarError(f"--day must be a date like 2025-03-14, not {text!r}") from None


async def read_fines(settings: Settings) -> tuple[Fines, int]:
    """The report's fees owed, and how many pages it took."""
    if not settings.bursar_report_path:
        raise BursarError("PATRONPAY_BURSAR_REPORT_PATH is not set: the Analytics report to read")
    reader = AnalyticsReader(
        settings.alma_api_url, settings.alma_api_key,
        page_size=settings.bursar_report_page_size,
        wait_seconds=float(settings.bursar_report_wait_seconds),
        loading_retries=settings.bursar_report_retries)
    try:
        report = await reader.read(settings.bursar_report_path)
    finally:
        await reader.aclose()
    return fines_from_report(report, report_headings(settings.bursar_report_columns)), \
        report.pages


def run(handler, args: argparse.Namespace) -> int:
    """Load the settings, run the async handler, turn known failures into an exit status."""
    from proxy.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    # The errors quote Alma's own words (its errorMessage, a user id), so they are shown
    # escaped like every other value on a staff terminal (docs/security.md#staff-terminals).
    try:
        return asyncio.run(handler(args, settings))
    except BursarError as exc:
        print(f"patronpay: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except AnalyticsError as exc:
        print(f"patronpay: the Analytics report could not be read: {printable(str(exc))}",
              file=sys.stderr)
        return EXIT_TEMPORARY
    except HoldsError as exc:
        print(f"patronpay: {printable(str(exc))}", file=sys.stderr)
        return EXIT_TEMPORARY


# --- export ---


def cmd_export(args: argparse.Namespace) -> int:
    return run(_export, args)


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    day = the_day(args.day)
    output = _export_path(args.output, settings, day)
    context = Context.open(settings)
    try:
        fines, pages = await read_fines(settings)
        if not fines.fees and not args.allow_empty:
            fines, pages = await _not_empty_by_mistake(settings, context.store, fines, pages)
        shape = layout(settings)
        export = build_export(fines, shape, day)
        save_export(export, store=context.store, output=output, day=day,
                    report_path=settings.bursar_report_path, layout=shape)
    finally:
        await context.aclose()
    if output is None:
        sys.stdout.write(export.content.decode("utf-8"))
        sys.stdout.flush()
    notes = summary_lines(export, str(output or "standard output"), pages, fines)
    print("\n".join(notes), file=sys.stderr if output is None else sys.stdout)
    return 0


async def _not_empty_by_mistake(settings: Settings, store: BursarStore, fines: Fines,
                                pages: int) -> tuple[Fines, int]:
    """An empty report when the last file billed someone. Analytics has been seen to answer
    "finished, no rows" by mistake, and a file without rows would clear every balance where the
    bursar loads the file as the balance: ask once more, then refuse (exit 75, as for a report
    that cannot be read) unless staff say it is right (--allow-empty)."""
    last = store.exports(limit=1)
    if not last or not last[0]["rows"]:
        return fines, pages
    await asyncio.sleep(float(settings.bursar_report_wait_seconds))
    fines, pages = await read_fines(settings)
    if fines.fees:
        return fines, pages
    raise AnalyticsError(
        f"the report lists no fee owed, twice, and the last file ({last[0]['day']}) billed "
        f"{last[0]['rows']}: refusing to write a file without rows (run again later, or use "
        "--allow-empty if it is right)")


def _export_path(option: str | None, settings: Settings, day: date) -> Path | None:
    if option == "-":
        return None
    if option:
        return Path(option)
    if settings.bursar_outbox:
        return Path(settings.bursar_outbox) / default_name(day, settings.institution)
    return None


# --- import ---


def cmd_import(args: argparse.Namespace) -> int:
    return run(_import, args)


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    context = Context.open(settings)
    try:
        if args.inbox:
            status = await _import_inbox(args, context)
        else:
            status = await _import_file(args, context)
        if args.post and not args.dry_run:
            await post_now(context)
        return status
    finally:
        await context.aclose()


def importer(context: Context) -> BursarImporter:
    shape = layout(context.settings)
    return BursarImporter(context.ledger, context.alma, id_type=context.settings.bursar_id_type,
                          currency=context.settings.currency, item_code_for=shape.item_code_for)


def parse(settings: Settings, data: bytes, name: str) -> PaidsFile:
    overrides = settings.bursar_import_columns
    return parse_paids(data, name, import_headers(overrides), settings.bursar_date_format,
                       explicit=frozenset(overrides))


async def import_one(context: Context, data: bytes, name: str,
                     dry_run: bool) -> tuple[PaidsFile, ImportResult]:
    """Parse and import one file (FileRefused when refused whole); record it unless dry."""
    paids = parse(context.settings, data, name)
    result = await importer(context).run(paids, dry_run=dry_run)
    if not dry_run:
        context.store.record_import(
            name=paids.name, sha256=paids.sha256,
            outcome="interrupted" if result.interrupted else "imported",
            summary=result.summary(),
            rows=[(r.line, r.patron, r.amount, r.transaction_id, r.payment_id, r.outcome,
                   r.detail) for r in result.rows])
        for row in result.rejected:
            log.warning("bursar row rejected", extra={
                "event": "bursar_rejected", "file": paids.name, "line": row.line,
                "reason": row.detail})
        # An interrupted file is read again by the next run: it alerts then, once.
        if result.rejected and not result.interrupted:
            alert_staff(context, REJECTED_EVENT, {
                "file": paids.name, "rejected": len(result.rejected),
                "lines": _lines(row.line for row in result.rejected),
                "reason": result.rejected[0].detail})
    return paids, result


def alert_staff(context: Context, kind: str, detail: dict) -> None:
    """One event in the ledger's trail per file (never per row: a bad file is one alert), which
    the mail worker of `patronpay serve` turns into a staff alert (proxy/mail/alerts.py)."""
    context.ledger.add_event(None, kind, CHANNEL, detail)


def _lines(numbers: Iterable[int], shown: int = 20) -> str:
    """`3, 4, 11` (the first `shown`, then how many more): bounded for a mail line."""
    listed = list(numbers)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(str(n) for n in listed[:shown]) + more


def refused(context: Context, name: str, exc: FileRefused, dry_run: bool) -> None:
    """A file refused whole: logged, and (unless a dry run) an alert for staff."""
    log.warning("bursar file refused", extra={"event": "bursar_refused", "file": name,
                                              "reason": str(exc)})
    if not dry_run:
        alert_staff(context, REFUSED_EVENT, {"file": name, "reason": str(exc)})


def _status(result: ImportResult) -> int:
    if result.interrupted:
        return EXIT_TEMPORARY
    return EXIT_REFUSED if result.rejected else 0


async def _import_file(args: argparse.Namespace, context: Context) -> int:
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BursarError(f"cannot read {path}: {exc.strerror}") from None
    try:
        paids, result = await import_one(context, data, path.name, args.dry_run)
    except FileRefused as exc:
        refused(context, path.name, exc, args.dry_run)
        print(f"patronpay: {printable(path.name)} refused whole: {printable(str(exc))}",
              file=sys.stderr)
        return EXIT_REFUSED
    print(report_text(result, dry_run=args.dry_run), end="")
    if result.rejected and not args.dry_run:
        target = args.rejects or path.with_name(path.name + ".rejects.csv")
        write_atomically(target, rejects_csv(result, paids).encode("utf-8"))
        print(f"  rejected rows written to {printable(str(target))}")
    return _status(result)


async def _import_inbox(args: argparse.Namespace, context: Context) -> int:
    if not context.settings.bursar_inbox:
        raise BursarError("PATRONPAY_BURSAR_INBOX is not set: the folder the bursar's files "
                          "land in")
    folder = Path(context.settings.bursar_inbox)
    statuses = [0]

    async def handle(path: Path, data: bytes) -> Handled:
        try:
            paids, result = await import_one(context, data, path.name, args.dry_run)
        except FileRefused as exc:
            refused(context, path.name, exc, args.dry_run)
            statuses.append(EXIT_REFUSED)
            return Handled(REJECTED, f"patronpay bursar import: {printable(path.name)} refused "
                           f"whole: {printable(str(exc))}\n")
        statuses.append(_status(result))
        report = report_text(result, dry_run=args.dry_run)
        if args.dry_run or result.interrupted:
            return Handled(LEFT, report)
        return Handled(DONE, report, rejects_csv(result, paids) if result.rejected else "")

    try:
        outcomes = await run_inbox(folder, context.settings.bursar_inbox_settle_seconds, handle)
    except FileNotFoundError as exc:
        raise BursarError(str(exc)) from None
    for outcome in outcomes:
        if outcome.kind == BUSY:
            print(f"patronpay: {outcome.report}")
            continue
        print(outcome.report, end="")
        where = f"moved to {outcome.moved_to}" if outcome.moved_to else "left in the inbox"
        print(f"  {printable(outcome.name)}: {where}")
    if not outcomes:
        print(f"patronpay: no complete file in {folder}")
    return max(statuses)


async def post_now(context: Context) -> None:
    """The posting worker, for deployments where `patronpay serve` does not run: it works
    until nothing is due within a minute (a payment call whose answer was lost is looked at
    after the recheck wait); what Alma cannot take by then waits for the next run."""
    from proxy.posting import PostingWorker, owner_is_dead
    from proxy.runtime import posting_policy

    policy = posting_policy(context.settings)
    # A run killed mid-posting holds its leases for minutes: take its work over now.
    context.ledger.break_leases(owner_is_dead)
    worker = PostingWorker(context.ledger, context.alma, policy)
    horizon = time.time() + max(POST_HORIZON_SECONDS, 2 * policy.recheck_seconds)
    rounds = 0
    while True:
        rounds += await worker.drain()
        for payment_id in context.ledger.paid_with_nothing_left():
            context.ledger.settle_if_done(payment_id)
        due = context.ledger.next_due_at()
        if due is None or due > horizon:
            break
        await asyncio.sleep(max(0.05, due - time.time()))
    waiting = "" if due is None else "; some wait for Alma: run again later"
    print(f"posting: {rounds} payment rounds{waiting}")


# --- holds ---


def cmd_holds(args: argparse.Namespace) -> int:
    return run(_holds, args)


async def _holds(args: argparse.Namespace, settings: Settings) -> int:
    day = the_day(args.day)
    folder = args.output_dir or (Path(settings.bursar_outbox) if settings.bursar_outbox
                                 else None)
    if folder is None and not args.dry_run:
        raise BursarError("set PATRONPAY_BURSAR_OUTBOX or give --output-dir")
    context = Context.open(settings)
    try:
        fines, _ = await read_fines(settings)
        _, previous = context.store.last_holds()
        result = await work_out_holds(
            fines, previous, hold_min=settings.bursar_hold_min,
            block_types=settings.bursar_block_types, alma=context.alma,
            allow_empty=args.allow_empty)
        header = settings.bursar_export_columns.get("campus_id", "campus_id")
        listed = result.placed if args.new_only else result.held
        if not args.dry_run:
            assert folder is not None
            write_atomically(folder / f"holds-{day.isoformat()}.csv", ids_csv(listed, header))
            write_atomically(folder / f"holds-lifted-{day.isoformat()}.csv",
                             ids_csv(result.lifted, header))
            context.store.record_holds(result.held, len(result.placed), len(result.lifted))
    finally:
        await context.aclose()
    print(f"holds: {len(result.held)} patrons held ({len(result.placed)} new), "
          f"{len(result.lifted)} to lift" + (f"; {result.lookups} Alma look-ups for blocks"
                                             if result.lookups else ""))
    for hold in result.held:
        new = " (new)" if hold in result.placed else ""
        print(f"  hold  {printable(hold.campus_id)}  {printable(hold.reason)}{new}")
    for hold in result.lifted:
        print(f"  lift  {printable(hold.campus_id)}")
    if not args.dry_run:
        print(f"wrote {folder}/holds-{day.isoformat()}.csv and "
              f"holds-lifted-{day.isoformat()}.csv")
    return 0
