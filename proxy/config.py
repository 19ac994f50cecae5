"""Settings for the proxy: environment variables `PATRONPAY_*`, an optional TOML file named by
`PATRONPAY_CONFIG` (environment wins), and `PATRONPAY_<NAME>_FILE` to read a value from a file
(as systemd credentials provide secrets).

Every setting is one field of `Settings`; its metadata carries the parser, the help text and
whether it is secret. A bad or missing setting stops start-up with one line naming it; so does
an unknown `PATRONPAY_*` name, as in the TOML file (the kiosk agent's `PATRONPAY_KIOSK_*` names
are known too, so one environment may serve both).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from patronpay.site_files import WEB_PAGES, SiteFilesError, checked_site, packaged_site
from proxy import checkout as cashnet_checkout
from proxy.bursar import columns as bursar
from proxy.credits import CreditPolicy, parse_credit_policy
from proxy.mail.addresses import parse_mailbox
from proxy.mail.smtp import parse_smtp_url
from proxy.money import AmountError, parse_typed

PREFIX = "PATRONPAY_"
ALMA_METHODS = ("ONLINE", "CREDIT_CARD", "CASH")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


class InstitutionTable(Protocol):
    """One `[institutions.<code>]` table of the TOML file (proxy/consortium/table.py)."""

    def has(self, field_name: str) -> bool: ...
    def raw(self, field_name: str) -> Any: ...
    def key_name(self, field_name: str) -> str: ...
    def missing(self, field_name: str, help: str) -> str: ...


# Parsers take what the environment (a string) or TOML (a native value) supplies.


def _text(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("expected text")
    return str(value).strip()


def _required_text(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    return tuple(_text(item) for item in items if _text(item))


def _required_list(value: Any) -> tuple[str, ...]:
    items = _list(value)
    if not items:
        raise ValueError("must not be empty")
    return items


def _cas_validate_path(value: Any) -> str:
    path = _text(value)
    if path not in ("/p3/serviceValidate", "/serviceValidate"):
        raise ValueError("choose /p3/serviceValidate or /serviceValidate")
    return path


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: Any) -> int:
    number = int(_text(value))
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _whole_number(value: Any) -> int:
    number = int(_text(value))
    if number < 0:
        raise ValueError("must be 0 or a positive whole number")
    return number


def _positive_number(value: Any) -> Decimal:
    number = Decimal(_text(value))
    if not number.is_finite() or number <= 0:
        raise ValueError("must be a positive number")
    return number


def _amount(value: Any) -> Decimal:
    try:
        return parse_typed(_text(value))
    except AmountError as exc:
        raise ValueError(str(exc)) from None


def _url(value: Any) -> str:
    text = _required_text(value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only on a loopback host)")
    return text


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_url(value: Any) -> str:
    text = _url(value)
    if not is_loopback_host(urlsplit(text).hostname or ""):
        raise ValueError("must be a loopback URL such as http://127.0.0.1:8080/kiosk/return")
    return text


def _login_target(value: Any) -> str:
    text = _required_text(value)
    return text if text.startswith("/") and not text.startswith("//") else _url(text)


def _optional_url(value: Any) -> str:
    return _url(value) if _text(value) else ""


def _secret_keys(value: Any) -> tuple[str, ...]:
    keys = _list(value)
    if not keys:
        raise ValueError("needs at least one key")
    if any(len(key) < 32 for key in keys):
        raise ValueError("each key needs at least 32 characters (try: openssl rand -hex 32)")
    return keys


def _token(value: Any) -> str:
    text = _required_text(value)
    if len(text) < 32 or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("needs at least 32 URL-safe characters (letters, digits, - and _)")
    return text


def _optional_token(value: Any) -> str:
    return _token(value) if _text(value) else ""


def _networks(value: Any) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in _list(value))


def _mapping(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        pairs = [(str(k), _text(v)) for k, v in value.items()]
    else:
        pairs = []
        for number, item in enumerate(_list(value), start=1):
            key, sep, code = item.partition("=")
            if not sep or not key.strip() or not code.strip():
                # The item is not echoed: in PATRONPAY_KIOSK_KEYS it holds a secret.
                raise ValueError(f"expected KEY=VALUE pairs separated by commas; item {number} "
                                 "is not one")
            pairs.append((key.strip(), code.strip()))
    return {key.upper(): code for key, code in pairs}


def _item_code_rules(value: Any) -> dict[str, str]:
    return cashnet_checkout.parse_item_code_rules(_mapping(value))


def _custcode(value: Any) -> str:
    return cashnet_checkout.parse_custcode_choice(_required_text(value))


def _smtp_url(value: Any) -> str:
    text = _text(value)
    return parse_smtp_url(text).url if text else ""


def _smtp_ca_file(value: Any) -> str:
    """A PEM file of authorities, loaded now as the mail client will load it, so a missing,
    unreadable or certificate-less file stops start-up instead of deferring every message."""
    text = _text(value)
    if not text:
        return ""
    path = str(Path(text).expanduser())
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:  # before OSError: it is one
        raise ValueError(f"holds no PEM certificate that can be loaded ({exc.reason or exc})"
                         ) from None
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    return path


def _mailbox(value: Any) -> str:
    text = _text(value)
    return parse_mailbox(text) if text else ""


def _kiosk_receipt_email(value: Any) -> str:
    choice = _text(value).lower()
    if choice not in ("ask", "always"):
        raise ValueError("choose ask or always")
    return choice


def _mailboxes(value: Any) -> tuple[str, ...]:
    return tuple(parse_mailbox(item) for item in _list(value))


def _secret_mapping(value: Any) -> dict[str, str]:
    mapping = {key.lower(): secret for key, secret in _mapping(value).items()}
    if any(len(secret) < 32 for secret in mapping.values()):
        raise ValueError("each kiosk secret needs at least 32 characters")
    return mapping


def _auth_methods(value: Any) -> tuple[str, ...]:
    # Imported here: the sign-in modules import the web layer, which imports these settings.
    from proxy.signin import registry

    methods = tuple(item.lower() for item in _list(value))
    unknown = [m for m in methods if m not in registry.names()]
    if unknown or not methods:
        raise ValueError(f"choose from {', '.join(registry.names())}")
    return methods


def _staff_signin(value: Any) -> str:
    method = _text(value).lower()
    if method not in ("", "sso", "cas"):
        raise ValueError("choose sso or cas (or leave empty: no staff pages)")
    return method


def _alma_method(value: Any) -> str:
    method = _text(value).upper()
    if method not in ALMA_METHODS:
        raise ValueError(f"choose from {', '.join(ALMA_METHODS)}")
    return method


def _currency(value: Any) -> str:
    code = _text(value).upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError("must be an ISO 4217 code such as USD")
    return code


def _path(value: Any) -> Path:
    return Path(_required_text(value)).expanduser()


def _database(value: Any) -> Path | str:
    """A path (SQLite) or a `postgresql://` URL, kept whole (docs/deploy.md#two-nodes)."""
    text = _required_text(value)
    return text if text.startswith(("postgresql://", "postgres://")) else _path(text)


def setting(
    parse: Callable[[Any], Any],
    help: str,
    default: Any = dataclasses.MISSING,
    secret: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field: its parser, its README help, and whether its value is secret."""
    metadata = {"parse": parse, "help": help, "secret": secret}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    if isinstance(default, list | dict | tuple):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Settings: the service."""

    public_url: str = setting(
        _url, "The URL patrons and CashNet use, e.g. `https://pay.library.example.edu`.")
    secret_keys: tuple[str, ...] = setting(
        _secret_keys, "Comma-separated signing keys (32+ characters each); the first signs, "
        "all verify.", secret=True)
    database: Path | str = setting(
        _database, "The ledger: the path of an SQLite file, or a `postgresql://` URL for several "
        "instances sharing one PostgreSQL database (docs/deploy.md#two-nodes).",
        Path("patronpay.sqlite3"))
    currency: str = setting(_currency, "ISO 4217 currency of every fee and payment.", "USD")
    institution: str = setting(
        _text, "In a consortium, the institution's code (docs/consortium.md#staff-commands): "
        "each `[institutions.<code>]` table gets its own, which its payment records, staff "
        "output and bursar file names carry; set in the environment (or by `--institution`), "
        "which table a staff command works on. Empty (one institution): nothing names one.", "")
    site_dir: Path = setting(_path, "Folder of the static site served at `/`.",
                             default_factory=packaged_site)
    max_body_bytes: int = setting(_positive_int, "Largest request body accepted, in bytes.", 65536)
    log_level: str = setting(_text, "Log level: DEBUG, INFO, WARNING or ERROR.", "INFO")
    metrics_allowed: tuple[Network, ...] = setting(
        _networks, "CIDRs allowed to read `/metrics` (Prometheus), judged like the sender of "
        "a notification (through `PATRONPAY_TRUSTED_PROXIES`); others get 404; empty turns "
        "`/metrics` off.",
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))


@dataclass(frozen=True, kw_only=True)
class AlmaSettings:
    """Settings: Alma."""

    alma_api_url: str = setting(
        _url, "Alma API base, e.g. `https://api-na.hosted.exlibrisgroup.com/almaws/v1`.")
    alma_api_key: str = setting(_required_text, "Alma API key with Users read/write.", secret=True)
    alma_connect_timeout: Decimal = setting(
        _positive_number, "Seconds to connect to Alma.", Decimal(5))
    alma_read_timeout: Decimal = setting(
        _positive_number, "Seconds to wait for an Alma answer.", Decimal(20))
    alma_recheck_seconds: Decimal = setting(
        _positive_number,
        "After a payment call to Alma timed out, seconds to wait before reading the fee to see "
        "whether it was applied (a little longer than the read timeout).", Decimal(25))
    alma_requests_per_second: int = setting(
        _positive_int, "Most Alma calls per second from this process (Alma allows 25 per "
        "institution).", 20)
    alma_payment_method: str = setting(
        _alma_method, "`method` sent to Alma with each payment: ONLINE, CREDIT_CARD or CASH.",
        "ONLINE")
    alma_payment_comment: str = setting(
        _text, "Text that begins the `comment` of each Alma payment; CashNet's transaction, "
        "the payment reference and the channel (web or kiosk id) follow.", "CashNet payment")


@dataclass(frozen=True, kw_only=True)
class FeeSettings:
    """Settings: fees and payments."""

    payable_fee_types: tuple[str, ...] = setting(
        _list, "Alma fee types patrons may pay here (comma list); empty means every type.", ())
    payable_libraries: tuple[str, ...] = setting(
        _list, "Owning library codes whose fees may be paid here; empty means every library. "
        "Institution-level fees (owned by the institution, or with no owner) are taken when it "
        "lists the institution code (see PATRONPAY_ALMA_INSTITUTION).", ())
    alma_institution: str = setting(
        _text, "Alma institution code, e.g. `01EXU_INST`: a fee with no owning library is the "
        "institution's. Empty uses PATRONPAY_PRIMO_INSTITUTION.", "")
    credit_policy: CreditPolicy = setting(
        parse_credit_policy, "What a credit on the patron's account does: `show` (shown; "
        "paying here charges the chosen fees in full, staff apply the credit in Alma) or `net` "
        "(paying here charges the chosen fees less the credit; the credit itself stays in "
        "Alma, untouched, and only fees with a balance are paid).", CreditPolicy.SHOW)
    show_exported_fees: bool = setting(
        _bool, "Also list the fees Alma has sent to the bursar (status EXPORTED), as billed to "
        "the student account; costs one more Alma call per fees page.", False)
    min_payment: Decimal = setting(
        _amount, "Smallest payment accepted (or the whole payable total when that is smaller).",
        Decimal("1.00"))
    reallocate_remainder: bool = setting(
        _bool, "When money cannot be applied to the fee it was meant for (paid or waived "
        "meanwhile), apply it to the patron's other payable fees instead of holding it for "
        "staff.", False)
    posting_give_up_hours: Decimal = setting(
        _positive_number, "Hours to keep retrying Alma through an outage before a payment needs "
        "staff attention.", Decimal(72))
    posting_backoff_cap_seconds: Decimal = setting(
        _positive_number, "Longest wait between two retries of an Alma posting.", Decimal(300))
    pending_hold_minutes: Decimal = setting(
        _positive_number, "Minutes a payment started but not yet confirmed by CashNet holds its "
        "fees: they show as \"payment in progress\" and no other payment may cover them (a "
        "paid payment holds them until it is in Alma).", Decimal(20))
    max_open_payments: int = setting(
        _positive_int, "Most payments one patron may have waiting at CashNet at once.", 3)


@dataclass(frozen=True, kw_only=True)
class CashnetSettings:
    """Settings: CashNet."""

    cashnet_checkout_url: str = setting(
        _url, "CashNet checkout entry, e.g. `https://commerce.cashnet.com/LIBFINES`.")
    cashnet_item_code: str = setting(_required_text, "Default CashNet item code.")
    cashnet_item_codes: dict[str, str] = setting(
        _item_code_rules, "CashNet item codes by the fee's owning library and type, comma "
        "list of `LIBRARY/FEETYPE=CODE`, `LIBRARY/*=CODE` and `FEETYPE=CODE`; the most "
        "specific wins, then PATRONPAY_CASHNET_ITEM_CODE.", {})
    cashnet_gl_codes: dict[str, str] = setting(
        _mapping, "`CODE=GL,...`: a GL string sent as `glN` with the lines of that item code, "
        "only if the store wants one.", {})
    cashnet_custcode: str = setting(
        _custcode, "What CashNet's `custcode` carries: `primary_id` (the Alma primary id), an "
        "Alma user identifier type such as `UNIV_ID` (the primary id for a patron without "
        "one), or `none`.", "primary_id")
    cashnet_ref_type: str = setting(
        _required_text, "CashNet reference type that carries our payment id.", "PAYMENT_ID")
    cashnet_txn_ref_name: str = setting(
        _text, "Optional transaction-level CashNet reference type that also carries it.", "")
    cashnet_postback_token: str = setting(
        _token, "The secret in the notification URL `/cashnet/postback/{token}` (32+ URL-safe "
        "characters).", secret=True)
    cashnet_postback_token_previous: str = setting(
        _optional_token, "The previous token, still accepted while CashNet's store is updated.",
        "", secret=True)
    cashnet_allowed_ips: tuple[Network, ...] = setting(
        _networks, "CIDR list of CashNet's notification senders; empty disables the check.", ())
    cashnet_max_lines: int = setting(_positive_int, "Most lines in one CashNet checkout.", 9)
    cashnet_expiry_hours: Decimal = setting(
        _positive_number, "Hours after which a payment with no CashNet notification is "
        "`expired`.", Decimal(24))


@dataclass(frozen=True, kw_only=True)
class SigninSettings:
    """Settings: sign-in and sessions."""

    auth_methods: tuple[str, ...] = setting(
        _auth_methods, "Sign-in methods offered: comma list of sso, cas, primo, alma.", ("sso",))
    sso_header: str = setting(
        _required_text, "Header carrying the signed-in user, set by the SSO web server.",
        "X-Remote-User")
    sso_login_url: str = setting(
        _login_target, "Where the single sign-on button sends patrons: `/auth/sso` (protected "
        "by your web server), or your SSO's own login URL that returns there.", "/auth/sso")
    trusted_proxies: tuple[Network, ...] = setting(
        _networks, "CIDRs of web servers allowed to set the SSO header and X-Forwarded-For.",
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))
    session_idle_minutes: int = setting(
        _positive_int, "Minutes without activity after which a session ends.", 15)
    session_max_minutes: int = setting(
        _positive_int, "Minutes after sign-in after which a session ends regardless.", 240)
    guest_max_failures: int = setting(
        _positive_int, "Failed guest sign-ins allowed per account and per address in the "
        "lockout window.", 5)
    guest_lockout_seconds: int = setting(
        _positive_int, "Length of the guest sign-in lockout window, in seconds.", 900)
    cas_url: str = setting(
        _optional_url, "CAS server base, e.g. `https://cas.example.edu/cas` (`/login`, "
        "`/logout` and PATRONPAY_CAS_VALIDATE_PATH below it); required for the `cas` method.",
        "")
    cas_user_attribute: str = setting(
        _text, "CAS attribute holding the patron's Alma user id; empty uses the CAS user "
        "name.", "")
    cas_validate_path: str = setting(
        _cas_validate_path, "Where below `PATRONPAY_CAS_URL` tickets are validated: "
        "`/p3/serviceValidate` (CAS 3) or `/serviceValidate` (CAS 2, e.g. a Shibboleth IdP).",
        "/p3/serviceValidate")
    cas_renew: bool = setting(
        _bool, "Ask CAS for the password at every sign-in (`renew=true`), never reusing a CAS "
        "session: for public terminals.", False)
    primo_institution: str = setting(
        _text, "Institution code a Primo token must carry, e.g. `01EXU_INST`; required for the "
        "`primo` method.", "")
    primo_jwks_url: str = setting(
        _optional_url, "Primo/Alma key set; empty derives "
        "`https://<Alma host>/auth/<institution>/jwks.json`.", "")
    primo_issuer: tuple[str, ...] = setting(
        _required_list, "`iss` values a Primo token may carry, comma list: `Prima` (Primo VE), "
        "`soa` (Alma-Summon).", ("Prima",))
    primo_sandbox: bool = setting(
        _bool, "Use the key set of the institution's Alma sandbox (`?env=sandbox`).", False)


@dataclass(frozen=True, kw_only=True)
class KioskKeySettings:
    """Settings: kiosks."""

    kiosk_keys: dict[str, str] = setting(
        _secret_mapping, "`kioskid=secret,...`: the kiosks allowed to open sessions (secrets "
        "32+ characters).", {}, secret=True)
    kiosk_user_id_type: str = setting(
        _required_text, "Alma `user_id_type` used to find a patron by a scanned card "
        "(`all_unique`, `BARCODE`, `UNIV_ID`, ...).", "all_unique")
    kiosk_return_url: str = setting(
        _loopback_url, "Where CashNet's sign-out sends a kiosk payment: the kiosk agent's own "
        "return page.", "http://127.0.0.1:8080/kiosk/return")
    kiosk_max_skew_seconds: int = setting(
        _positive_int, "How old (or how far in the future) a kiosk's signed request may be.", 60)
    kiosk_lookup_failures: int = setting(
        _positive_int, "Cards Alma does not know that a kiosk may look up within "
        "PATRONPAY_KIOSK_COOLDOWN_SECONDS; at this many, that kiosk looks up no card for that "
        "long, and staff are alerted (docs/security.md#kiosk-card-lookups).", 5)
    kiosk_cooldown_seconds: int = setting(
        _positive_int, "The window in which failed kiosk card lookups are counted, and the "
        "length of the pause that follows too many.", 300)


@dataclass(frozen=True, kw_only=True)
class LoadLimitSettings:
    """Settings: limits under load (docs/security.md#rate-limits)."""

    fees_fresh_seconds: int = setting(
        _whole_number, "Seconds a patron's fee list, once read from Alma, is reused for the "
        "fees page and the start of a payment (dropped at once when any payment of that patron "
        "changes state; the posting worker reads the fee again before paying); 0 reads Alma "
        "every time.", 30)
    session_burst: int = setting(
        _positive_int, "Requests one session may make in a row to the routes that read Alma "
        "(`/api/fees`, `POST /api/payments`, a consortium's fees at sister institutions) "
        "before the pace below applies; a patron's sessions together get twice this, and the "
        "sign-ins of one user id the same as a session.", 10)
    session_requests_per_minute: int = setting(
        _positive_int, "Pace of those requests for one session, after the burst; more get 429 "
        "with Retry-After.", 30)
    patron_requests_per_minute: int = setting(
        _positive_int, "Pace of those requests for all of one patron's sessions together (a "
        "patron's fair share of the Alma rate: each request costs at most one Alma read).", 60)
    receipt_days: int = setting(
        _positive_int, "Days a receipt link (`/receipt.html?r=...`) works; afterwards the page "
        "asks for a new receipt. The patron's own session always shows their payments.", 30)


@dataclass(frozen=True, kw_only=True)
class HttpServerSettings:
    """Settings: the HTTP server of `patronpay serve` (docs/deploy.md#timeouts-and-limits)."""

    http_max_connections: int = setting(
        _positive_int, "Connections (or requests in progress) at once; beyond that, answers "
        "are 503 at once.", 200)
    http_header_timeout_seconds: Decimal = setting(
        _positive_number, "Seconds a client has to send a request's line and headers.",
        Decimal(10))
    http_body_timeout_seconds: Decimal = setting(
        _positive_number, "Seconds a client has to send a request's body, once its headers "
        "are in.", Decimal(20))
    http_keepalive_seconds: int = setting(
        _positive_int, "Seconds an idle keep-alive connection stays open (keep it above the "
        "web server's upstream keep-alive).", 20)
    http_max_header_bytes: int = setting(
        _positive_int, "Largest request line and headers accepted, in bytes.", 16384)


@dataclass(frozen=True, kw_only=True)
class StaffPageSettings:
    """Settings: staff pages (docs/operations.md#staff-pages)."""

    staff_signin: str = setting(
        _staff_signin, "How staff sign in to the pages at `/staff/`: `sso` (the web server's "
        "sign-on sets PATRONPAY_SSO_HEADER on `/staff/auth/sso`) or `cas` (patronpay's own CAS "
        "round trip at `/staff/auth/cas`, with PATRONPAY_CAS_URL); empty: no staff pages.", "")
    staff_users: tuple[str, ...] = setting(
        _list, "User ids allowed into the staff pages (comma list), as the sign-on names them: "
        "the SSO header's value, or the CAS user name.", ())
    staff_group: tuple[str, ...] = setting(
        _list, "Groups whose members may use the staff pages (comma list), as the sign-on "
        "passes them in PATRONPAY_STAFF_GROUP_HEADER (sso) or PATRONPAY_STAFF_GROUP_ATTRIBUTE "
        "(cas).", ())
    staff_group_header: str = setting(
        _text, "Header in which the web server passes the user's groups on `/staff/auth/sso` "
        "(values separated by `;` or `,`), e.g. `X-Remote-Groups`; like the SSO header, the web "
        "server must drop it from every browser request. Empty: groups are not read.", "")
    staff_group_attribute: str = setting(
        _text, "CAS attribute listing the user's groups, e.g. `memberOf`; empty: groups are not "
        "read.", "")
    staff_sso_login_url: str = setting(
        _login_target, "Where the staff pages send staff to sign in with `sso`: "
        "`/staff/auth/sso` (protected by your web server), or your sign-on's own login URL that "
        "returns there.", "/staff/auth/sso")
    # Shorter than a patron's (15 and 240): a staff session can move money, and signing in
    # again through the campus sign-on is one redirect while its own session lasts.
    staff_session_idle_minutes: int = setting(
        _positive_int, "Minutes without activity after which a staff session ends.", 10)
    staff_session_max_minutes: int = setting(
        _positive_int, "Minutes after sign-in after which a staff session ends regardless.", 120)


@dataclass(frozen=True, kw_only=True)
class CheckSettings:
    """Settings: the go-live check."""

    check_patron: str = setting(
        _text, "A test patron's Alma primary id that `patronpay check` reads with its fees "
        "(it never pays or changes anything); empty skips that part of the check.", "")


@dataclass(frozen=True, kw_only=True)
class BursarSettings:
    """Settings: bursar models (docs/bursar.md)."""

    bursar_report_path: str = setting(
        _text, "Catalog path of the Analytics fines-and-fees report read by `bursar export` and "
        "`bursar holds`, e.g. `/shared/Example University/Reports/Bursar/Fines`.", "")
    bursar_report_columns: dict[str, str] = setting(
        bursar.parse_report_columns, "`field=Heading,...`: the report's column headings where "
        "they differ from the defaults (fee_id=Fine Fee Id, primary_id=Primary Identifier, "
        "campus_id=Primary Identifier, first_name=First Name, last_name=Last Name, "
        "fee_type=Fine Fee Type, amount=Remaining Amount, status=Fine Fee Status, "
        "created=Fine Fee Creation Date, owner=Owner, title=Title).", {})
    bursar_report_page_size: int = setting(
        bursar.parse_page_size, "Rows per Analytics page (a multiple of 25, at most 1000).", 1000)
    bursar_report_wait_seconds: Decimal = setting(
        _positive_number, "Seconds to wait before asking again while Analytics answers \"still "
        "loading\" (an empty page that is not finished).", Decimal(5))
    bursar_report_retries: int = setting(
        _positive_int, "\"Still loading\" answers in a row after which the report is asked for "
        "afresh (twice), then given up.", 12)
    bursar_export_rows: str = setting(
        bursar.parse_export_rows, "`patron` (one row per patron, the total owed) or `fee` (one "
        "row per fee) in the file for the bursar.", "patron")
    bursar_export_columns: dict[str, str] = setting(
        bursar.parse_export_columns, "The columns of the file for the bursar, in order, as "
        "`field=Header,...` (a field alone keeps its name as header). Fields: campus_id, "
        "primary_id, name, amount, item_code, description, date, term, fee_id, fee_type, fees.",
        bursar.parse_export_columns(bursar.EXPORT_DEFAULT))
    bursar_item_code: str = setting(
        _text, "Item code (PeopleSoft item type, CashNet code) of a row for the bursar; empty "
        "uses PATRONPAY_CASHNET_ITEM_CODE.", "")
    bursar_item_codes: dict[str, str] = setting(
        _item_code_rules, "Item codes in the file for the bursar, by the same rules as "
        "PATRONPAY_CASHNET_ITEM_CODES (`LIBRARY/FEETYPE=CODE`, `LIBRARY/*=CODE`, "
        "`FEETYPE=CODE`); empty uses PATRONPAY_CASHNET_ITEM_CODES.", {})
    bursar_term: str = setting(
        _text, "Term code written in the `term` column (e.g. `2025FA`), agreed with the "
        "bursar.", "")
    bursar_outbox: str = setting(
        _text, "Folder where `bursar export` and `bursar holds` write their files for the "
        "campus to collect; empty writes the export to standard output.", "")
    bursar_inbox: str = setting(
        _text, "Drop folder of the bursar's payments files (where SFTP lands them), read by "
        "`bursar import --inbox`; handled files move to `done/` or `rejected/` below it.", "")
    bursar_inbox_settle_seconds: int = setting(
        _positive_int, "A file in the inbox is taken only once it has not changed for this many "
        "seconds (it may still be being written).", 60)
    bursar_import_columns: dict[str, str] = setting(
        bursar.parse_import_columns, "`field=HEADER,...`: headers of the payments file where "
        "they differ from the field names (patron_id, amount, transaction_id, date, fee_id, "
        "item_code), e.g. `patron_id=EMPLID,amount=AMOUNT_PAID`.", {})
    bursar_id_type: str = setting(
        _required_text, "Alma `user_id_type` of the campus id in the bursar's files "
        "(`all_unique`, `UNIV_ID`, ...).", "all_unique")
    bursar_date_format: str = setting(
        _required_text, "strftime format of dates in the payments file (and of the `date` column "
        "of the export).", "%Y-%m-%d")
    bursar_hold_min: Decimal = setting(
        _amount, "A patron owing more than this is listed by `bursar holds`.", Decimal("0.00"))
    bursar_block_types: tuple[str, ...] = setting(
        _list, "Alma user block types (comma list, e.g. `CASH,LOAN`) that also put a patron on "
        "the holds list; empty: blocks are not read.", ())


@dataclass(frozen=True, kw_only=True)
class MailSettings:
    """Settings: e-mail (docs/staff.md#e-mail)."""

    smtp_url: str = setting(
        _smtp_url, "The mail server: `smtp+starttls://user@host:587`, `smtps://user@host:465`, "
        "or `smtp://127.0.0.1:25` (plain, loopback only); empty sends no mail.", "",
        secret=True)  # never echoed in an error: a password may have been put in it by mistake
    smtp_ca_file: str = setting(
        _smtp_ca_file, "A PEM file of the certificate authorities that may vouch for the mail "
        "server (a campus CA), trusted instead of the system's; empty trusts the system's. "
        "Read at start-up (a bad file stops it) and for each message.", "")
    smtp_password: str = setting(
        _text, "Password for the user in PATRONPAY_SMTP_URL (best from a file: "
        "PATRONPAY_SMTP_PASSWORD_FILE).", "", secret=True)
    mail_from: str = setting(
        _mailbox, "Sender of receipts and alerts, e.g. `Library fines "
        "<fines@library.example.edu>`; required with PATRONPAY_SMTP_URL.", "")
    library_name: str = setting(
        _text, "The library's name as receipts show it; empty says \"the library\".", "")
    receipt_email: bool = setting(
        _bool, "E-mail each patron a receipt when their payment is in Alma (to their "
        "preferred address there).", True)
    kiosk_receipt_email: str = setting(
        _kiosk_receipt_email, "A kiosk payment's e-mailed receipt: `ask` (the patron chooses "
        "**E-mail receipt** on the kiosk's receipt screen) or `always` (mailed like a web "
        "payment's; docs/kiosk.md#e-mailed-receipt).", "ask")
    staff_email: tuple[str, ...] = setting(
        _mailboxes, "Comma list of addresses that get staff alerts; empty sends none.", ())
    alert_posting_minutes: int = setting(
        _positive_int, "Alert staff when a paid payment has waited this many minutes to be "
        "posted to Alma.", 30)
    mail_backoff_cap_seconds: Decimal = setting(
        _positive_number, "Longest wait between two tries of a message while the mail server "
        "is down or busy.", Decimal(600))


@dataclass(frozen=True, kw_only=True)
class Settings(MailSettings, BursarSettings, CheckSettings, StaffPageSettings,
               HttpServerSettings, LoadLimitSettings, KioskKeySettings, SigninSettings,
               CashnetSettings, FeeSettings, AlmaSettings, ServiceSettings):
    """Every setting of the proxy, one section class each (in reverse: a dataclass lists the
    fields of its last base first, so the reference keeps the order of the sections)."""

    @property
    def institution_code(self) -> str:
        """The Alma institution code, which owns the fees that name no library."""
        return self.alma_institution or self.primo_institution

    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def is_https(self) -> bool:
        return self.public_url.startswith("https://")

    def item_code_for(self, fee_type: str, library: str = "") -> str:
        return cashnet_checkout.item_code_for(self.cashnet_item_codes, self.cashnet_item_code,
                                              fee_type, library)

    def primo_key_set_url(self) -> str:
        if self.primo_jwks_url:
            return self.primo_jwks_url
        parts = urlsplit(self.alma_api_url)
        url = f"{parts.scheme}://{parts.netloc}/auth/{self.primo_institution}/jwks.json"
        return url + ("?env=sandbox" if self.primo_sandbox else "")


def _check_together(settings: Settings) -> None:
    """Settings that only make sense together."""
    from proxy.signin import registry  # here, as in _auth_methods

    if settings.smtp_url and not settings.mail_from:
        raise ConfigError(f"{PREFIX}MAIL_FROM is required when {PREFIX}SMTP_URL is set")
    _check_staff(settings)
    for method, name in registry.required_settings(settings.auth_methods):
        if not getattr(settings, name):
            raise ConfigError(f"{env_name(name)} is required when {PREFIX}AUTH_METHODS "
                              f"includes {method}")


def _check_staff(settings: Settings) -> None:
    """The staff pages need someone to let in, and the source of groups their sign-on has."""
    method = settings.staff_signin
    if not method:
        return
    if not settings.staff_users and not settings.staff_group:
        raise ConfigError(f"{PREFIX}STAFF_USERS or {PREFIX}STAFF_GROUP is required when "
                          f"{PREFIX}STAFF_SIGNIN is set")
    source = "staff_group_header" if method == "sso" else "staff_group_attribute"
    if settings.staff_group and not getattr(settings, source):
        raise ConfigError(f"{env_name(source)} is required when {PREFIX}STAFF_GROUP is set "
                          f"and {PREFIX}STAFF_SIGNIN is {method}")
    if method == "cas" and not settings.cas_url:
        raise ConfigError(f"{PREFIX}CAS_URL is required when {PREFIX}STAFF_SIGNIN is cas")


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def setting_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Settings))


def load_settings(environ: Mapping[str, str] | None = None,
                  table: InstitutionTable | None = None) -> Settings:
    """Read the settings; raise ConfigError naming the first bad or missing one. With
    `[institutions.<code>]` tables in the TOML file, the settings of the institution named by
    PATRONPAY_INSTITUTION (docs/consortium.md#staff-commands); `table` is that institution's
    own values, which win over everything else."""
    environ = os.environ if environ is None else environ
    _refuse_unknown_names(environ)
    file_values = _read_toml(environ.get(PREFIX + "CONFIG", ""))
    if table is None and file_values.get("institutions"):
        from proxy.consortium.config import named_institution  # it reads the tables with this

        return named_institution(environ).settings
    values: dict[str, Any] = {}
    for f in setting_fields():
        name = env_name(f.name)
        raw = _raw_value(f.name, environ, file_values)
        if table is not None and table.has(f.name):
            name, raw = table.key_name(f.name), table.raw(f.name)
        if raw is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if table is not None:
                    raise ConfigError(table.missing(f.name, f.metadata["help"]))
                raise ConfigError(f"{name} is required: {f.metadata['help']}")
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except (ValueError, ArithmeticError, TypeError) as exc:
            shown = "" if f.metadata["secret"] else f" (got {raw!r})"
            raise ConfigError(f"{name} is not valid: {exc}{shown}") from None
    values["site_dir"] = _site_folder(values.get("site_dir"))
    settings = Settings(**values)
    _check_together(settings)
    return settings


def _site_folder(configured: Path | None) -> Path:
    """PATRONPAY_SITE_DIR, else the site installed with patronpay, checked now: a missing or
    unreadable folder stops start-up with one line rather than a traceback from StaticFiles."""
    name = env_name("site_dir")
    if configured is None:
        try:
            return checked_site(packaged_site(), WEB_PAGES)
        except SiteFilesError as exc:
            raise ConfigError(f"{name} is not set and the site installed with patronpay cannot "
                              f"be served: {exc}; reinstall patronpay or set {name}") from None
    try:
        return checked_site(configured, WEB_PAGES)
    except SiteFilesError as exc:
        raise ConfigError(f"{name} is not valid: {exc}") from None


def known_environment_names() -> set[str]:
    """Every `PATRONPAY_*` name start-up accepts: each setting and its `_FILE` twin, the TOML
    file's name, and the kiosk agent's own `PATRONPAY_KIOSK_*` names (one environment may
    serve both, as in the demo), so neither refuses the other's."""
    from kiosk.settings import HELP as KIOSK_HELP
    from kiosk.settings import PREFIX as KIOSK_PREFIX

    settings = [env_name(f.name) for f in setting_fields()]
    kiosk = [KIOSK_PREFIX + suffix for suffix in KIOSK_HELP]
    files = {PREFIX + "CONFIG", PREFIX + "INSTITUTION"}  # the file, and which of its tables
    return files | {n for name in settings + kiosk for n in (name, name + "_FILE")}


def _refuse_unknown_names(environ: Mapping[str, str]) -> None:
    """A mistyped name would otherwise be ignored and its default used without a word."""
    known = known_environment_names()
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name} is not a patronpay setting{hint}")


def _raw_value(field_name: str, environ: Mapping[str, str], file_values: dict) -> Any:
    name = env_name(field_name)
    if name in environ:
        return environ[name]
    if name + "_FILE" in environ:
        return _read_secret_file(name, environ[name + "_FILE"])
    if field_name in file_values:
        return file_values[field_name]
    if field_name + "_file" in file_values:
        return _read_secret_file(name, str(file_values[field_name + "_file"]))
    return None


def _read_secret_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE cannot be read: {exc.strerror} ({path})") from None


def _read_toml(path: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{PREFIX}CONFIG cannot be read: {exc.strerror} ({path})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{PREFIX}CONFIG is not valid TOML: {exc} ({path})") from None
    known = {f.name for f in setting_fields()} | {f.name + "_file" for f in setting_fields()}
    known |= {"institutions", "consortium"}  # a consortium's tables (docs/consortium.md)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{PREFIX}CONFIG has an unknown setting: {unknown[0]} ({path})")
    return data


def reference_table() -> str:
    """The settings table of docs/configuration.md, generated from the settings themselves."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in setting_fields():
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append(f"| `{env_name(f.name)}` | {_shown_default(f.name, default)} "
                    f"| {f.metadata['help']} |")
    return "\n".join(rows)


def _shown_default(name: str, default: Any) -> str:
    if default is None:
        return "**required**"
    if name == "site_dir":
        return "the `site/` folder"
    if isinstance(default, tuple):
        default = ",".join(str(item) for item in default)
    elif isinstance(default, dict):
        default = ",".join(f"{k}={v}" for k, v in default.items())
    elif isinstance(default, bool):
        default = str(default).lower()
    return f"`{default}`" if str(default) else "empty"


if __name__ == "__main__":
    print(reference_table())
