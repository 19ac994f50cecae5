"""The language of the pages the server renders itself (the CashNet hand-off page).

They use the site's own strings, `site/locales/<lang>.json`, so a language is still one file.
The language is the one the patron asked for (`?lang=`), else the one they chose before (the
`patronpay_lang` cookie the site's switch sets), else the browser's (Accept-Language), else
English. No Starlette here: the caller passes those three values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

LANG_COOKIE = "patronpay_lang"
DEFAULT_LANGUAGE = "en"
CURRENCY_SYMBOLS = {"USD": "$"}


@lru_cache(maxsize=16)
def _load(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def available_languages(locales_dir: Path) -> list[str]:
    """Codes of the languages with a strings file, English first."""
    codes = sorted(p.stem for p in locales_dir.glob("*.json") if p.stem.isalpha())
    return sorted(codes, key=lambda code: code != DEFAULT_LANGUAGE)


def accepted_languages(header: str) -> list[str]:
    """Accept-Language as base language codes, most wanted first ("es-MX,es;q=0.9" -> es)."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.split("-")[0].lower()))
    return [code for _, _, code in sorted(ranked)]


def choose_language(available: list[str], asked: str | None, cookie: str | None,
                    accept_language: str) -> str:
    for candidate in (asked, cookie, *accepted_languages(accept_language)):
        if candidate in available:
            return candidate
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Translator:
    """`t("key", name=value)` in one language, falling back to English for a missing key."""

    lang: str
    strings: dict[str, str]
    fallback: dict[str, str]
    languages: list[tuple[str, str]] = field(default_factory=list)  # (code, own name)

    def __call__(self, key: str, **params: object) -> str:
        text = self.strings.get(key, self.fallback.get(key, key))
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    def money(self, amount: Decimal, currency: str) -> str:
        """US conventions ($1,250.00), which en-US and es-US share."""
        number = f"{amount:,.2f}"
        symbol = CURRENCY_SYMBOLS.get(currency)
        return f"{symbol}{number}" if symbol else f"{number} {currency}"


def translator(locales_dir: Path, asked: str | None = None, cookie: str | None = None,
               accept_language: str = "") -> Translator:
    available = available_languages(locales_dir)
    lang = choose_language(available, asked, cookie, accept_language)
    fallback = _load(str(locales_dir / f"{DEFAULT_LANGUAGE}.json"))
    names = [(code, _load(str(locales_dir / f"{code}.json")).get("lang.name", code))
             for code in available]
    return Translator(lang, _load(str(locales_dir / f"{lang}.json")), fallback, names)
