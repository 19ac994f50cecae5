"""Money in and out: exact cents, never floats."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.money import (
    AmountError,
    format_amount,
    from_alma,
    from_cents,
    parse_echoed,
    parse_typed,
    to_cents,
)


@pytest.mark.parametrize("value, expected", [
    (60, "60.00"), (Decimal("4.75"), "4.75"), (Decimal("4.5"), "4.50"), (0, "0.00"),
    (Decimal("-5.00"), "-5.00"), (Decimal("1250.0"), "1250.00"),
])
def test_alma_numbers_become_exact_cents(value, expected):
    assert format_amount(from_alma(value)) == expected


@pytest.mark.parametrize("value", [4.75, True, "4.75", None, Decimal("4.755")])
def test_alma_floats_bools_text_and_fractions_of_cents_are_refused(value):
    with pytest.raises(AmountError):
        from_alma(value)


@pytest.mark.parametrize("text, expected", [
    ("12.50", "12.50"), ("12", "12.00"), ("0.5", "0.50"), (" 7.25 ", "7.25"), ("1080.00", "1080.00"),
])
def test_typed_amounts(text, expected):
    assert format_amount(parse_typed(text)) == expected


@pytest.mark.parametrize("text", ["-1.00", "1.005", "1,000.00", "$5", "1e3", "", "abc", "NaN",
                                  "Infinity", "0x10", 12.5, None, "1.2.3", "１２"])
def test_typed_amounts_refuse_anything_but_plain_decimals(text):
    with pytest.raises(AmountError):
        parse_typed(text)


def test_format_never_uses_exponent_or_separators():
    assert format_amount(Decimal("6E+1")) == "60.00"
    assert format_amount(Decimal("1234567.8")) == "1234567.80"


@pytest.mark.parametrize("text, expected", [("12.50", Decimal("12.50")), ("12.5", Decimal("12.5")),
                                            ("1,080.00", Decimal("1080.00")),
                                            ("$10.00", Decimal("10.00")), ("$1", Decimal("1")),
                                            ("$1,080.00", Decimal("1080.00")), ("1,08.00", None),
                                            (",100.00", None), ("1080,00", None), ("", None)])
def test_echoed_amounts(text, expected):
    assert parse_echoed(text) == expected


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_cents_round_trip(value):
    assert to_cents(from_cents(value)) == value
    assert format_amount(from_cents(value)) == f"{'-' if value < 0 else ''}{abs(value) // 100}.{abs(value) % 100:02d}"
