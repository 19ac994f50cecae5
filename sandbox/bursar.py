"""A sandbox "campus bursar": reads the library's fines file, lets a tester mark balances paid,
and writes the payments ("paids") file into the library's drop folder.

It stands in for both bursar models (docs/bursar.md#step-by-step): CashNet taking the payments
of Model I, PeopleSoft dropping its "paids" file in Model II. The page reads the newest fines
file in the outbox folder (`patronpay bursar export` writes it there) and writes payments files
into the inbox folder the way an SFTP upload lands: under a temporary name, renamed when
complete.

Tests drive it in process through `app.state.bursar` (`balances()`, `pay(...)`).
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.campus import STYLESHEET_ROUTE, page, read_form, root_path

CENT = Decimal("0.01")
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass
class Balance:
    campus_id: str
    name: str
    billed: Decimal
    paid: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(self.billed - self.paid, Decimal("0.00"))


@dataclass
class CampusBursar:
    outbox: Path | None = None
    inbox: Path | None = None
    export_headers: dict[str, str] = field(default_factory=lambda: {
        "campus_id": "campus_id", "name": "name", "amount": "amount"})
    import_headers: dict[str, str] = field(default_factory=lambda: {
        "patron_id": "patron_id", "amount": "amount", "transaction_id": "transaction_id",
        "date": "date"})
    date_format: str = "%Y-%m-%d"
    form_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    written: list[dict] = field(default_factory=list)
    paid: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (file, campus id)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, *, outbox: Path | None = None, inbox: Path | None = None,
                  export_headers: dict[str, str] | None = None,
                  import_headers: dict[str, str] | None = None,
                  date_format: str | None = None) -> None:
        with self._lock:
            self.outbox = outbox if outbox is not None else self.outbox
            self.inbox = inbox if inbox is not None else self.inbox
            self.export_headers |= export_headers or {}
            self.import_headers |= import_headers or {}
            self.date_format = date_format or self.date_format

    # --- reading the library's file ---

    def latest_file(self) -> Path | None:
        if self.outbox is None or not self.outbox.is_dir():
            return None
        files = [p for p in self.outbox.iterdir()
                 if p.is_file() and p.suffix == ".csv" and not p.name.startswith((".", "holds-"))]
        return max(files, key=lambda p: (p.stat().st_mtime, p.name), default=None)

    def balances(self) -> tuple[str, list[Balance]]:
        """(file name, one balance per campus id) of the newest fines file; a file with a row
        per fee is summed per patron."""
        source = self.latest_file()
        if source is None:
            return "", []
        if source.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{source.name} is too big for the sandbox bursar")
        reader = csv.DictReader(io.StringIO(source.read_text("utf-8-sig"), newline=""))
        wanted = self.export_headers
        if not {wanted["campus_id"], wanted["amount"]} <= set(reader.fieldnames or []):
            raise ValueError(f"{source.name} has no {wanted['campus_id']!r} and "
                             f"{wanted['amount']!r} columns")
        totals: dict[str, Balance] = {}
        for row in reader:
            campus_id = row[wanted["campus_id"]].strip()
            try:
                amount = Decimal(row[wanted["amount"]].strip())
            except InvalidOperation:
                continue
            balance = totals.setdefault(campus_id, Balance(
                campus_id, row.get(wanted.get("name", ""), "") or "", Decimal("0.00"),
                self.paid.get((source.name, campus_id), Decimal("0.00"))))
            balance.billed += amount
        return source.name, sorted(totals.values(), key=lambda b: b.campus_id)

    # --- writing the payments file ---

    def pay(self, payments: list[tuple[str, Decimal]], *, transaction_ids: bool = True,
            source: str = "") -> Path:
        """Write a payments file of (campus id, amount) into the inbox; its path."""
        if self.inbox is None:
            raise ValueError("no inbox folder is configured")
        if not payments:
            raise ValueError("mark at least one balance paid")
        headers = self.import_headers
        columns = ["patron_id", "amount"] + (["transaction_id"] if transaction_ids else []) \
            + ["date"]
        today = date.today().strftime(self.date_format)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([headers[c] for c in columns])
        for campus_id, amount in payments:
            values = {"patron_id": campus_id, "amount": format(amount.quantize(CENT), "f"),
                      "transaction_id": f"CB{secrets.token_hex(5).upper()}", "date": today}
            writer.writerow([values[c] for c in columns])
        with self._lock:
            name = f"paids-{date.today():%Y%m%d}-{len(self.written) + 1:03d}-" \
                   f"{secrets.token_hex(2)}.csv"
            target = self.inbox / name
            # As an SFTP upload lands: a temporary name the importer skips, then a rename.
            temporary = self.inbox / f".{name}.part"
            temporary.write_text(buffer.getvalue(), encoding="utf-8")
            os.replace(temporary, target)
            total = sum((amount for _, amount in payments), Decimal("0.00"))
            self.written.append({"name": name, "rows": len(payments),
                                 "total": format(total.quantize(CENT), "f")})
            for campus_id, amount in payments:
                key = (source, campus_id)
                self.paid[key] = self.paid.get(key, Decimal("0.00")) + amount
        return target


def create_app(bursar: CampusBursar | None = None) -> Starlette:
    state = bursar or CampusBursar()

    async def index(request: Request) -> Response:
        return _page(request, state, notice=request.query_params.get("written", ""))

    async def pay(request: Request) -> Response:
        form = await read_form(request)
        if form is None or not secrets.compare_digest(form.get("form_token", ""),
                                                      state.form_token):
            return PlainTextResponse("Reload the page and try again.", 400)
        try:
            source, balances = state.balances()
            chosen = _chosen(form, balances)
            written = state.pay(chosen, transaction_ids=not form.get("no_transaction_ids"),
                                source=source)
        except ValueError as exc:
            return _page(request, state, problem=str(exc), status=400)
        return RedirectResponse(f"{root_path(request)}/?written={written.name}", 303)

    app = Starlette(routes=[Route("/", index, methods=["GET"]),
                            Route("/pay", pay, methods=["POST"]), STYLESHEET_ROUTE])
    app.state.bursar = state
    return app


def _chosen(form: dict[str, str], balances: list[Balance]) -> list[tuple[str, Decimal]]:
    by_id = {balance.campus_id: balance for balance in balances}
    chosen = []
    for key, campus_id in form.items():
        if not key.startswith("pay_") or campus_id not in by_id:
            continue
        text = form.get("amount_" + key[len("pay_"):], "").strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"the amount for {campus_id} is not a number: {text!r}") from None
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
            raise ValueError(f"the amount for {campus_id} must be above zero, in cents")
        chosen.append((campus_id, amount))
    return chosen


def _page(request: Request, state: CampusBursar, *, notice: str = "", problem: str = "",
          status: int = 200) -> Response:
    try:
        source, balances = state.balances()
    except (ValueError, OSError) as exc:
        source, balances, problem = "", [], problem or str(exc)
    rows = [{"campus_id": b.campus_id, "name": b.name, "billed": _money(b.billed),
             "paid": _money(b.paid), "remaining": _money(b.remaining)} for b in balances]
    notice = f"Wrote {notice} into the library's drop folder." if notice else ""
    return page(request, "bursar.html", {
        "source": source, "rows": rows, "outbox": state.outbox, "inbox": state.inbox,
        "written": state.written, "form_token": state.form_token, "notice": notice,
        "problem": problem}, status=status)


def _money(amount: Decimal) -> str:
    return format(amount.quantize(CENT), "f")
