"""JSON writer for the Alma emulator: money goes from Decimal straight to a bare JSON number.

The standard `json` module can only write Decimal by going through float (or as a string).
Recent Alma answers write every amount with a fraction (`150.0`, `10.0`, `4.75`: style `float`,
the default); older ones wrote integral amounts bare (`60`) beside fractional ones (`4.75`) in
the same response (style `mixed`) (docs/alma.md#money, docs/sandbox.md#seed-and-rendering). This
small writer walks the document itself so no float is ever made.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

NumberStyle = Literal["mixed", "float"]
NUMBER_STYLES: tuple[str, ...] = ("mixed", "float")


def format_decimal(value: Decimal, style: str = "float") -> str:
    """`mixed`: 60 / 4.5 / 4.75; `float`: 60.0 / 4.5 / 4.75 (trailing zeros trimmed in both)."""
    if not value.is_finite():
        raise ValueError(f"cannot write {value!r} as a JSON number")
    if value == value.to_integral_value():
        text = format(value.quantize(Decimal(1)), "f")
        if text == "-0":
            text = "0"
        return text + ".0" if style == "float" else text
    return format(value.normalize(), "f")


def dumps(document: Any, number_style: str = "float") -> str:
    """Compact JSON text; Decimal values become numbers in `number_style`; floats are refused."""
    out: list[str] = []
    _write(document, number_style, out)
    return "".join(out)


def _write(value: Any, style: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        out.append(format_decimal(value, style))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _write(item, style, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, style, out)
        out.append("]")
    else:
        # float lands here on purpose: money must never pass through it.
        raise TypeError(f"cannot write {type(value).__name__} to Alma JSON")
