"""Store configuration for the CashNet sandbox: defaults, the seed file, validation, merging.

A store config is a plain dict (JSON-shaped) so it can come from the seed file, from a test's
dict or from `PUT /_emulator/stores/{store}`. Everything that enters is checked here, so the rest
of the emulator can trust the shapes (amounts are Decimal, delays are bounded floats).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

SEED_PATH = Path(__file__).parent / "seed" / "cashnet.json"

# Result field groups a store may list in `fields`, in the order of docs/sandbox.md#store-settings.
# `cctype` is an optional extra some stores send; it is emitted only when the store config sets
# `cctype`.
FIELD_GROUPS = (
    "result", "respmessage", "tx", "failedtx", "batchno", "effdate", "merchant", "station",
    "operator", "pmtcode", "pmttype", "cctype", "custcode", "lname", "itemcnt", "lines", "refs",
    "txn_refs", "ccerror",
)
DEFAULT_FIELDS = [name for name in FIELD_GROUPS if name != "cctype"]

DEFAULT_LIMITS = {"items": 9, "refs_per_item": 9, "value_len": 255, "desc_len": 100}

# Bounds keep a misconfigured test or demo from hanging a delivery for minutes.
MAX_RETRIES = 5
MAX_RETRY_DELAY_S = 30.0
MAX_TIMEOUT_S = 60.0
MAX_DELAY_S = 300.0
MAX_DUPLICATES = 10

STORE_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "merchant": "",
    "station": "WEB",
    "operator": "WEBUSER",
    "pmtcode": "CC",
    "pmttype": "CC",
    "cctype": "",
    "item_codes": {},
    "ref_types": [],
    "txn_ref_types": [],
    "notify_success_url": "",
    "notify_failure_url": "",
    "notify_on_cancel": True,
    "failedtx_on_cancel": True,
    "notify_timeout_s": 10.0,
    "retries": 0,
    "retry_delay_s": 5.0,
    "signout_url": "",
    "signout_failure_url": "",
    "signout_method": "POST",
    "auto_signout_s": None,
    "fields": DEFAULT_FIELDS,
    "limits": DEFAULT_LIMITS,
    "tx_start": 100000,
    "batch_start": 1,
    "faults": {},
}

FAULT_KEYS = (
    "duplicate", "duplicate_delay_s", "hold", "delay_s", "drop", "ref_slot", "missing_refs",
    "tamper_amount", "leading_ampersand", "uppercase_names", "omit_itemcnt", "charset",
    "source_address", "url_token", "apply_to", "status", "typed_fields", "custcode_echo",
    "amount_format", "signout_appends_query", "tamper_itemcode",
)
# `status`: 703 is CashNet's own "down for maintenance" page (HTTP 200); a 5xx is the entry
# point itself failing, with no page at all.
STORE_STATUSES = (703, 500, 502, 503, 504)
AMOUNT_FORMATS = ("plain", "thousands", "dollar", "dollar_thousands")
CUSTCODE_ECHOES = ("upper", "lower", "padded")
_REF_SLOT = re.compile(r"^ref([1-9][0-9]*)val([1-9][0-9]*)$", re.IGNORECASE)
_TAMPER = re.compile(r"^[+-]?[0-9]+(\.[0-9]{1,2})?$")
_ITEM_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class StoreConfigError(ValueError):
    """A store setting or fault knob has the wrong shape; the message names it."""


def load_seed(path: Path = SEED_PATH) -> dict[str, dict[str, Any]]:
    """Read the seed stores; JSON numbers with a fraction become Decimal, never float."""
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def normalize_stores(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate every store; the result is keyed by the store name as configured."""
    if not isinstance(raw, dict):
        raise StoreConfigError("stores must be a mapping of store name to settings")
    names = [str(name) for name in raw]
    if len({name.casefold() for name in names}) != len(names):
        raise StoreConfigError("two stores differ only in letter case")
    return {str(name): normalize_store(str(name), settings) for name, settings in raw.items()}


def normalize_store(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Fill in defaults and check every setting of one store."""
    check_store_name(name)
    if not isinstance(settings, dict):
        raise StoreConfigError(f"store {name}: settings must be a mapping")
    unknown = sorted(set(settings) - set(STORE_DEFAULTS))
    if unknown:
        raise StoreConfigError(f"store {name}: unknown setting(s) {', '.join(unknown)}")
    config = copy.deepcopy(STORE_DEFAULTS)
    config.update(copy.deepcopy(settings))
    config["limits"] = {**DEFAULT_LIMITS, **_mapping(name, "limits", config["limits"])}
    return _checked(name, config)


def merge_store(name: str, current: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Merge settings into a store: top-level keys replace, `limits` merges key by key."""
    merged = {key: value for key, value in current.items() if key in STORE_DEFAULTS}
    for key, value in settings.items():
        if key == "limits" and isinstance(value, dict):
            merged["limits"] = {**merged.get("limits", {}), **value}
        else:
            merged[key] = value
    return normalize_store(name, merged)


def check_store_name(name: str) -> None:
    lowered = name.lower()
    if not name or "/" in name or lowered.startswith(("_checkout", "_emulator")):
        raise StoreConfigError(f"{name!r} cannot be a store name")
    if lowered == "404handler":
        raise StoreConfigError("404handler is the pageredir entry point, not a store")


def find_store(stores: dict[str, Any], name: str) -> str | None:
    """The configured spelling of a store name, matched case-insensitively."""
    wanted = name.casefold()
    return next((key for key in stores if key.casefold() == wanted), None)


def _checked(name: str, c: dict[str, Any]) -> dict[str, Any]:
    where = f"store {name}"
    for key in ("enabled", "notify_on_cancel", "failedtx_on_cancel"):
        _require(isinstance(c[key], bool), f"{where}: {key} must be true or false")
    for key in ("merchant", "station", "operator", "pmtcode", "pmttype", "cctype",
                "notify_success_url", "notify_failure_url", "signout_url", "signout_failure_url"):
        c[key] = "" if c[key] is None else c[key]
        _require(isinstance(c[key], str), f"{where}: {key} must be a string")
    for key in ("notify_success_url", "notify_failure_url", "signout_url", "signout_failure_url"):
        _require(c[key] == "" or c[key].startswith(("http://", "https://")),
                 f"{where}: {key} must be an http(s) URL or empty")
    c["item_codes"] = _item_codes(where, c["item_codes"])
    for key in ("ref_types", "txn_ref_types"):
        values = c[key]
        _require(isinstance(values, list) and all(isinstance(v, str) and v for v in values),
                 f"{where}: {key} must be a list of names")
    c["notify_timeout_s"] = _number(where, "notify_timeout_s", c["notify_timeout_s"],
                                    0.1, MAX_TIMEOUT_S)
    c["retries"] = _integer(where, "retries", c["retries"], 0, MAX_RETRIES)
    c["retry_delay_s"] = _number(where, "retry_delay_s", c["retry_delay_s"], 0, MAX_RETRY_DELAY_S)
    c["signout_method"] = str(c["signout_method"]).upper()
    _require(c["signout_method"] in ("POST", "GET"), f"{where}: signout_method is POST or GET")
    if c["auto_signout_s"] is not None:
        c["auto_signout_s"] = _number(where, "auto_signout_s", c["auto_signout_s"], 0, 600)
    fields = c["fields"]
    _require(isinstance(fields, list) and all(f in FIELD_GROUPS for f in fields),
             f"{where}: fields must list names from {', '.join(FIELD_GROUPS)}")
    for key, value in c["limits"].items():
        _require(key in DEFAULT_LIMITS, f"{where}: unknown limit {key}")
        c["limits"][key] = _integer(where, f"limits.{key}", value, 1, 100000)
    c["tx_start"] = _integer(where, "tx_start", c["tx_start"], 1, 10**12)
    c["batch_start"] = _integer(where, "batch_start", c["batch_start"], 1, 10**12)
    c["faults"] = validate_faults(c["faults"], where=where)
    return c


def _item_codes(where: str, raw: Any) -> dict[str, dict[str, Any]]:
    """Accept a list of codes or a mapping code -> {price, gl, unique, exclusive_group}."""
    if isinstance(raw, list):
        raw = {code: {} for code in raw}
    _require(isinstance(raw, dict), f"{where}: item_codes must be a list or a mapping")
    items = {}
    for code, spec in raw.items():
        spec = {} if spec is None else spec
        _require(isinstance(code, str) and code and isinstance(spec, dict),
                 f"{where}: item code {code!r} needs a mapping of settings")
        extra = set(spec) - {"price", "gl", "unique", "exclusive_group"}
        _require(not extra, f"{where}: item {code}: unknown setting(s) {sorted(extra)}")
        price = spec.get("price")
        if price is not None:
            price = _money(f"{where}: item {code}: price", price)
        items[code] = {
            "price": price,
            "gl": str(spec["gl"]) if spec.get("gl") else None,
            "unique": bool(spec.get("unique", False)),
            "exclusive_group": str(spec["exclusive_group"]) if spec.get("exclusive_group")
            else None,
        }
    return items


def validate_faults(raw: Any, *, where: str = "faults") -> dict[str, Any]:
    """Check the fault knobs of docs/sandbox.md#cashnet-fault-knobs and return them with normalised
    values."""
    if raw is None:
        return {}
    _require(isinstance(raw, dict), f"{where}: faults must be a mapping")
    unknown = sorted(set(raw) - set(FAULT_KEYS))
    _require(not unknown, f"{where}: unknown fault(s) {', '.join(unknown)}")
    faults = dict(raw)
    for key in ("hold", "drop", "missing_refs", "leading_ampersand", "uppercase_names",
                "omit_itemcnt", "signout_appends_query"):
        if key in faults:
            _require(isinstance(faults[key], bool), f"{where}: {key} must be true or false")
    if "duplicate" in faults:
        faults["duplicate"] = _integer(where, "duplicate", faults["duplicate"], 0, MAX_DUPLICATES)
    for key in ("duplicate_delay_s", "delay_s"):
        if key in faults:
            faults[key] = _number(where, key, faults[key], 0, MAX_DELAY_S)
    if "ref_slot" in faults:
        _require(isinstance(faults["ref_slot"], str) and _REF_SLOT.match(faults["ref_slot"]),
                 f"{where}: ref_slot looks like ref1val2")
        faults["ref_slot"] = faults["ref_slot"].lower()
    if "tamper_amount" in faults:
        faults["tamper_amount"] = _tamper(where, faults["tamper_amount"])
    if "tamper_itemcode" in faults:
        faults["tamper_itemcode"] = _recode(where, faults["tamper_itemcode"])
    if "charset" in faults:
        charset = str(faults["charset"]).lower().replace("windows-", "cp")
        _require(charset in ("cp1252", "utf-8"), f"{where}: charset is cp1252 or utf-8")
        faults["charset"] = charset
    if "source_address" in faults:
        faults["source_address"] = _loopback(where, faults["source_address"])
    if "url_token" in faults:
        _require(faults["url_token"] in ("omit", "wrong"), f"{where}: url_token is omit or wrong")
    if "apply_to" in faults:
        _require(faults["apply_to"] in ("notify", "signout", "both"),
                 f"{where}: apply_to is notify, signout or both")
    if "typed_fields" in faults:
        faults["typed_fields"] = _typed_fields(where, faults["typed_fields"])
    if "custcode_echo" in faults:
        echo = faults["custcode_echo"]
        _require(echo in CUSTCODE_ECHOES or (isinstance(echo, dict) and set(echo) == {"value"}
                                              and isinstance(echo["value"], str)),
                 f"{where}: custcode_echo is upper, lower, padded or {{value}}")
    if "amount_format" in faults:
        _require(faults["amount_format"] in AMOUNT_FORMATS,
                 f"{where}: amount_format is one of {', '.join(AMOUNT_FORMATS)}")
    if "status" in faults:
        status = faults["status"]
        _require(not isinstance(status, bool) and str(status) in map(str, STORE_STATUSES),
                 f"{where}: status is one of {', '.join(map(str, STORE_STATUSES))}")
        faults["status"] = int(status)
    return faults


def _typed_fields(where: str, value: Any) -> bool | dict[str, str]:
    """`true` (the default set) or a mapping of field name to what the payer typed."""
    if isinstance(value, bool):
        return value
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in value.items())
    _require(ok, f"{where}: typed_fields is true or a mapping of names to text")
    return dict(value)


def _tamper(where: str, value: Any) -> dict[str, Any]:
    """`"+1.00"` (relative, line 1), `"5.00"` (absolute, line 1) or `{line, amount}`."""
    line = 1
    if isinstance(value, dict):
        _require(set(value) <= {"line", "amount"} and "amount" in value,
                 f"{where}: tamper_amount mapping is {{line, amount}}")
        line = _integer(where, "tamper_amount.line", value.get("line", 1), 1, 1000)
        value = value["amount"]
    text = str(value).strip()
    _require(bool(_TAMPER.match(text)), f"{where}: tamper_amount is like +1.00, -0.50 or 0.01")
    return {"line": line, "amount": text}


def _recode(where: str, value: Any) -> dict[str, Any]:
    """`"LIB-OTHER"` (line 1) or `{line, code}`: the item code echoed for that line."""
    line = 1
    if isinstance(value, dict):
        _require(set(value) <= {"line", "code"} and "code" in value,
                 f"{where}: tamper_itemcode mapping is {{line, code}}")
        line = _integer(where, "tamper_itemcode.line", value.get("line", 1), 1, 1000)
        value = value["code"]
    _require(isinstance(value, str) and bool(_ITEM_CODE.match(value)),
             f"{where}: tamper_itemcode is an item code like LIB-OTHER")
    return {"line": line, "code": value}


def _loopback(where: str, value: Any) -> str:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        address = None
    _require(address is not None and address.is_loopback,
             f"{where}: source_address must be a loopback address")
    return str(address)


def _money(what: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = None
    _require(amount is not None and amount.is_finite() and amount > 0, f"{what} must be > 0")
    return amount.quantize(Decimal("0.01"))


def _integer(where: str, key: str, value: Any, low: int, high: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    _require(ok, f"{where}: {key} must be an integer from {low} to {high}")
    return value


def _number(where: str, key: str, value: Any, low: float, high: float) -> float:
    ok = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    _require(ok and low <= value <= high, f"{where}: {key} must be a number from {low} to {high}")
    return float(value)  # a delay, not money


def _mapping(name: str, key: str, value: Any) -> dict[str, Any]:
    _require(isinstance(value, dict), f"store {name}: {key} must be a mapping")
    return value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise StoreConfigError(message)
