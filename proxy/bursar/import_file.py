"""Reading the bursar's payments file (Model I's payments back, Model II's "paids").

CSV, UTF-8 (a byte-order mark is allowed), a header row naming the columns. A file is refused
whole when it cannot be trusted as a whole: too big, not text, not CSV, or a header without the
columns we need. Otherwise every row is judged on its own: a bad row (no patron, a bad amount,
a bad date, the wrong number of cells) is refused with its line number and the good rows go on.

Each good row carries the id of its payment: the file's transaction id, or where the file has
none, a stable id made from the file's name, the row's line number and its content, so the
same file imported again gives the same ids (docs/bursar.md#transaction-ids).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import PurePath

from proxy.bursar.columns import IMPORT_FIELDS, IMPORT_REQUIRED
from proxy.money import ZERO, AmountError, parse_typed

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_CELL = 200
STABLE_ID_PREFIX = "PPB-"


class FileRefused(ValueError):
    """The whole file is refused; nothing of it is imported."""


@dataclass(frozen=True)
class PaidRow:
    line: int
    patron: str  # the campus id as the file gives it
    amount: Decimal
    transaction_id: str
    stable_id: bool  # the file had no transaction id: ours, from name, line and content
    date: str
    fee_id: str
    item_code: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class PaidsFile:
    name: str
    sha256: str
    header: tuple[str, ...]
    rows: tuple[PaidRow, ...]
    rejects: tuple[RejectedRow, ...]


def stable_id(name: str, line: int, cells: list[str]) -> str:
    """The payment id of a row without a transaction id: the same for the same file name,
    line and content, whichever folder the file is read from."""
    material = "\x1f".join([PurePath(name).name, str(line), *cells])
    return STABLE_ID_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()[:24].upper()


def parse_paids(data: bytes, name: str, headers: dict[str, str], date_format: str,
                explicit: frozenset[str] = frozenset()) -> PaidsFile:
    """The file's rows and rejects. `headers` maps every field to the header carrying it;
    `explicit` names the fields whose header was configured (so must be present)."""
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(f"the file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"the file is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise FileRefused("the file holds NUL characters: not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FileRefused("the file is empty")
        columns = _columns(header, headers, explicit)
        rows, rejects = [], []
        for cells in reader:
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if len(rows) + len(rejects) >= MAX_ROWS:
                raise FileRefused(f"the file has more than {MAX_ROWS} rows")
            judged = _row(reader.line_num, cells, len(header), columns, name, date_format)
            (rows if isinstance(judged, PaidRow) else rejects).append(judged)
    except csv.Error as exc:
        raise FileRefused(f"not a CSV file (line {reader.line_num}: {exc})") from None
    return PaidsFile(name=PurePath(name).name, sha256=hashlib.sha256(data).hexdigest(),
                     header=tuple(header), rows=tuple(rows), rejects=tuple(rejects))


def _columns(header: list[str], headers: dict[str, str],
             explicit: frozenset[str]) -> dict[str, int]:
    """field -> cell index; FileRefused when a needed column is missing or doubled."""
    found = [cell.strip().casefold() for cell in header]
    if len(set(found)) != len(found):
        raise FileRefused(f"the header names a column twice: {','.join(header)}")
    columns = {}
    for field in IMPORT_FIELDS:
        wanted = headers[field].casefold()
        if wanted in found:
            columns[field] = found.index(wanted)
        elif field in IMPORT_REQUIRED or field in explicit:
            expected = ",".join(headers[f] for f in IMPORT_REQUIRED)
            raise FileRefused(f"the header has no {headers[field]!r} column ({field}); it is "
                              f"{','.join(header)!r}, expected at least {expected!r}")
    return columns


def _row(line: int, cells: list[str], width: int, columns: dict[str, int], name: str,
         date_format: str) -> PaidRow | RejectedRow:
    def reject(reason: str) -> RejectedRow:
        return RejectedRow(line, reason, tuple(cells))

    if len(cells) != width:
        return reject(f"{len(cells)} cells where the header has {width}")
    if any(len(cell) > MAX_CELL for cell in cells):
        return reject(f"a cell is longer than {MAX_CELL} characters")

    def cell(field: str) -> str:
        return cells[columns[field]].strip() if field in columns else ""

    patron = cell("patron_id")
    if not patron:
        return reject("no patron id")
    if any(not ch.isprintable() for ch in patron):
        return reject("the patron id holds control characters")
    try:
        amount = parse_typed(cell("amount"))
    except AmountError:
        return reject(f"amount {cell('amount')!r} is not an amount like 12.50")
    if amount <= ZERO:
        return reject("the amount is zero")
    day = cell("date")
    if day:
        try:
            datetime.strptime(day, date_format)  # noqa: DTZ007 - a calendar day, no time
        except ValueError:
            return reject(f"date {day!r} does not match {date_format!r}")
    transaction_id = cell("transaction_id")
    if any(not ch.isprintable() or ch.isspace() for ch in transaction_id):
        return reject("the transaction id holds spaces or control characters")
    return PaidRow(line=line, patron=patron, amount=amount,
                   transaction_id=transaction_id or stable_id(name, line, cells),
                   stable_id=not transaction_id, date=day, fee_id=cell("fee_id"),
                   item_code=cell("item_code"), cells=tuple(cells))
