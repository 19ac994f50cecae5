"""Money: Decimal amounts with exactly two places. Never a float, anywhere.

Three doors lead in (Alma's JSON numbers, a patron's typed amount, CashNet's echoed form
fields) and one leads out (a two-decimal string for JSON, CashNet and Alma).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# Digits, an optional point and one or two decimals: no sign, no exponent, no separators.
_TYPED_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


class AmountError(ValueError):
    """An amount that is not a valid two-decimal sum of money."""


def cents(value: Decimal) -> Decimal:
    """The same value with exponent -2 (2 -> 2.00); refuses anything that would need rounding."""
    exact = value.quantize(CENT)
    if value != exact:
        raise AmountError(f"more than two decimal places: {value}")
    return exact


def from_alma(value: object) -> Decimal:
    """An Alma JSON number (parsed as int or Decimal) as money. Floats and bools are refused:
    they mean the JSON was parsed without `parse_float=Decimal`, which would lose cents."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise AmountError(f"not an exact number: {value!r}")
    return cents(Decimal(value))


def parse_typed(text: object) -> Decimal:
    """An amount typed by a patron or sent in our JSON (`"12.50"`, `"12"`): positive or zero,
    at most two decimals, no signs, separators or exponents."""
    if not isinstance(text, str) or not _TYPED_AMOUNT.fullmatch(text.strip()):
        raise AmountError("an amount is digits with at most two decimals, like 12.50")
    return cents(Decimal(text.strip()))


# What CashNet has been seen to echo for 1080.00: the plain number, or it formatted for a
# person (`1,080.00`, `$1,080.00`). Only well-placed thousands separators are read.
_ECHOED_AMOUNT = re.compile(r"-?\$?([0-9]+|[0-9]{1,3}(,[0-9]{3})+)(\.[0-9]+)?")


def parse_echoed(text: str) -> Decimal | None:
    """An amount echoed back by CashNet (`1080.00`, `1,080.00`, `$10.00`), or None when it is
    not a decimal number."""
    text = text.strip()
    if not _ECHOED_AMOUNT.fullmatch(text):
        return None
    text = text.replace(",", "").replace("$", "")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already rules this out
        return None


def format_amount(value: Decimal) -> str:
    """`Decimal("60")` -> `"60.00"`: the only way amounts leave patronpay."""
    return format(cents(value), "f")


def to_cents(value: Decimal) -> int:
    """Decimal money as integer cents, how the ledger stores it."""
    return int(cents(value) * 100)


def from_cents(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(CENT)
