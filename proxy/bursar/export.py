"""`patronpay bursar export`: the fines report as the file the campus bursar imports.

One row per patron (the total owed) or per fee, with the columns, their order and their headers
from the settings. The file depends only on the report and the day: the same day's data gives
the same bytes (rows in a fixed order, no run time inside), so a re-run can safely replace it.
It is written beside its final name and renamed into place, so whoever collects it never sees
half a file; each run is recorded in the ledger.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from proxy.bursar.fines import FeeLine, Fines, totals
from proxy.bursar.store import BursarStore, ExportLine
from proxy.checkout import item_code_for
from proxy.money import format_amount

DESCRIPTION_WIDTH = 30  # PeopleSoft and CashNet descriptions are short; longer text is cut
PATRON_DESCRIPTION = "Library fines and fees"


@dataclass(frozen=True)
class ExportLayout:
    rows: str  # "patron" or "fee"
    columns: dict[str, str]  # field -> header, in file order
    item_code: str  # default item code
    item_codes: dict[str, str]  # LIBRARY/FEETYPE, LIBRARY/* or FEETYPE -> item code
    term: str
    date_format: str

    def item_code_for(self, fee_type: str, library: str = "") -> str:
        """By the checkout's rule, so a fee goes to the same code on CashNet and in the file."""
        return item_code_for(self.item_codes, self.item_code, fee_type, library)


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    rows: int
    patrons: int
    total: Decimal
    lines: tuple[ExportLine, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def build_export(fines: Fines, layout: ExportLayout, day: date) -> ExportFile:
    """The file's bytes for the day's fines."""
    records = (_patron_records(fines, layout, day) if layout.rows == "patron"
               else _fee_records(fines, layout))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(layout.columns.values()))
    for record in records:
        writer.writerow([record.get(field, "") for field in layout.columns])
    lines = tuple(ExportLine(f.campus_id, f.primary_id, f.fee_id, f.amount) for f in fines.fees)
    return ExportFile(content=buffer.getvalue().encode("utf-8"), rows=len(records),
                      patrons=len(fines.by_patron()), total=totals(fines.fees), lines=lines)


def _patron_records(fines: Fines, layout: ExportLayout, day: date) -> list[dict[str, str]]:
    records = []
    for fees in fines.by_patron().values():
        first = fees[0]
        records.append({
            "campus_id": first.campus_id, "primary_id": first.primary_id, "name": first.name,
            "amount": format_amount(totals(fees)), "item_code": layout.item_code,
            "description": PATRON_DESCRIPTION, "date": day.strftime(layout.date_format),
            "term": layout.term, "fee_id": "", "fee_type": "", "fees": str(len(fees)),
        })
    return sorted(records, key=lambda r: (r["campus_id"], r["primary_id"]))


def _fee_records(fines: Fines, layout: ExportLayout) -> list[dict[str, str]]:
    return [{
        "campus_id": fee.campus_id, "primary_id": fee.primary_id, "name": fee.name,
        "amount": format_amount(fee.amount),
        "item_code": layout.item_code_for(fee.fee_type, fee.owner),
        "description": _description(fee), "date": _fee_date(fee, layout.date_format),
        "term": layout.term, "fee_id": fee.fee_id, "fee_type": fee.fee_type, "fees": "1",
    } for fee in fines.fees]  # already in (campus id, date, fee id) order


def _description(fee: FeeLine) -> str:
    text = fee.fee_label or fee.fee_type
    if fee.title:
        text = f"{text}: {fee.title}"
    return " ".join(text.split())[:DESCRIPTION_WIDTH]


def _fee_date(fee: FeeLine, date_format: str) -> str:
    try:
        return date.fromisoformat(fee.created).strftime(date_format)
    except ValueError:
        return fee.created


def default_name(day: date, institution: str = "") -> str:
    """`library-fines-<day>.csv`; a consortium's institution's code goes before the day."""
    return f"library-fines-{institution + '-' if institution else ''}{day.isoformat()}.csv"


def write_atomically(path: Path, content: bytes) -> None:
    """Write beside `path`, flush to disk, then rename over it: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_export(export: ExportFile, *, store: BursarStore, output: Path | None, day: date,
                report_path: str, layout: ExportLayout) -> int:
    """Write the file (unless it goes to standard output) and record the run."""
    if output is not None:
        write_atomically(output, export.content)
    return store.record_export(
        day=day.isoformat(), report_path=report_path, output=str(output or "-"),
        layout=layout.rows, patrons=export.patrons, sha256=export.sha256, lines=export.lines)


def summary_lines(export: ExportFile, where: str, pages: int, fines: Fines) -> Sequence[str]:
    return [
        f"wrote {where}: {export.rows} rows, {export.patrons} patrons, "
        f"{format_amount(export.total)} owed (sha256 {export.sha256[:16]})",
        f"report: {pages} pages, {len(fines.fees)} fees owed, {fines.duplicates} repeated rows "
        f"merged, {fines.skipped} unreadable rows skipped",
    ]
