"""What an institution's pages offer besides its name and colours
(docs/consortium.md#what-the-pages-show): which of the site's languages its language switch
lists, and a short help text under the fees page's lead, one for all its languages or one in
each. Both come from the configuration and are checked at start-up; the text is shown as text,
never markup."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

HELP_MAX_CHARS = 500
_SPACES = re.compile(r"\s+")
ALL_LANGUAGES = ""  # the key of a help text shown whatever the page's language


def parse_languages(value: Any, site_languages: Sequence[str]) -> tuple[str, ...]:
    """The institution's languages, first the one its pages start in; () offers every one of
    the site's."""
    if value in (None, ""):
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    codes: list[str] = []
    for item in items:
        code = str(item).strip().lower()
        if code not in site_languages:
            raise ValueError(f"{code!r} is not one of the site's languages "
                             f"({', '.join(site_languages)})")
        if code in codes:
            raise ValueError(f"{code} is listed twice")
        codes.append(code)
    if not codes:
        raise ValueError("name at least one language")
    return tuple(codes)


def parse_help_text(value: Any, languages: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(language, text) pairs: one text for all (language ''), or a table with a text for each
    of `languages`. Whitespace runs become one space: it is one short paragraph."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return ((ALL_LANGUAGES, _paragraph(value, "")),)
    if not isinstance(value, dict):
        raise ValueError("expected text, or a table of texts by language (en = \"...\")")
    for code in value:
        if code not in languages:
            raise ValueError(f"{code!r} is not one of its languages ({', '.join(languages)})")
    missing = [code for code in languages if code not in value]
    if missing:
        raise ValueError(f"no text for {', '.join(missing)}: give one in each of its "
                         "languages, or one text for all")
    return tuple((code, _paragraph(value[code], f" {code}")) for code in languages)


def _paragraph(value: Any, which: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"the text{which} must be non-empty text")
    text = _SPACES.sub(" ", value).strip()
    if len(text) > HELP_MAX_CHARS:
        raise ValueError(f"the text{which} is {len(text)} characters; at most "
                         f"{HELP_MAX_CHARS} (a few sentences)")
    return text
