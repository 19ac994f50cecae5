"""The fines-and-fees report as fees: one `FeeLine` per Alma fee still owed.

Analytics hands out display values: amounts as doubles ("4.5"), fee types and statuses as
descriptions ("Overdue fine", "Active"). A report that shows transaction columns repeats a fee
once per transaction, so rows are de-duplicated by fee id. A row we cannot read is skipped and
counted, never guessed at.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from proxy.bursar.analytics import AnalyticsError, Report
from proxy.bursar.columns import REPORT_REQUIRED
from proxy.money import CENT, ZERO

log = logging.getLogger("patronpay.bursar")

# An Analytics double is exact cents give or take the binary noise of a double.
_DOUBLE_NOISE = Decimal("0.000001")
_CODE = re.compile(r"[A-Z0-9_]+")


@dataclass(frozen=True)
class FeeLine:
    fee_id: str
    primary_id: str
    campus_id: str
    name: str
    fee_type: str  # Alma's code, e.g. OVERDUEFINE
    fee_label: str  # as the report shows it, e.g. "Overdue fine"
    amount: Decimal
    created: str  # YYYY-MM-DD, or "" when the report has no date
    owner: str
    title: str


@dataclass(frozen=True)
class Fines:
    fees: tuple[FeeLine, ...]
    skipped: int  # rows that could not be read
    duplicates: int  # rows repeating a fee already seen

    def by_patron(self) -> dict[str, list[FeeLine]]:
        grouped: dict[str, list[FeeLine]] = {}
        for fee in self.fees:
            grouped.setdefault(fee.primary_id, []).append(fee)
        return grouped


def fee_type_code(label: str) -> str:
    """Alma's fee type code from the report's description: "Lost item replacement fee" ->
    LOSTITEMREPLACEMENTFEE (Alma's codes are their English descriptions run together); a
    code is kept as it is."""
    text = label.strip()
    if _CODE.fullmatch(text):
        return text
    return re.sub(r"[^A-Za-z0-9]", "", text).upper()


def report_amount(text: str) -> Decimal:
    """An Analytics amount as exact cents; ValueError when it is not one."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    rounded = value.quantize(CENT)
    if abs(value - rounded) > _DOUBLE_NOISE:
        raise ValueError(f"not a sum in cents: {text!r}")
    return rounded


def fines_from_report(report: Report, headings: dict[str, str]) -> Fines:
    """The fees still owed: active (when the report shows a status), balance above zero."""
    missing = [field for field in REPORT_REQUIRED if headings[field] not in report.headings]
    if missing and report.rows:
        shown = ", ".join(report.headings) or "none"
        raise AnalyticsError(
            f"the report has no column {headings[missing[0]]!r} ({missing[0]}); its columns: "
            f"{shown}. Set PATRONPAY_BURSAR_REPORT_COLUMNS to match.")
    seen: dict[str, FeeLine] = {}
    skipped = duplicates = 0
    for row in report.rows:
        line = _fee_line(row, headings)
        if line is None:
            skipped += 1
            continue
        earlier = seen.get(line.fee_id)
        if earlier is not None:
            duplicates += 1
            if earlier.amount != line.amount:
                # Rows of one fee that disagree: never bill more than the least stated.
                log.warning("report rows of one fee disagree", extra={
                    "event": "bursar_report_conflict", "fee_id": line.fee_id})
                if line.amount < earlier.amount:
                    seen[line.fee_id] = line
            continue
        seen[line.fee_id] = line
    owed = [fee for fee in seen.values() if fee.amount > ZERO]
    return Fines(fees=tuple(sorted(owed, key=_order)), skipped=skipped, duplicates=duplicates)


def _fee_line(row: dict[str, str], headings: dict[str, str]) -> FeeLine | None:
    def cell(field: str) -> str:
        return row.get(headings[field], "").strip()

    fee_id, primary_id, campus_id = cell("fee_id"), cell("primary_id"), cell("campus_id")
    if not fee_id or not primary_id or not campus_id:
        return None
    try:
        amount = report_amount(cell("amount"))
    except ValueError:
        log.warning("report row skipped: amount", extra={"event": "bursar_report_skip",
                                                         "fee_id": fee_id})
        return None
    status = cell("status")
    if status and status.casefold() != "active":
        amount = ZERO  # closed, waived, in dispute, transferred: nothing to bill
    first, last = cell("first_name"), cell("last_name")
    name = f"{last}, {first}" if first and last else (last or first)
    label = cell("fee_type")
    return FeeLine(fee_id=fee_id, primary_id=primary_id, campus_id=campus_id, name=name,
                   fee_type=fee_type_code(label), fee_label=label, amount=amount,
                   created=cell("created")[:10], owner=cell("owner"), title=cell("title"))


def _order(fee: FeeLine) -> tuple[str, str, str, int, str]:
    numeric = int(fee.fee_id) if fee.fee_id.isdigit() else 0
    return (fee.campus_id, fee.primary_id, fee.created, numeric, fee.fee_id)


def totals(fees: Iterable[FeeLine]) -> Decimal:
    return sum((fee.amount for fee in fees), ZERO)
