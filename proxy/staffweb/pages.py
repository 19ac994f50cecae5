"""Rendering the staff pages: Jinja2 templates from proxy/staffweb/templates/, autoescaped.

Almost everything on these pages came from elsewhere: names and fee labels from Alma, fields
of CashNet's notifications, notes typed by staff, user ids from the sign-on. Autoescaping
makes markup text; on top of that every value printed goes through `printable`
(proxy/terminal.py, as in the staff commands), so a control character, a newline or a
right-to-left override shows as `\\x1b`, `\\n`, `\\u202e` instead of acting on the page or hiding
what follows it (docs/operations.md#staff-pages).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from starlette.responses import HTMLResponse

from proxy.terminal import printable

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
# Staff pages carry patrons' names and payments: never kept by a browser or a cache. Their
# forms post to this site: under the site-wide `no-referrer` a browser would send such a post
# with `Origin: null`, which the origin check refuses; `same-origin` still tells other sites
# nothing.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}


def _shown(value: Any) -> Any:
    """Every `{{ value }}`: text with its invisible characters made visible (markup from our
    own macros passes untouched; autoescaping follows)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return printable(value)


def _utc(text: str | None) -> str:
    """An ISO time from proxy/staff.py (`...T10:40:05.123Z`) as `2025-03-14 10:40:05`."""
    return text.replace("T", " ").replace("Z", "")[:19] if text else "-"


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                   undefined=StrictUndefined, finalize=_shown, trim_blocks=True,
                   lstrip_blocks=True)
_env.filters["utc"] = _utc


def render(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context), status_code=status,
                        headers=NO_STORE)


def plain(status: int, heading: str, text: str, *, link: tuple[str, str] | None = None
          ) -> HTMLResponse:
    """A page with a heading and a sentence (403, 404, a refused sign-in), without the staff
    navigation: whoever sees it may not be staff."""
    return render("message.html", {"heading": heading, "text": text, "link": link}, status)
