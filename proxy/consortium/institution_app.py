"""One institution's app as the consortium serves it (docs/consortium.md#routing).

Under path routing the app lives below `/<code>` but is written for `/`: requests reach it with
the prefix taken off, and what it sends back gets the prefix put on: redirects, links in its
HTML pages (the site's `href`, `src` and `action` attributes; the site's scripts resolve their
API calls against the page's own folder), and cookies, whose `Path` is scoped to the prefix so
that two institutions' sessions never meet in one browser. A `__Host-` cookie must have
`Path=/`, so below a prefix it travels as `__Secure-` (still Secure, still host-only as we set
no Domain) and is renamed back on the way in.

Under either routing the pages show the institution's name and colour: a small stylesheet at
`/consortium/institution.css` and the name in the page header (the staff pages' too, so staff
see whose payments they are looking at); its help text under the fees page's lead; and only its
languages in the language switch (the `<html data-languages>` the site's i18n.js reads, and the
switch's links in the page as sent). A kiosk's pages are served by its agent, not from here: the
agent reads the same help text and languages from `/consortium/page.json` (public, as the pages
show them anyway) and puts them in its pages the same way (kiosk/institution_page.py).
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from proxy.consortium.institutions import Institution
from proxy.consortium.logo import LOGO_TYPES
from proxy.consortium.page_text import ALL_LANGUAGES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STYLE_PATH = "/consortium/institution.css"
SCRIPT_PATH = "/consortium/network.js"
LOGO_PATH = "/consortium/logo"
PAGE_PATH = "/consortium/page.json"  # what a kiosk agent needs to show: help text, languages
# An SVG logo opened on its own runs nothing and loads nothing.
LOGO_POLICY = b"default-src 'none'; style-src 'unsafe-inline'; sandbox"
OWN_PATHS = "/consortium/"
FEES_PAGE = b'<section id="fees"'  # the page that lists the patron's fees (site/index.html)
HOST_COOKIE = b"__Host-"
PREFIXED_COOKIE = b"__Secure-"
# Root-relative links in our own pages ("//host" is another site and stays as it is).
_LINK = re.compile(rb'(\s(?:href|src|action)=")/(?!/)')
# The site's name in the header, and on a printed receipt (site/receipt.html).
_SITE_NAME = re.compile(
    rb'<p class="(site-name|print-only site-name-print)"(?: data-i18n="site\.title")?>[^<]*</p>')
_STAFF_BRAND = re.compile(rb'<p class="brand">patronpay staff</p>')  # the staff pages' header
_HEAD_END = re.compile(rb"</head>", re.IGNORECASE)
_TAGLINE = re.compile(rb'<p class="lead" data-i18n="site\.tagline">[^<]*</p>')  # the fees page's
_HTML_LANG = re.compile(rb'<html lang="[^"]*"')
# A language switch's link, as a page is sent (its scripts rebuild the switch the same way).
_SWITCH_LINK = re.compile(rb'\s*<li><a [^>]*\bhreflang="([^"]*)"[^>]*>[^<]*</a></li>')
_PATH_ATTRIBUTE = re.compile(rb"(;\s*path=)(/[^;]*)", re.IGNORECASE)


class InstitutionApp:
    """An institution's patronpay app, served at `prefix` ('' under host routing)."""

    def __init__(self, institution: Institution, app: ASGIApp, prefix: str,
                 network: ASGIApp | None = None) -> None:
        self.institution = institution
        self.app = app
        self.prefix = prefix
        self.network = network  # fees at sister institutions (proxy/consortium/network.py)
        self._prefix_bytes = prefix.encode()
        self._style = _stylesheet(institution)
        self._help = b"".join(_help_paragraph(language, text)
                              for language, text in institution.help_text)
        self._languages = " ".join(institution.languages).encode()
        self._page_json = _page_json(institution)
        self._name = html.escape(institution.name).encode()
        logo = institution.logo
        self._logo = (logo.read_bytes(), LOGO_TYPES[logo.suffix.lower()].encode()) \
            if logo is not None else None
        # The name follows the logo, so the image says nothing more (alt="").
        self._title = (f'<img class="institution-logo" src="{prefix}{LOGO_PATH}" alt=""> '
                       .encode() if logo is not None else b"") + self._name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope = self._inner_scope(scope)
        if scope["path"] == STYLE_PATH and scope["type"] == "http":
            await _send_text(send, 200, self._style, b"text/css; charset=utf-8")
            return
        if scope["path"] == PAGE_PATH and scope["type"] == "http":
            await _send_text(send, 200, self._page_json, b"application/json")
            return
        if scope["path"] == LOGO_PATH and self._logo is not None and scope["type"] == "http":
            await _send_text(send, 200, self._logo[0], self._logo[1],
                             [(b"content-security-policy", LOGO_POLICY)])
            return
        if scope["path"].startswith(OWN_PATHS) and self.network is not None:
            await self.network(scope, receive, self._outer_send(send))
            return
        await self.app(scope, receive, self._outer_send(send))

    def _inner_scope(self, scope: Scope) -> Scope:
        if not self.prefix:
            return scope
        path = scope["path"][len(self.prefix):] or "/"
        headers = [(k, _cookie_names_in(v)) if k == b"cookie" else (k, v)
                   for k, v in scope["headers"]]
        # `raw_path` stays as the client sent it: a kiosk signs the path it requested, prefix
        # and all, so a request signed for one institution never verifies below another.
        return dict(scope, path=path, headers=headers)

    def _outer_send(self, send: Send) -> Send:
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def outer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [self._outer_header(k, v) for k, v in message.get("headers", [])]
                message = dict(message, headers=headers)
                if _is_html(headers):
                    held["start"] = message  # the body is rewritten, so its length changes
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await self._send_page(send, held.pop("start"), b"".join(chunks))
                return
            await send(message)

        return outer

    def _outer_header(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if not self.prefix:
            return name, value
        lowered = name.lower()
        if lowered == b"location" and value.startswith(b"/") and not value.startswith(b"//"):
            return name, self._prefix_bytes + value
        if lowered == b"set-cookie":
            return name, self._scoped_cookie(value)
        return name, value

    def _scoped_cookie(self, value: bytes) -> bytes:
        if value.startswith(HOST_COOKIE):
            value = PREFIXED_COOKIE + value[len(HOST_COOKIE):]
        return _PATH_ATTRIBUTE.sub(
            lambda m: m.group(1) + (self._prefix_bytes + m.group(2)).rstrip(b"/"), value)

    async def _send_page(self, send: Send, start: Message, body: bytes) -> None:
        gzipped = any(k.lower() == b"content-encoding" and v.strip().lower() == b"gzip"
                      for k, v in start["headers"])
        if body:
            # A gzipped page (proxy/web/static.py) is opened, rewritten and closed again.
            page = self._page(gzip.decompress(body) if gzipped else body)
            body = gzip.compress(page, compresslevel=6, mtime=0) if gzipped else page
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        await send(dict(start, headers=headers))
        await send({"type": "http.response.body", "body": body})

    def _page(self, body: bytes) -> bytes:
        if self.prefix:
            body = _LINK.sub(lambda m: m.group(1) + self._prefix_bytes + b"/", body)
        link = f'<link rel="stylesheet" href="{self.prefix}{STYLE_PATH}">\n'.encode()
        if self.network is not None and FEES_PAGE in body:
            link += f'<script src="{self.prefix}{SCRIPT_PATH}" defer></script>\n'.encode()
        body = _HEAD_END.sub(lambda m: link + m.group(0), body, count=1)
        body = self._own_languages(body)
        if self._help:
            body = _TAGLINE.sub(lambda m: m.group(0) + self._help, body, count=1)
        body = _STAFF_BRAND.sub(
            lambda m: b'<p class="brand">patronpay staff: ' + self._name + b"</p>", body)
        return _SITE_NAME.sub(lambda m: b'<p class="' + m.group(1) + b'">' + (
            self._title if m.group(1) == b"site-name" else self._name) + b"</p>", body)


    def _own_languages(self, body: bytes) -> bytes:
        if not self._languages:
            return body
        offered = set(self._languages.split())
        body = _HTML_LANG.sub(
            lambda m: m.group(0) + b' data-languages="' + self._languages + b'"', body, count=1)
        return _SWITCH_LINK.sub(lambda m: m.group(0) if m.group(1) in offered else b"", body)


def _help_paragraph(language: str, text: str) -> bytes:
    lang = f' lang="{html.escape(language)}"' if language != ALL_LANGUAGES else ""
    return f'\n    <p class="institution-help"{lang}>{html.escape(text)}</p>'.encode()


def _page_json(institution: Institution) -> bytes:
    """What a kiosk agent shows of the institution: its languages ([] offers all the site's)
    and its help text, one text for all (language "") or one in each of its languages."""
    return json.dumps({
        "languages": list(institution.languages),
        "help_text": [{"language": language, "text": text}
                      for language, text in institution.help_text],
    }, ensure_ascii=False).encode()


def _cookie_names_in(value: bytes) -> bytes:
    """The browser's `__Secure-` cookies under their names inside the app (`__Host-`)."""
    parts = [p.strip() for p in value.split(b";")]
    return b"; ".join(HOST_COOKIE + p[len(PREFIXED_COOKIE):] if p.startswith(PREFIXED_COOKIE)
                      else p for p in parts)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html")
               for k, v in headers)


def _stylesheet(institution: Institution) -> bytes:
    logo = (b".institution-logo { height: 2rem; width: auto; vertical-align: middle; "
            b"margin-right: 0.5rem; }\n")
    # A help text in each language: only the page's own shows, and the switch changes it.
    help_rules = "".join(
        f'html[lang="{language}"] .institution-help[lang]:not([lang="{language}"]) '
        "{ display: none; }\n"
        for language, _ in institution.help_text if language != ALL_LANGUAGES).encode()
    if not institution.accent:
        return b"/* this institution keeps the site's own colours */\n" + logo + help_rules
    return f":root {{ --accent: {institution.accent}; }}\n".encode() + logo + help_rules


async def _send_text(send: Send, status: int, body: bytes, content_type: bytes,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-cache"),
                            (b"x-content-type-options", b"nosniff"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
