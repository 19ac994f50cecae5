"""The names the bursar files and the Analytics report are described by, and the parsers of
the settings that map them (used by proxy/config.py, checked at start-up).

Three maps, each `field=Heading` pairs separated by commas:

* report columns: our field -> the column heading in the Analytics report;
* export columns: the fields of the outgoing file, in order, each with the header to print;
* import columns: our field -> the header of that column in the bursar's payments file.
"""

from __future__ import annotations

from typing import Any

# The Analytics report: our field -> its default column heading ("Fines and Fees" subject area).
REPORT_DEFAULTS = {
    "fee_id": "Fine Fee Id",
    "primary_id": "Primary Identifier",
    "campus_id": "Primary Identifier",
    "first_name": "First Name",
    "last_name": "Last Name",
    "fee_type": "Fine Fee Type",
    "amount": "Remaining Amount",
    "status": "Fine Fee Status",
    "created": "Fine Fee Creation Date",
    "owner": "Owner",
    "title": "Title",
}
REPORT_REQUIRED = ("fee_id", "primary_id", "campus_id", "amount")

# The outgoing file: every field it can carry.
EXPORT_FIELDS = ("campus_id", "primary_id", "name", "amount", "item_code", "description",
                 "date", "term", "fee_id", "fee_type", "fees")
EXPORT_DEFAULT = "campus_id,name,amount,item_code,description,date,term"

# The bursar's payments file: our field -> its header.
IMPORT_FIELDS = ("patron_id", "amount", "transaction_id", "date", "fee_id", "item_code")
IMPORT_REQUIRED = ("patron_id", "amount")
IMPORT_DEFAULT_HEADER = ("patron_id", "amount", "transaction_id", "date")


def _pairs(value: Any) -> list[tuple[str, str]]:
    """`a=B,c,d=E` (or a TOML table / list) as [(a, B), (c, c), (d, E)], in order."""
    if isinstance(value, dict):
        return [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    items = value if isinstance(value, list) else str(value).split(",")
    pairs = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        name, _, heading = item.partition("=")
        pairs.append((name.strip(), heading.strip() or name.strip()))
    return pairs


def _checked(pairs: list[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    names = [name for name, _ in pairs]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; fields are {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ValueError("a field is named twice")
    if any(not heading for _, heading in pairs):
        raise ValueError("a heading is empty")
    return dict(pairs)


def parse_report_columns(value: Any) -> dict[str, str]:
    """Overrides of `REPORT_DEFAULTS` (only the fields named change)."""
    return _checked(_pairs(value), tuple(REPORT_DEFAULTS))


def parse_export_columns(value: Any) -> dict[str, str]:
    columns = _checked(_pairs(value), EXPORT_FIELDS)
    if "campus_id" not in columns or "amount" not in columns:
        raise ValueError("the file needs at least campus_id and amount")
    return columns


def parse_import_columns(value: Any) -> dict[str, str]:
    """Overrides of the payments file's headers (a field not named keeps its own name)."""
    return _checked(_pairs(value), IMPORT_FIELDS)


def parse_export_rows(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("patron", "fee"):
        raise ValueError("choose patron (one row per patron) or fee (one row per fee)")
    return text


def parse_page_size(value: Any) -> int:
    number = int(str(value).strip())
    if not 25 <= number <= 1000 or number % 25:
        raise ValueError("must be a multiple of 25 from 25 to 1000 (Analytics pages by 25)")
    return number


def report_headings(overrides: dict[str, str]) -> dict[str, str]:
    return REPORT_DEFAULTS | overrides


def import_headers(overrides: dict[str, str]) -> dict[str, str]:
    """Every import field -> the header that carries it."""
    return {name: overrides.get(name, name) for name in IMPORT_FIELDS}
