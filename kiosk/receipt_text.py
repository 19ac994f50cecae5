"""What a printed kiosk receipt says, line by line (docs/kiosk.md#receipt-printer).

Pure: the proxy's answer for the payment goes in, `SlipLine`s come out, in the patron's
language from the site's own strings files (`slip.*` keys of site/locales/<lang>.json). A
receipt names the library, the kiosk, the date and time, the amount, CashNet's transaction,
the payment reference and each fee paid, and ends with a line for questions. It never holds
card data (the kiosk never has any), the patron's id, or item titles unless the library asks
for titles. Everything from the proxy is untrusted: control characters are dropped, so no text
can turn into a printer command.
"""

from __future__ import annotations

import json
import textwrap
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

WIDTH = 32  # characters per line in font A on a 58 mm roll; an 80 mm roll has room to spare
LANGUAGES = ("en", "es")
PRINTABLE_STATES = ("paid", "posted", "attention", "resolved")  # money taken
CURRENCY_SYMBOLS = {"USD": "$"}


@dataclass(frozen=True)
class SlipLine:
    text: str
    align: str = "left"
    bold: bool = False
    big: bool = False  # double width and height


@dataclass(frozen=True)
class SlipContext:
    """What the kiosk adds to the proxy's payment."""

    kiosk_id: str
    library_name: str = ""
    contact: str = ""  # how to ask questions; empty: the library's service desk
    titles: Mapping[str, str] | None = None  # fee id -> item title, only when titles print


@lru_cache(maxsize=8)
def _strings_file(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def slip_strings(site_dir: Path, language: str) -> dict[str, str]:
    """The language's strings over English's (a missing key falls back to English)."""
    english = _strings_file(str(site_dir / "locales" / "en.json"))
    if language == "en" or language not in LANGUAGES:
        return dict(english)
    return english | _strings_file(str(site_dir / "locales" / f"{language}.json"))


def receipt_lines(payment: Mapping, context: SlipContext, strings: Mapping[str, str],
                  language: str = "en", tz: tzinfo | None = None) -> list[SlipLine]:
    """The receipt for a payment the proxy reports paid (`PRINTABLE_STATES`); ValueError for
    anything else or a malformed answer. `tz`: the kiosk's own time zone when None."""
    state = payment.get("state")
    if state not in PRINTABLE_STATES:
        raise ValueError("not a paid payment")
    currency = _clean(payment.get("currency")) or "USD"

    def money(value: object) -> str:
        return _money(value, currency)

    t = strings.get
    rule = SlipLine("-" * WIDTH)
    lines = [
        *[SlipLine(part, "center", bold=True) for part in
          _wrap(_clean(context.library_name) or t("slip.library", "Library"))],
        SlipLine(t("slip.heading", "Payment receipt"), "center"),
        rule,
        *_pair(t("slip.kiosk", "Kiosk"), context.kiosk_id),
        *_pair(t("slip.date", "Date"), _when(payment.get("paid") or payment.get("created"), tz)),
        rule,
        *_pair(t("slip.amount", "Amount"), money(payment.get("amount")), bold=True),
        *_pair(t("slip.cashnet_tx", "CashNet transaction"), _clean(payment.get("cashnet_tx"))
               or "-"),
        *_pair(t("slip.reference", "Payment reference"), _clean(payment.get("id"))),
        rule,
        SlipLine(t("slip.fees", "Fees paid"), bold=True),
    ]
    for allocation in _allocations(payment):
        label = _fee_label(allocation, strings, language)
        lines += _pair(label, money(allocation.get("amount")))
        title = (context.titles or {}).get(str(allocation.get("fee_id")))
        if title:
            lines += [SlipLine(part) for part in _wrap(_clean(title), indent="  ")]
    lines.append(rule)
    lines += [SlipLine(part) for part in _wrap(t(f"slip.state.{state}", ""))]
    contact = _clean(context.contact)
    question = t("slip.questions_contact", "Questions? {contact}").replace(
        "{contact}", contact) if contact else t("slip.questions", "Questions? Ask at the desk.")
    lines += [SlipLine(part) for part in _wrap(question)]
    return lines


def slip_text(lines: list[SlipLine]) -> str:
    """The receipt as plain text, one line each (for logs of tests and the demo)."""
    return "\n".join(line.text for line in lines)


# -- pieces -------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    """Printable text only: control and format characters (ESC, GS, bidi overrides...)
    dropped, runs of white space made one space."""
    if value is None:
        return ""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(value))
    return " ".join(text.split())


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=True) or ([] if not text else [text])


def _pair(label: str, value: str, bold: bool = False) -> list[SlipLine]:
    """`label` left and `value` right on one line, or each on its own line when too long."""
    label, value = _clean(label), _clean(value)
    if len(label) + 1 + len(value) <= WIDTH:
        return [SlipLine(label + " " * (WIDTH - len(label) - len(value)) + value, bold=bold)]
    return [*[SlipLine(part, bold=bold) for part in _wrap(label)],
            *[SlipLine(part.rjust(WIDTH), bold=bold) for part in _wrap(value)]]


def _money(value: object, currency: str) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite():
        raise ValueError("not an amount")
    number = f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def _when(value: object, tz: tzinfo | None) -> str:
    """An ISO time from the proxy as `2025-03-14 10:40` in the kiosk's time zone."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not a time") from None
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _allocations(payment: Mapping) -> list[Mapping]:
    allocations = payment.get("allocations")
    if not isinstance(allocations, list):
        raise ValueError("no allocations")
    return [a for a in allocations if isinstance(a, Mapping)]


def _fee_label(allocation: Mapping, strings: Mapping[str, str], language: str) -> str:
    """As the pages show it: Alma's own label in English, our translation of the standard
    fee types in other languages, else the type's code."""
    code = _clean(allocation.get("fee_type"))
    label = _clean(allocation.get("fee_label")) or code
    if language != "en":
        return strings.get(f"feetype.{code}", label)
    return label
