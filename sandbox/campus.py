"""What the campus sign-on stand-ins (sandbox CAS, SSO gateway, Primo page) share: the seeded
campus accounts, URL and form helpers, and their pages (templates, style, security headers).

Campus accounts live in `sandbox/seed/campus_users.json` as a list; apps take them as a dict
keyed by user name: `{"mkowalski": {"password": ..., "display_name": ..., "attributes": {...}}}`.
Attribute values are strings or lists of strings (CAS releases multi-valued attributes).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
MAX_FORM_BYTES = 16 * 1024
ALMA_ID_ATTRIBUTE = "almaId"
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # attribute names become XML element names

# Sandbox pages: no script at all, styles only from our own static route. No form-action:
# browsers apply it to the redirect after a form post, and the CAS and SSO logins redirect to
# another origin (the proxy) on purpose.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

CSS = """\
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f3f4f1; }
.banner { background: #2d4a22; color: #fff; padding: 0.75rem 1.5rem; }
.banner .brand { font-size: 1.4rem; font-weight: 700; margin: 0; }
.banner .notice { margin: 0.25rem 0 0; }
main { max-width: 40rem; margin: 1.5rem auto; background: #fff; padding: 1.5rem; }
footer { text-align: center; font-size: 0.9rem; padding: 1rem; }
label { display: block; font-weight: 600; margin-top: 0.75rem; }
input, button { font-size: 1rem; padding: 0.4rem; }
button { background: #2d4a22; color: #fff; border: 0; padding: 0.5rem 1rem; margin-top: 1rem;
         cursor: pointer; }
a { color: #1d4e89; }
a:focus, button:focus, input:focus { outline: 3px solid #ffbf47; }
.alert { border-left: 6px solid #b00020; background: #fdecee; padding: 0.5rem 1rem; }
.note { border-left: 6px solid #1d4e89; background: #eef3fa; padding: 0.5rem 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #c8cdd2; padding: 0.4rem; text-align: left; }
td.num { text-align: right; }
code { overflow-wrap: anywhere; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
                  clip: rect(0 0 0 0); white-space: nowrap; }
"""


@dataclass(frozen=True)
class CampusAccount:
    user: str
    password: str
    display_name: str
    attributes: dict[str, tuple[str, ...]]

    @property
    def alma_id(self) -> str:
        """The patron's Alma id: the `almaId` attribute, else the campus user name."""
        values = self.attributes.get(ALMA_ID_ATTRIBUTE)
        return values[0] if values else self.user


def load_campus_users() -> dict[str, dict[str, Any]]:
    """The packaged campus accounts, keyed by user name."""
    text = resources.files("sandbox").joinpath("seed/campus_users.json").read_text("utf-8")
    return {entry["user"]: {k: v for k, v in entry.items() if k != "user"}
            for entry in json.loads(text)["users"]}


def parse_accounts(users: dict[str, dict[str, Any]]) -> dict[str, CampusAccount]:
    """Check and freeze a users dict; ValueError names the first bad entry."""
    accounts = {}
    for name, data in users.items():
        password = data.get("password")
        if not name or not isinstance(password, str) or not password:
            raise ValueError(f"campus account {name!r} needs a user name and a password")
        attributes: dict[str, tuple[str, ...]] = {}
        for key, value in dict(data.get("attributes", {})).items():
            if not _XML_NAME.fullmatch(key):
                raise ValueError(f"campus account {name!r}: bad attribute name {key!r}")
            values = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(v, str) for v in values):
                raise ValueError(f"campus account {name!r}: attribute {key!r} must be text")
            attributes[key] = tuple(values)
        accounts[name] = CampusAccount(name, password, str(data.get("display_name", name)),
                                       attributes)
    return accounts


def check_credentials(accounts: dict[str, CampusAccount], user: str,
                      password: str) -> CampusAccount | None:
    """The account when user name and password match; compared in constant time."""
    account = accounts.get(user)
    expected = account.password if account else secrets.token_hex(16)
    matches = secrets.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))
    return account if account is not None and matches else None


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host: the only kind we redirect to."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(
        ord(c) < 32 or c == " " for c in url)


def with_query(url: str, **params: str) -> str:
    """`url` with `params` appended to its query (kept if it has one), before any fragment."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form body (first value of each field); None if too big or not a form.

    Parsed here so the sandbox needs no python-multipart.
    """
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != \
            "application/x-www-form-urlencoded":
        return None
    body, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        body.append(chunk)
    form: dict[str, str] = {}
    for key, value in parse_qsl(b"".join(body).decode("utf-8", "replace"),
                                keep_blank_values=True):
        form.setdefault(key, value)
    return form


def root_path(request: Request) -> str:
    """Where this app is mounted (e.g. `/cas`), for links in its pages."""
    return request.scope.get("root_path", "").rstrip("/")


def page(request: Request, name: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """Render one of our templates with the security headers every sandbox page carries."""
    response = TEMPLATES.TemplateResponse(
        request, name, {"root": root_path(request), **context}, status_code=status)
    response.headers.update({**PAGE_HEADERS, **(headers or {})})
    return response


async def stylesheet(request: Request) -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})


STYLESHEET_ROUTE = Route("/static/campus.css", stylesheet, methods=["GET"])
