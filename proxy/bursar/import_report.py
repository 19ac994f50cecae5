"""What an import did, for people: the report (text) and the rejects file (CSV).

Every value in them came from the bursar's file or from Alma: the report shows them with
control characters escaped (it is read in a terminal), and the rejects file neutralises cells
that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io

from proxy.bursar.import_file import PaidsFile
from proxy.bursar.importer import ALREADY, RECORDED, REJECTED, WOULD_POST, ImportResult
from proxy.money import format_amount
from proxy.spreadsheet import text_cell
from proxy.terminal import printable  # noqa: F401 - bursar_commands imports it from here


def report_text(result: ImportResult, *, dry_run: bool = False) -> str:
    counts = result.summary()
    title = "dry run (nothing recorded)" if dry_run else "import"
    lines = [f"patronpay bursar {title}: {printable(result.name)} "
             f"(sha256 {result.sha256[:16]})",
             f"  {counts['rows']} rows: {counts[RECORDED]} recorded, {counts[ALREADY]} already "
             f"imported, {counts[WOULD_POST]} would be posted, {counts[REJECTED]} rejected"]
    if result.interrupted:
        lines.append(f"  STOPPED at {printable(result.interrupted)}; the rows after it were "
                     "not read: run the import again once Alma answers")
    for row in result.rows:
        amount = format_amount(row.amount) if row.amount is not None else "-"
        lines.append(f"  line {row.line}: {row.outcome}  {printable(row.patron) or '-'}  "
                     f"{amount}  {printable(row.transaction_id) or '-'}  "
                     f"{printable(row.detail)}")
        for fee_id, share in row.shares:
            lines.append(f"      fee {printable(fee_id)}: {format_amount(share)}")
        if row.unapplied:
            lines.append(f"      not owed in Alma: {format_amount(row.unapplied)} (waits for "
                         "staff: `patronpay payments list --attention`)")
    if result.count(RECORDED):
        lines.append("  Recorded payments are posted to Alma by the posting worker of "
                     "`patronpay serve` (or `--post`); see `patronpay payments list "
                     "--state posted`.")
    return "\n".join(lines) + "\n"


def rejects_csv(result: ImportResult, paids: PaidsFile) -> str:
    """`line,reason` and the original cells of every rejected row."""
    originals = {row.line: row.cells for row in (*paids.rows, *paids.rejects)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["line", "reason", *map(text_cell, paids.header)])
    for row in result.rejected:
        cells = originals.get(row.line, ())
        writer.writerow([row.line, text_cell(row.detail), *map(text_cell, cells)])
    return buffer.getvalue()
