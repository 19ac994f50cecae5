"""Text for a cell of a CSV file that people open in a spreadsheet.

A spreadsheet takes a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return for
a formula (CSV injection: a value of `=HYPERLINK(...)` from Alma, CashNet or a bursar's file
would run as one on the reader's screen). Such a cell gets a leading apostrophe, which
spreadsheets show as text. Used by the staff exports and the bursar import's rejects file.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """`value` (None: empty), safe in a spreadsheet."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
