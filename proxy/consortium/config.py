"""A consortium's institutions (docs/consortium.md#configuration): the `[institutions.<code>]`
tables of the TOML file named by PATRONPAY_CONFIG, each read into a whole `Settings` of its own.
The environment and the settings outside the tables are every institution's defaults; a table's
own values win. A few values are derived per institution when its table does not set them (the
ledger file, the public URL, the signing keys, the library's name), and a few must differ
between institutions (notification tokens, ledgers, Alma keys, hosts). Every mistake stops
start-up with one line naming the table and the key."""

from __future__ import annotations

import difflib
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.config import (
    PREFIX,
    ConfigError,
    Settings,
    _raw_value,
    _read_toml,
    env_name,
    load_settings,
    setting_fields,
)
from proxy.consortium.colours import parse_accent
from proxy.consortium.page_text import parse_help_text, parse_languages
from proxy.i18n import available_languages

ROUTINGS = ("path", "host")
POSTGRESQL = ("postgresql://", "postgres://")
CODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# Paths the consortium itself answers at its root (proxy/consortium/app.py).
RESERVED_CODES = {"cashnet", "healthz", "readyz", "consortium", "api", "auth", "staff", "metrics"}
OWN_KEYS = ("name", "host", "accent", "logo", "help_text", "languages", "pay_network_fees")
LOGO_TYPES = {".png": "image/png", ".webp": "image/webp", ".svg": "image/svg+xml"}
LOGO_MAX_BYTES = 256 * 1024
CONSORTIUM_KEYS = ("name", "routing", "pay_network_fees")
# Settings only a table may hold: outside the tables they would belong to every institution.
PER_INSTITUTION_ONLY = ("kiosk_keys",)
# Settings each table gets from its code alone.
FROM_THE_CODE = ("institution",)
# Folders derived per institution below the shared one: each its own files.
PER_INSTITUTION_FOLDERS = ("bursar_outbox", "bursar_inbox")
# Settings of the whole deployment (one server, one log): never in a table.
DEPLOYMENT_ONLY = ("log_level", "http_max_connections", "http_header_timeout_seconds",
                   "http_body_timeout_seconds", "http_keepalive_seconds",
                   "http_max_header_bytes")


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    settings: Settings
    host: str = ""  # host-name routing only
    accent: str = ""  # the pages' colour, "#rrggbb"; empty keeps the site's own
    logo: Path | None = None  # shown beside its name in the page header
    help_text: tuple[tuple[str, str], ...] = ()  # (language or '' for all, text)
    languages: tuple[str, ...] = ()  # its language switch's; () offers all the site's
    pay_network_fees: bool = False

    @property
    def prefix(self) -> str:
        """The institution's path under path routing: `/<code>`."""
        return "/" + self.code


@dataclass(frozen=True)
class Consortium:
    name: str
    routing: str  # "path" or "host"
    institutions: tuple[Institution, ...]

    def institution(self, code: str) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.institutions)


class Table:
    """One `[institutions.<code>]` table, as load_settings reads it (proxy.config
    InstitutionTable): its own values, and the values derived for it."""

    def __init__(self, code: str, values: Mapping[str, Any], derived: Mapping[str, Any]):
        self.code = code
        self.values = dict(values)
        self.derived = dict(derived)

    @property
    def title(self) -> str:
        return f"[institutions.{self.code}]"

    def has(self, field_name: str) -> bool:
        return (field_name in self.values or field_name + "_file" in self.values
                or field_name in self.derived)

    def raw(self, field_name: str) -> Any:
        if field_name in self.values:
            return self.values[field_name]
        if field_name + "_file" in self.values:
            path = str(self.values[field_name + "_file"])
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{PREFIX}CONFIG {self.title} {field_name}_file cannot be "
                                  f"read: {exc.strerror} ({path})") from None
        return self.derived[field_name]

    def key_name(self, field_name: str) -> str:
        return f"{PREFIX}CONFIG {self.title} {field_name}"

    def missing(self, field_name: str, help: str) -> str:
        return (f"{PREFIX}CONFIG {self.title} needs {field_name} (or {env_name(field_name)} "
                f"for every institution): {help}")


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
    _refuse_shared_only(environ, file_values)
    institutions = tuple(_institution(code, values, common, environ, file_values)
                         for code, values in tables.items())
    consortium = Consortium(name=common["name"], routing=common["routing"],
                            institutions=institutions)
    _refuse_clashes(consortium)
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
    _refuse_unknown_keys("[consortium]", values, CONSORTIUM_KEYS)
    routing = str(values.get("routing", "path")).strip().lower()
    if routing not in ROUTINGS:
        raise ConfigError(f"{PREFIX}CONFIG [consortium] routing is not valid: choose path or "
                          f"host (got {values.get('routing')!r})")
    return {"name": _text("[consortium] name", values.get("name", "Library fines and fees")),
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
    settings_keys = [f.name for f in setting_fields()]
    _refuse_unknown_keys(title, values,
                         [*settings_keys, *(k + "_file" for k in settings_keys), *OWN_KEYS])
    for key in DEPLOYMENT_ONLY:
        if key in values or key + "_file" in values:
            raise ConfigError(f"{PREFIX}CONFIG {title} {key} is the whole deployment's: set it "
                              "outside the [institutions.*] tables")
    for key in FROM_THE_CODE:
        if key in values or key + "_file" in values:
            raise ConfigError(f"{PREFIX}CONFIG {title} {key} is the table's code ({code}): "
                              "remove it")
    name = _text(f"{title} name", values.get("name", code))
    host = ""
    if common["routing"] == "host":
        host = str(values.get("host", "")).strip().lower()
        if not HOST.fullmatch(host):
            raise ConfigError(f"{PREFIX}CONFIG {title} host is "
                              f"{'not a host name' if host else 'required'}: with routing = "
                              '"host" each institution needs its own, e.g. pay.campus-a.edu')
    try:
        accent = parse_accent(values.get("accent", ""))
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}CONFIG {title} accent is not valid: {exc}") from None
    logo = _logo(title, values.get("logo", ""))
    own = {k: v for k, v in values.items() if k not in OWN_KEYS}
    table = Table(code, own, _derived(code, name, host, own, environ, file_values))
    try:
        settings = load_settings(environ, table)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if title in message else f"{title}: {message}") from None
    site_languages = available_languages(settings.site_dir / "locales")
    try:
        languages = parse_languages(values.get("languages"), site_languages)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}CONFIG {title} languages is not valid: {exc}") from None
    try:
        help_text = parse_help_text(values.get("help_text"), languages or site_languages)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}CONFIG {title} help_text is not valid: {exc}") from None
    return Institution(code=code, name=name, settings=settings, host=host, accent=accent,
                       logo=logo, help_text=help_text, languages=languages,
                       pay_network_fees=_flag(f"{title} pay_network_fees", values.get(
                           "pay_network_fees", common["pay_network_fees"])))


def _derived(code: str, name: str, host: str, own: dict[str, Any],
             environ: Mapping[str, str], file_values: dict[str, Any]) -> dict[str, Any]:
    """What an institution gets of its own when its table does not say: a ledger beside the
    default one, its public URL (the default one with /<code>, or its host), signing keys
    derived from the default ones (so nothing one institution signs verifies at another), its
    name on receipts, its own bursar folders below the default ones, and its code, which its
    payment records name."""
    def default(field_name: str) -> Any:
        return _raw_value(field_name, environ, file_values)

    derived: dict[str, Any] = {"library_name": name, "institution": code}
    for folder in PER_INSTITUTION_FOLDERS:
        shared_folder = str(default(folder) or "").strip()
        if shared_folder:
            derived[folder] = str(Path(shared_folder).expanduser() / code)
    shared = str(default("database") or "patronpay.sqlite3").strip()
    if shared.startswith(POSTGRESQL):
        if "database" not in own and "database_file" not in own:
            raise ConfigError(f"{PREFIX}CONFIG [institutions.{code}] needs its own database: "
                              "a PostgreSQL ledger is not derived from the shared one (set "
                              "database in each table)")
    else:
        database = Path(shared).expanduser()
        derived["database"] = str(database.with_name(f"{database.stem}-{code}{database.suffix}"))
    public_url = str(default("public_url") or "").strip().rstrip("/")
    if public_url:
        parts = urlsplit(public_url)
        port = f":{parts.port}" if parts.port else ""
        derived["public_url"] = (f"{parts.scheme}://{host}{port}" if host
                                 else f"{public_url}/{code}")
    keys = default("secret_keys")
    if keys and not ("secret_keys" in own or "secret_keys_file" in own):
        items = keys if isinstance(keys, list) else str(keys).split(",")
        derived["secret_keys"] = ",".join(
            hmac.new(str(k).strip().encode(), f"patronpay institution {code}".encode(),
                     hashlib.sha256).hexdigest() for k in items if str(k).strip())
    return derived


def _logo(title: str, value: Any) -> Path | None:
    """A PNG, WebP or SVG file of at most 256 KB, read now so a mistake stops start-up."""
    if value in ("", None):
        return None
    path = Path(str(value)).expanduser()
    where = f"{PREFIX}CONFIG {title} logo"
    if path.suffix.lower() not in LOGO_TYPES:
        raise ConfigError(f"{where} is not valid: choose a .png, .webp or .svg file ({path})")
    try:
        size = path.stat().st_size
        path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror} ({path})") from None
    if size > LOGO_MAX_BYTES:
        raise ConfigError(f"{where} is larger than 256 KB ({path})")
    return path


def _refuse_unknown_keys(title: str, values: dict[str, Any], known: list[str] | tuple) -> None:
    for key in sorted(values):
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{PREFIX}CONFIG {title} has an unknown setting: {key}{hint}")


def _refuse_shared_only(environ: Mapping[str, str], file_values: dict[str, Any]) -> None:
    for field_name in PER_INSTITUTION_ONLY:
        if _raw_value(field_name, environ, file_values) is not None:
            raise ConfigError(f"{env_name(field_name)} outside the [institutions.*] tables would "
                              "belong to every institution: set it in each institution's table")


def _refuse_clashes(consortium: Consortium) -> None:
    """What two institutions must never share."""
    seen: dict[tuple[str, str], str] = {}
    for institution in consortium.institutions:
        s = institution.settings
        owned = [("host", institution.host),
                 ("database", str(s.database.resolve()) if isinstance(s.database, Path)
                  else s.database),
                 ("cashnet_postback_token", s.cashnet_postback_token),
                 ("cashnet_postback_token", s.cashnet_postback_token_previous),
                 ("alma_api_key", s.alma_api_key),
                 *((folder, getattr(s, folder)) for folder in PER_INSTITUTION_FOLDERS)]
        if consortium.routing == "path":
            owned.append(("public_url", s.public_url))
        for key, value in owned:
            if not value:
                continue
            other = seen.setdefault((key, value), institution.code)
            if other != institution.code:
                raise ConfigError(f"{PREFIX}CONFIG [institutions.{institution.code}] {key} is "
                                  f"the same as [institutions.{other}]'s: each institution "
                                  "needs its own")


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{PREFIX}CONFIG {where} must be non-empty text")
    return value.strip()


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{PREFIX}CONFIG {where} must be true or false (got {value!r})")
    return value
