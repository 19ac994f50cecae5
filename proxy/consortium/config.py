"""A consortium's institutions (docs/consortium.md#configuration): the `[institutions.<code>]`
tables of the TOML file named by PATRONPAY_CONFIG, each read into a whole `Settings` of its own.
The environment and the settings outside the tables are every institution's defaults; a table's
own values win. This module reads the tables and the `[consortium]` table in order; what a
table may hold is proxy/consortium/table.py, what it gets of its own when it does not say is
derived.py, what two institutions may not share is clashes.py, and what its pages show is
colours.py, logo.py and page_text.py. Every mistake stops start-up with one line naming the
table and the key."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from proxy.config import PREFIX, ConfigError, Settings, _read_toml, load_settings
from proxy.consortium.clashes import refuse_clashes, refuse_shared_only
from proxy.consortium.colours import parse_accent
from proxy.consortium.derived import derived_values
from proxy.consortium.institutions import Consortium, Institution
from proxy.consortium.logo import read_logo
from proxy.consortium.page_text import parse_help_text, parse_languages
from proxy.consortium.table import OWN_KEYS, Table, check_keys, refuse_unknown_keys
from proxy.i18n import available_languages

ROUTINGS = ("path", "host")
CODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# Paths the consortium itself answers at its root (proxy/consortium/app.py).
RESERVED_CODES = {"cashnet", "healthz", "readyz", "consortium", "api", "auth", "staff", "metrics"}
CONSORTIUM_KEYS = ("name", "routing", "pay_network_fees")
MAX_NAME = 100
# Controls, line and paragraph separators, surrogates and private use; and the bidi
# embeddings, overrides and isolates, which turn the text around them (other format
# characters stay: Persian writes its names with zero-width non-joiners).
UNPRINTABLE = {"Cc", "Cs", "Co", "Zl", "Zp"}
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def load_consortium(environ: Mapping[str, str] | None = None) -> Consortium | None:
    """The consortium the TOML file describes, or None when it has no `[institutions.*]`
    tables (one institution, configured as always)."""
    environ = os.environ if environ is None else environ
    file_values = _read_toml(environ.get(PREFIX + "CONFIG", ""))
    tables = file_values.get("institutions")
    if not tables:
        return None
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f"{PREFIX}CONFIG institutions must be tables: "
                          "[institutions.<code>] with the institution's settings")
    common = _consortium_table(file_values.get("consortium", {}))
    refuse_shared_only(environ, file_values)
    institutions = tuple(_institution(code, values, common, environ, file_values)
                         for code, values in tables.items())
    consortium = Consortium(name=common["name"], routing=common["routing"],
                            institutions=institutions)
    refuse_clashes(consortium)
    return consortium


def named_institution(environ: Mapping[str, str]) -> Institution:
    """The institution a command is for: PATRONPAY_INSTITUTION (`--institution`), needed only
    when there are several."""
    consortium = load_consortium(environ)
    assert consortium is not None  # called only when the file has tables
    code = environ.get(PREFIX + "INSTITUTION", "").strip()
    if not code:
        if len(consortium.institutions) == 1:
            return consortium.institutions[0]
        raise ConfigError(f"{PREFIX}CONFIG has several institutions "
                          f"({', '.join(consortium.codes)}): name one with --institution "
                          f"(or {PREFIX}INSTITUTION)")
    institution = consortium.institution(code)
    if institution is None:
        raise ConfigError(f"no institution {code!r} in {PREFIX}CONFIG: choose from "
                          f"{', '.join(consortium.codes)}")
    return institution


def _consortium_table(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ConfigError(f"{PREFIX}CONFIG consortium must be a table: [consortium]")
    refuse_unknown_keys("[consortium]", values, CONSORTIUM_KEYS)
    routing = str(values.get("routing", "path")).strip().lower()
    if routing not in ROUTINGS:
        raise ConfigError(f"{PREFIX}CONFIG [consortium] routing is not valid: choose path or "
                          f"host (got {values.get('routing')!r})")
    return {"name": _name("[consortium] name", values.get("name", "Library fines and fees")),
            "routing": routing,
            "pay_network_fees": _flag("[consortium] pay_network_fees",
                                      values.get("pay_network_fees", False))}


def _institution(code: str, values: dict[str, Any], common: dict[str, Any],
                 environ: Mapping[str, str], file_values: dict[str, Any]) -> Institution:
    title = f"[institutions.{code}]"
    if not CODE.fullmatch(code) or code in RESERVED_CODES:
        raise ConfigError(f"{PREFIX}CONFIG {title} is not a valid institution code: lower-case "
                          "letters, digits and hyphens, at most 32, and not one of "
                          f"{', '.join(sorted(RESERVED_CODES))} (it becomes the path /{code}/)")
    check_keys(code, values)
    name = _name(f"{title} name", values.get("name", code))
    host = _host(title, values) if common["routing"] == "host" else ""
    accent = _parsed(title, "accent", parse_accent, values.get("accent", ""))
    logo = read_logo(title, values.get("logo", ""))
    own = {k: v for k, v in values.items() if k not in OWN_KEYS}
    settings = _settings(title, environ, Table(
        code, own, derived_values(code, name, host, own, environ, file_values)))
    site_languages = available_languages(settings.site_dir / "locales")
    languages = _parsed(title, "languages", parse_languages, values.get("languages"),
                        site_languages)
    help_text = _parsed(title, "help_text", parse_help_text, values.get("help_text"),
                        languages or site_languages)
    return Institution(code=code, name=name, settings=settings, host=host, accent=accent,
                       logo=logo, help_text=help_text, languages=languages,
                       pay_network_fees=_flag(f"{title} pay_network_fees", values.get(
                           "pay_network_fees", common["pay_network_fees"])))


def _host(title: str, values: dict[str, Any]) -> str:
    host = str(values.get("host", "")).strip().lower()
    if not HOST.fullmatch(host):
        raise ConfigError(f"{PREFIX}CONFIG {title} host is "
                          f"{'not a host name' if host else 'required'}: with routing = "
                          '"host" each institution needs its own, e.g. pay.campus-a.edu')
    return host


def _settings(title: str, environ: Mapping[str, str], table: Table) -> Settings:
    try:
        return load_settings(environ, table)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if title in message else f"{title}: {message}") from None


def _parsed(title: str, key: str, parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(*args)`, a ValueError being one line naming the table and the key."""
    try:
        return parse(*args)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}CONFIG {title} {key} is not valid: {exc}") from None


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{PREFIX}CONFIG {where} must be non-empty text")
    return value.strip()


def _name(where: str, value: Any) -> str:
    """A name for page headers, receipts and staff terminals: one short line of text, with
    nothing a terminal or a page would take for a command (controls, bidi overrides)."""
    name = _text(where, value)
    if len(name) > MAX_NAME:
        raise ConfigError(f"{PREFIX}CONFIG {where} is too long: at most {MAX_NAME} characters")
    if any(unicodedata.category(c) in UNPRINTABLE or c in BIDI_CONTROLS for c in name):
        raise ConfigError(f"{PREFIX}CONFIG {where} must be one line of printable text (it "
                          "holds a control character)")
    return name


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{PREFIX}CONFIG {where} must be true or false (got {value!r})")
    return value
