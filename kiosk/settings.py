"""Settings of the kiosk agent, from its own environment (`PATRONPAY_KIOSK_*`; any of them can
be read from a file with `<NAME>_FILE`, as systemd's `LoadCredential=` provides). The agent
never reads the proxy's configuration: a kiosk holds only its own identity and secret.

A bad or missing setting stops start-up with one line naming it (and never printing a secret).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kiosk.cards import CardRules, default_card_rules, load_card_rules
from kiosk.framing import framer_from_setting
from kiosk.printer import PrinterConnection, parse_printer
from patronpay.site_files import KIOSK_PAGES, SiteFilesError, checked_site, packaged_site

PREFIX = "PATRONPAY_KIOSK_"
_KIOSK_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class KioskConfigError(ValueError):
    """A kiosk setting is missing or malformed; the message names it."""


@dataclass(frozen=True, kw_only=True)
class KioskSettings:
    """Everything the agent needs. Tests build one directly; `load_kiosk_settings` reads the
    environment and enforces the limits (e.g. WCAG's 20-second minimum warning)."""

    kiosk_id: str
    kiosk_secret: str = field(repr=False)
    proxy_url: str
    reader: str = ""
    reader_baud: int = 9600
    reader_framing: str = "eol"
    reader_idle_ms: int = 50
    card_rules: CardRules = field(default_factory=default_card_rules)
    privacy: bool = True
    idle_seconds: float = 90.0
    warning_seconds: float = 30.0
    receipt_seconds: float = 30.0
    payment_max_seconds: float = 600.0
    after_result_seconds: float = 120.0
    install_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    reset_file: str = ""
    proxy_timeout_seconds: float = 15.0
    log_level: str = "INFO"
    printer: PrinterConnection | None = None
    library_name: str = ""
    receipt_contact: str = ""
    receipt_titles: bool = False
    report_seconds: float = 60.0
    # The kiosk pages: always the ones installed with patronpay (no setting).
    site_dir: Path = field(default_factory=packaged_site)

    @property
    def session_lifetime_seconds(self) -> float:
        """The agent drops a session by itself this long after the page last showed life
        (idle + warning + 5 s, docs/kiosk.md#session-reset), in case the page's JavaScript has
        died."""
        return self.idle_seconds + self.warning_seconds + 5.0


# -- parsers: each takes the raw text and raises ValueError with a reason -----------------------


def _kiosk_id(text: str) -> str:
    value = text.strip().lower()
    if not _KIOSK_ID.fullmatch(value):
        raise ValueError("use 1-64 characters: letters, digits, '.', '_' or '-'")
    return value


def _secret(text: str) -> str:
    value = text.strip()
    if len(value) < 32:
        raise ValueError("needs at least 32 characters (try: openssl rand -hex 32)")
    return value


def _proxy_url(text: str) -> str:
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://pay.library.example.edu")
    if parts.path or parts.query:
        raise ValueError("must be the proxy's origin, without a path")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise ValueError("must use https (plain http is allowed only on a loopback host)")
    return value


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reader(text: str) -> str:
    value = text.strip()
    if value.lower().startswith("spy://"):
        # spy:// hex-dumps every byte, card data included: bench use only, never on a kiosk.
        raise ValueError("spy:// records raw card data and is not allowed")
    return value


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _seconds(minimum: float):
    def parse(text: str) -> float:
        value = float(int(text.strip()))
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g} seconds")
        return value
    return parse


def _framing(text: str) -> str:
    value = text.strip()
    framer_from_setting(value)  # raises ValueError with the reason
    return value


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _card_rules(text: str) -> CardRules:
    path = Path(text.strip()).expanduser()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror} ({path})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc} ({path})") from None
    try:
        return load_card_rules(data)
    except ValueError as exc:
        raise ValueError(f"{exc} ({path})") from None


def _printer(text: str) -> PrinterConnection | None:
    return parse_printer(text)


def _short_text(text: str) -> str:
    value = " ".join(text.split())
    if len(value) > 80 or not value.isprintable():
        raise ValueError("use at most 80 printable characters")
    return value


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"choose from {', '.join(LOG_LEVELS)}")
    return value


def _install_key(text: str) -> bytes:
    """The key file for credential fingerprints in logs. Created (0600, random) when missing,
    so a fresh kiosk needs no manual step; an unreadable file is a configuration error."""
    path = Path(text.strip()).expanduser()
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"cannot be read or created: {exc.strerror} ({path})") from None
    if len(key) < 32:
        raise ValueError(f"needs at least 32 characters ({path})")
    return key


# name (after PATRONPAY_KIOSK_) -> (field, parser, secret?)
_SETTINGS = {
    "ID": ("kiosk_id", _kiosk_id, False),
    "SECRET": ("kiosk_secret", _secret, True),
    "PROXY_URL": ("proxy_url", _proxy_url, False),
    "READER": ("reader", _reader, False),
    "READER_BAUD": ("reader_baud", _positive_int, False),
    "READER_FRAMING": ("reader_framing", _framing, False),
    "READER_IDLE_MS": ("reader_idle_ms", _positive_int, False),
    "CARD_RULES": ("card_rules", _card_rules, False),
    "PRIVACY": ("privacy", _bool, False),
    "IDLE_SECONDS": ("idle_seconds", _seconds(20), False),
    "WARNING_SECONDS": ("warning_seconds", _seconds(20), False),  # WCAG 2.2.1: 20 s at least
    "RECEIPT_SECONDS": ("receipt_seconds", _seconds(10), False),
    "PAYMENT_MAX_SECONDS": ("payment_max_seconds", _seconds(60), False),
    "AFTER_RESULT_SECONDS": ("after_result_seconds", _seconds(10), False),
    "INSTALL_KEY_FILE": ("install_key", _install_key, False),
    "RESET_FILE": ("reset_file", str.strip, False),
    "PROXY_TIMEOUT_SECONDS": ("proxy_timeout_seconds", _seconds(1), False),
    "LOG_LEVEL": ("log_level", _log_level, False),
    "PRINTER": ("printer", _printer, False),
    "LIBRARY_NAME": ("library_name", _short_text, False),
    "RECEIPT_CONTACT": ("receipt_contact", _short_text, False),
    "RECEIPT_TITLES": ("receipt_titles", _bool, False),
    "REPORT_SECONDS": ("report_seconds", _seconds(5), False),
}
REQUIRED = ("ID", "SECRET", "PROXY_URL")

HELP = {
    "ID": "This kiosk's id, as listed in the proxy's `PATRONPAY_KIOSK_KEYS`.",
    "SECRET": "This kiosk's secret (32+ characters), the same as in the proxy's "
              "`PATRONPAY_KIOSK_KEYS`.",
    "PROXY_URL": "The central proxy's URL, e.g. `https://pay.library.example.edu`.",
    "READER": "Serial reader: device path (`/dev/serial/by-id/...`) or pyserial URL "
              "(`socket://127.0.0.1:7000`); empty: keyboard-wedge input only.",
    "READER_BAUD": "Baud rate of an RS-232 reader (ignored by USB CDC readers).",
    "READER_FRAMING": "How reads end: `eol` (CR or LF), `idle` (silence), `stx_etx` or "
                      "`fixed:<n>`.",
    "READER_IDLE_MS": "Silence that ends a read in `idle` framing, in milliseconds.",
    "CARD_RULES": "TOML file of card rules (see `kiosk/cardrules.example.toml`); empty: the "
                  "built-in 14-digit library barcode rule.",
    "PRIVACY": "Hide item titles unless the patron taps \"Show titles\".",
    "IDLE_SECONDS": "Seconds without a touch, key or scan before the \"I need more time\" "
                    "warning (20 or more).",
    "WARNING_SECONDS": "Seconds the warning stays up before the kiosk resets (20 or more).",
    "RECEIPT_SECONDS": "Seconds the receipt stays up before the kiosk resets.",
    "PAYMENT_MAX_SECONDS": "Longest time a patron may spend on CashNet's page before the "
                           "kiosk resets the browser.",
    "AFTER_RESULT_SECONDS": "Seconds after CashNet reports the result while the browser has "
                            "not come back, before the kiosk resets the browser.",
    "INSTALL_KEY_FILE": "Key for the card fingerprints in logs (created when missing); empty: "
                        "`$STATE_DIRECTORY/install-key` under systemd, else a key per run.",
    "RESET_FILE": "File written to make systemd restart the kiosk browser; empty: "
                  "`$RUNTIME_DIRECTORY/reset-browser` under systemd, else none.",
    "PROXY_TIMEOUT_SECONDS": "Seconds to wait for the proxy.",
    "LOG_LEVEL": "Log level: DEBUG, INFO, WARNING or ERROR (raw reads are never logged).",
    "PRINTER": "ESC/POS receipt printer: `network:HOST[:PORT]` (port 9100 by default), "
               "`serial:DEVICE[:BAUD]`, `usb:VENDOR:PRODUCT` (hex ids; needs pyusb and libusb) "
               "or `file:DEVICE` (e.g. `/dev/usb/lp0`); empty: no printer.",
    "LIBRARY_NAME": "The library's name at the top of a printed receipt; empty: \"Library\".",
    "RECEIPT_CONTACT": "Where to ask questions, printed on receipts (e.g. `Circulation desk, "
                       "555-0100`); empty: the library's service desk.",
    "RECEIPT_TITLES": "Print item titles on receipts (fee types and amounts always print).",
    "REPORT_SECONDS": "Seconds between this kiosk's state reports to the proxy (5 or more).",
}
DEFAULTS = {
    "READER": "empty", "READER_BAUD": "`9600`", "READER_FRAMING": "`eol`",
    "READER_IDLE_MS": "`50`", "CARD_RULES": "built-in", "PRIVACY": "`true`",
    "IDLE_SECONDS": "`90`", "WARNING_SECONDS": "`30`", "RECEIPT_SECONDS": "`30`",
    "PAYMENT_MAX_SECONDS": "`600`", "AFTER_RESULT_SECONDS": "`120`",
    "INSTALL_KEY_FILE": "empty", "RESET_FILE": "empty",
    "PROXY_TIMEOUT_SECONDS": "`15`", "LOG_LEVEL": "`INFO`", "PRINTER": "empty",
    "LIBRARY_NAME": "empty", "RECEIPT_CONTACT": "empty", "RECEIPT_TITLES": "`false`",
    "REPORT_SECONDS": "`60`",
}


def load_kiosk_settings(environ: Mapping[str, str] | None = None) -> KioskSettings:
    """Read the settings; raise KioskConfigError naming the first bad or missing one."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for suffix, (name, parse, secret) in _SETTINGS.items():
        variable = PREFIX + suffix
        raw = _raw(variable, environ)
        if raw is None or (not raw.strip() and suffix not in REQUIRED):
            if suffix in REQUIRED:
                raise KioskConfigError(f"{variable} is required: {HELP[suffix]}")
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            shown = "" if secret else f" (got {raw!r})"
            raise KioskConfigError(f"{variable} is not valid: {exc}{shown}") from None
    _systemd_defaults(values, environ)
    values["site_dir"] = _kiosk_pages()
    return KioskSettings(**values)  # type: ignore[arg-type]


def _kiosk_pages() -> Path:
    """The installed site, checked now: without its kiosk pages the agent stops at start-up
    with one line rather than a traceback from StaticFiles."""
    try:
        return checked_site(packaged_site(), KIOSK_PAGES)
    except SiteFilesError as exc:
        raise KioskConfigError(f"the kiosk pages installed with patronpay cannot be served: "
                               f"{exc}; reinstall patronpay") from None


def _raw(variable: str, environ: Mapping[str, str]) -> str | None:
    if variable in environ:
        return environ[variable]
    if variable + "_FILE" in environ:
        path = environ[variable + "_FILE"]
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KioskConfigError(f"{variable}_FILE cannot be read: {exc.strerror} "
                                   f"({path})") from None
    return None


def _systemd_defaults(values: dict[str, object], environ: Mapping[str, str]) -> None:
    """Under systemd, keep the install key in StateDirectory and the reset flag in
    RuntimeDirectory (both set by the unit)."""
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if "install_key" not in values and state:
        try:
            values["install_key"] = _install_key(str(Path(state) / "install-key"))
        except ValueError as exc:
            raise KioskConfigError(f"{PREFIX}INSTALL_KEY_FILE is not valid: {exc}") from None
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if "reset_file" not in values and runtime:
        values["reset_file"] = str(Path(runtime) / "reset-browser")


def reference_table() -> str:
    """The kiosk settings table for the README."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for suffix in _SETTINGS:
        default = "**required**" if suffix in REQUIRED else DEFAULTS[suffix]
        rows.append(f"| `{PREFIX}{suffix}` | {default} | {HELP[suffix]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_table())
