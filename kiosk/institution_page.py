"""What a consortium's institution puts on its kiosk's pages (docs/kiosk.md#a-consortiums-kiosk):
its help text and the languages it offers, as its web pages show them
(docs/consortium.md#what-the-pages-show).

The agent reads them from its institution's `/consortium/page.json` (`PATRONPAY_KIOSK_PROXY_URL`
is the institution's own URL), keeps them, reads them again now and then, and puts them into the
kiosk pages as it sends them: `<html data-languages>`, which the site's i18n.js reads to build
the language switch (hidden with one language), and the help text under the idle and fees
screens' leads, as text. Outside a consortium the proxy has no such page (404): nothing changes.

The proxy checked these at its start-up, but to the agent they are still another server's
words: languages outside the site's are dropped, a text is cut to its length limit, control
characters are removed and everything is HTML-escaped.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.proxy_client import ProxyClient, ProxyUnavailable

log = logging.getLogger("patronpay.kiosk.institution")

HELP_MAX_CHARS = 500  # the proxy's own limit (a few sentences); a longer one is cut
MAX_HELP_ENTRIES = 8
REFRESH_SECONDS = 600.0  # a changed configuration shows within ten minutes
RETRY_SECONDS = 30.0  # while the proxy cannot say
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_HTML_LANG = re.compile(rb'<html lang="[^"]*"')
# Where the help text goes: after the idle screen's lead and the fees screen's (site/kiosk/).
_LEADS = re.compile(rb'<p class="lead" data-i18n="kiosk\.idle\.how">[^<]*</p>'
                    rb'|<p id="fees-intro" class="lead"></p>')


@dataclass(frozen=True)
class PageText:
    languages: tuple[str, ...] = ()  # () offers every one of the site's
    help_text: tuple[tuple[str, str], ...] = ()  # (language, or "" for all; text)


NOTHING = PageText()


def site_languages(site_dir: Path) -> tuple[str, ...]:
    """The site's languages: one strings file each in site/locales/."""
    return tuple(sorted(p.stem for p in (site_dir / "locales").glob("*.json")))


def parse_page(data: Any, languages: Sequence[str]) -> PageText:
    """The proxy's answer, as far as it makes sense: unknown languages and malformed entries
    are left out rather than refused, so a newer proxy's extras cannot blank a kiosk."""
    if not isinstance(data, dict):
        return NOTHING
    offered: list[str] = []
    asked = data.get("languages")
    for code in asked if isinstance(asked, list) else []:
        if isinstance(code, str) and code in languages and code not in offered:
            offered.append(code)
    shown = offered or list(languages)
    texts: list[tuple[str, str]] = []
    entries = data.get("help_text")
    for entry in (entries if isinstance(entries, list) else [])[:MAX_HELP_ENTRIES]:
        if not isinstance(entry, dict):
            continue
        language, text = entry.get("language"), entry.get("text")
        if not isinstance(language, str) or not isinstance(text, str):
            continue
        if language and language not in shown:
            continue
        text = " ".join(_CONTROL.sub(" ", text).split())[:HELP_MAX_CHARS].strip()
        if text and language not in (have for have, _ in texts):
            texts.append((language, text))
    return PageText(tuple(offered), tuple(texts))


def rewrite(body: bytes, page: PageText) -> bytes:
    """A kiosk page as sent: its institution's languages and help text put in."""
    if page.languages:
        offered = html.escape(" ".join(page.languages)).encode()
        body = _HTML_LANG.sub(lambda m: m.group(0) + b' data-languages="' + offered + b'"',
                              body, count=1)
    if page.help_text:
        paragraphs = b"".join(_paragraph(language, text) for language, text in page.help_text)
        body = _LEADS.sub(lambda m: m.group(0) + paragraphs, body)
    return body


def _paragraph(language: str, text: str) -> bytes:
    # The page shows only the paragraph of its current language (kiosk.css), or the one for all.
    lang = f' lang="{html.escape(language)}"' if language else ""
    return f'\n      <p class="institution-help"{lang}>{html.escape(text)}</p>'.encode()


class InstitutionPage:
    """The institution's page text as last read from the proxy."""

    def __init__(self, client: ProxyClient, languages: Sequence[str]) -> None:
        self.client = client
        self.languages = tuple(languages)
        self.current = NOTHING
        self.answered = False  # the proxy has said at least once (a 404 counts)

    async def refresh(self) -> bool:
        """Read it again; True when the proxy said (a 404 too: not a consortium)."""
        try:
            answer = await self.client.institution_page()
        except ProxyUnavailable:
            return False
        if answer.status == 404:
            self.current, self.answered = NOTHING, True
            return True
        if not answer.ok:
            return False
        page = parse_page(answer.data, self.languages)
        if page != self.current:
            log.info("institution page text read", extra={
                "event": "institution_page", "languages": list(page.languages),
                "help_texts": len(page.help_text)})
        self.current, self.answered = page, True
        return True

    async def run(self) -> None:
        """For the agent's life: read at start, then every REFRESH_SECONDS (RETRY_SECONDS
        while the proxy cannot answer)."""
        while True:
            said = await self.refresh()
            await asyncio.sleep(REFRESH_SECONDS if said else RETRY_SECONDS)
