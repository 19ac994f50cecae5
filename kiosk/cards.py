"""Card read normalisation (docs/kiosk.md#card-rules) and the PCI guard
(docs/kiosk.md#bank-cards-and-card-numbers).

A read from the serial reader or the keyboard wedge goes through one fixed pipeline and comes out
as a `Credential` or a `Rejection`. Every step is a pure function below, in pipeline order.

Safety rule for the whole module: a raw read, and anything cut from it, never goes into an
exception, a log line or a repr. Rejections carry only a reason code and the source; a
Credential's repr masks its value. Log a credential only with `mask()` or
`credential_fingerprint()`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

log = logging.getLogger(__name__)

MAX_FRAME = 256
REJECTION_REASONS = frozenset(
    {"bad_charset", "too_long", "payment_card", "track_error", "no_match", "length", "check_digit"}
)
CHECK_DIGITS = ("luhn", "mod11", "none")
TRACKS = (1, 2, 3, "auto")

TrackSetting = Literal[1, 2, 3, "auto"] | None

# Framing characters a reader may put around a read: CR/LF terminators, RS-232 STX/ETX and ESC.
_FRAMING_CHARS = "\r\n\x02\x03\x1b"
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_AIM_ID = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_CODABAR_START_STOP = "ABCDabcdtn*e"
_SENTINEL_TRACK = {"%": 1, ";": 2, "+": 3, "#": 3, "!": 3}
_TRACK_SEGMENT = re.compile(r"([%;+#!])([^?]*)\?")
_AUTO_TRACK_ORDER = (2, 1, 3)
_UNREAD_TRACK = "E"
# PCI guard patterns (docs/kiosk.md#bank-cards-and-card-numbers). Track 1 PANs may carry spaces on
# some cards (e.g. 4-6-5 grouping), so the track-1 pattern admits them and the digit count is
# checked after removing them.
_TRACK1_PAN = re.compile(r"%B([0-9][0-9 ]{10,30}[0-9])\^")
_TRACK2_PAN = re.compile(r";([0-9]{12,19})=")
_MASK = "\u2022\u2022\u2022\u2022"


# ---------------------------------------------------------------------------------------------
# Data types


class TrackStatus(Enum):
    """Why no track data was selected from a magstripe read."""

    UNREAD = "unread"
    MISSING = "missing"


@dataclass(frozen=True)
class CardRule:
    """One `[[credential_rule]]`: how to turn a read into a credential of `kind`."""

    kind: str
    strip_aim: bool = False
    remove_spaces: bool = False
    prefix: str = ""
    suffix: str = ""
    codabar_start_stop: bool = False
    regex: str | None = None
    min_len: int | None = None
    max_len: int | None = None
    check_digit: Literal["luhn", "mod11", "none"] = "none"
    # mod11: weights from the rightmost payload digit leftwards, cycled (None: 2, 3, 4, ...);
    # remainder map: (weighted sum mod 11) -> expected check character ("" = no valid number).
    mod11_weights: tuple[int, ...] | None = None
    mod11_map: tuple[tuple[int, str], ...] | None = None
    track: TrackSetting = None
    pattern: re.Pattern[str] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A rule built in code gets the same guard as one loaded from TOML: a misspelt
        # check_digit must not silently mean "none".
        if self.check_digit not in CHECK_DIGITS:
            raise ValueError(f"check_digit must be one of {', '.join(CHECK_DIGITS)}")
        if self.track is not None and (isinstance(self.track, bool) or self.track not in TRACKS):
            raise ValueError("track must be 1, 2, 3 or 'auto'")
        # Compiled once here; frozen, so set through object.__setattr__.
        object.__setattr__(self, "pattern", re.compile(self.regex) if self.regex else None)


@dataclass(frozen=True)
class CardRules:
    """The ordered rules plus the reader-wide settings: PCI allow-list and sensor digit."""

    rules: tuple[CardRule, ...]
    iin_allow: tuple[str, ...] = ()
    sensor_digit: bool = False


@dataclass(frozen=True, repr=False)
class Credential:
    """An accepted read. `value` is the identifier to look up; repr() shows it masked."""

    kind: str
    value: str
    symbology: str | None
    source: str

    def __repr__(self) -> str:
        return (
            f"Credential(kind={self.kind!r}, value={mask(self.value)!r}, "
            f"symbology={self.symbology!r}, source={self.source!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class Rejection:
    """A refused read: only a reason code and where it came from, never any of the data."""

    reason: str
    source: str

    def __post_init__(self) -> None:
        if self.reason not in REJECTION_REASONS:
            raise ValueError("unknown rejection reason")


# ---------------------------------------------------------------------------------------------
# Check digits


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) over the whole string, check digit last. False for anything not digits."""
    if not _is_ascii_digits(digits) or len(digits) < 2:
        return False
    return _luhn_sum(digits) % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit to append to `payload` (digits only)."""
    if not _is_ascii_digits(payload):
        raise ValueError("Luhn payload must be ASCII digits")
    return str((10 - _luhn_sum(payload + "0") % 10) % 10)


def _luhn_sum(digits: str) -> int:
    # Double every second digit from the right, starting with the one left of the check digit;
    # for a 14-digit library barcode that is digits 1, 3, ..., 13 from the left
    # (docs/kiosk.md#library-barcodes).
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total


def default_mod11_map() -> dict[int, str]:
    """Classic mod 11: check = (11 - sum mod 11) mod 11, with 10 written as "X"."""
    mapping = {}
    for remainder in range(11):
        check = (11 - remainder) % 11
        mapping[remainder] = "X" if check == 10 else str(check)
    return mapping


def mod11_valid(
    value: str,
    weights: Iterable[int] | None = None,
    remainder_map: Mapping[int, str] | None = None,
) -> bool:
    """Mod 11 with the check character last. `weights` apply from the rightmost payload digit
    leftwards and repeat (default 2, 3, 4, ...); `remainder_map` maps (weighted sum mod 11) to
    the expected check character (default: `default_mod11_map()`)."""
    if len(value) < 2 or not _is_ascii_digits(value[:-1]):
        return False
    payload, check = value[:-1], value[-1]
    weight_list = list(weights) if weights is not None else None
    total = 0
    for position, char in enumerate(reversed(payload)):
        weight = weight_list[position % len(weight_list)] if weight_list else position + 2
        total += (ord(char) - 48) * weight
    expected = (remainder_map or default_mod11_map()).get(total % 11, "")
    return expected != "" and check.upper() == expected.upper()


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# ---------------------------------------------------------------------------------------------
# Pipeline steps, in order


def decode_frame(raw: bytes | str) -> str:
    """Bytes become text one char per byte (latin-1 never fails); non-ASCII is caught later."""
    return raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else raw


def strip_framing(text: str, sensor_digit: bool = False) -> str:
    """Step 1: drop CR/LF/CRLF terminators and STX/ETX/ESC at either end, then (if configured)
    the RS-232 card-sensor digit, a "0"/"1" that insertion readers send after the last `?` or
    alone as a status frame."""
    text = text.strip(_FRAMING_CHARS)
    if sensor_digit and text[-1:] in ("0", "1") and (len(text) == 1 or text[-2] == "?"):
        text = text[:-1].strip(_FRAMING_CHARS)
    return text


def is_payment_card(text: str, iin_allow: Iterable[str] = ()) -> bool:
    """Step 2, the PCI guard (docs/kiosk.md#bank-cards-and-card-numbers), over the whole frame: a
    track-1 `%B<PAN>^` whose PAN passes Luhn, or a track-2 `;<PAN>=` whose PAN passes Luhn and whose
    IIN is not allow-listed."""
    for match in _TRACK1_PAN.finditer(text):
        pan = match.group(1).replace(" ", "")
        if 12 <= len(pan) <= 19 and luhn_valid(pan):
            return True
    allowed = tuple(iin_allow)
    for match in _TRACK2_PAN.finditer(text):
        pan = match.group(1)
        if luhn_valid(pan) and not any(pan.startswith(iin) for iin in allowed):
            return True
    return False


def is_printable_ascii(text: str) -> bool:
    """End of step 1: anything outside printable ASCII makes the read `bad_charset`."""
    return _PRINTABLE_ASCII.fullmatch(text) is not None


def strip_aim(text: str) -> tuple[str, str | None]:
    """Step 3a: drop a leading AIM identifier (`]F0`); return the rest and the identifier."""
    if _AIM_ID.match(text):
        return text[3:], text[:3]
    return text, None


def strip_affixes(text: str, prefix: str = "", suffix: str = "") -> str:
    """Step 3b: drop the configured prefix and suffix where present (missing is no error)."""
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if suffix and text.endswith(suffix):
        text = text[: -len(suffix)]
    return text


def is_magstripe(text: str) -> bool:
    """A magstripe read starts with a track start sentinel and has an end sentinel."""
    return text[:1] in _SENTINEL_TRACK and "?" in text


def split_tracks(text: str) -> dict[int, str | None]:
    """Step 4: the tracks of a magstripe read, by number; None marks an unread track (`E`).
    Characters after a `?` that do not start a track (the LRC, a sensor digit) are dropped.
    The first segment for a track number wins."""
    tracks: dict[int, str | None] = {}
    for match in _TRACK_SEGMENT.finditer(text):
        number = _SENTINEL_TRACK[match.group(1)]
        data = match.group(2)
        tracks.setdefault(number, None if data == _UNREAD_TRACK else data)
    return tracks


def select_track(tracks: Mapping[int, str | None], track: TrackSetting) -> str | TrackStatus:
    """Step 4 (end): the data of the rule's track ("auto": 2, then 1, then 3), or UNREAD when
    the chosen track was unread (`track_error`), or MISSING when the read has no such track."""
    order = _AUTO_TRACK_ORDER if track == "auto" else (track,)
    status = TrackStatus.MISSING
    for number in order:
        if number in tracks:
            data = tracks[number]
            if data is not None:
                return data
            status = TrackStatus.UNREAD
    return status


def remove_spaces(text: str) -> str:
    """Step 5a: CLSI editing (`2 3191 00010 5866`) and stray spaces."""
    return text.replace(" ", "")


def strip_codabar_start_stop(text: str) -> str:
    """Step 5b: drop Codabar start/stop characters, only when the length is 16 (14 + 2)."""
    if len(text) == 16 and text[0] in _CODABAR_START_STOP and text[-1] in _CODABAR_START_STOP:
        return text[1:-1]
    return text


def extract_value(text: str, pattern: re.Pattern[str] | None) -> str | None:
    """Step 6a: fullmatch the rule's regex, group 1 is the credential (no regex: all of it)."""
    if pattern is None:
        return text
    match = pattern.fullmatch(text)
    return match.group(1) if match and match.group(1) is not None else None


def length_ok(value: str, min_len: int | None, max_len: int | None) -> bool:
    """Step 6b: the credential's length bounds."""
    return (min_len is None or len(value) >= min_len) and (max_len is None or len(value) <= max_len)


def check_digit_ok(value: str, rule: CardRule) -> bool:
    """Step 6c: the rule's check digit over the whole credential."""
    if rule.check_digit == "luhn":
        return luhn_valid(value)
    if rule.check_digit == "mod11":
        mapping = dict(rule.mod11_map) if rule.mod11_map is not None else None
        return mod11_valid(value, rule.mod11_weights, mapping)
    return True


# ---------------------------------------------------------------------------------------------
# The pipeline


def normalise(raw: bytes | str, rules: CardRules, source: str = "serial") -> Credential | Rejection:
    """Run one read through the fixed pipeline. Never raises; the result never holds raw data
    except the accepted credential value itself."""
    try:
        return _normalise(raw, rules, source)
    except Exception as exc:  # a bug must not put the read into a traceback: log the type only
        log.error("card normalisation failed internally (%s)", type(exc).__name__)
        return Rejection("no_match", source)


def _normalise(raw: bytes | str, rules: CardRules, source: str) -> Credential | Rejection:
    text = strip_framing(decode_frame(raw), rules.sensor_digit)
    # The guard runs before any check that could fail on the frame: whatever else is wrong
    # with a bank-card read, the patron is told it looks like a bank card.
    if is_payment_card(text, rules.iin_allow):
        return Rejection("payment_card", source)
    if len(raw) > MAX_FRAME:
        return Rejection("too_long", source)
    if not is_printable_ascii(text):
        return Rejection("bad_charset", source)

    last_reason: str | None = None
    for rule in rules.rules:
        outcome = _apply_rule(rule, text, source)
        if isinstance(outcome, Credential):
            return outcome
        if outcome is not None:
            last_reason = outcome
    if last_reason is None:
        last_reason = "track_error" if _all_tracks_unread(text) else "no_match"
    return Rejection(last_reason, source)


def _apply_rule(rule: CardRule, text: str, source: str) -> Credential | str | None:
    """One rule over a guarded, printable frame: a Credential, a rejection reason, or None
    when the rule does not apply to this kind of read."""
    text, symbology = strip_aim(text) if rule.strip_aim else (text, None)
    text = strip_affixes(text, rule.prefix, rule.suffix)
    magstripe = is_magstripe(text)
    if (rule.track is not None) != magstripe:
        return None
    if rule.track is not None:
        tracks = split_tracks(text)
        selected = select_track(tracks, rule.track)
        if selected is TrackStatus.UNREAD:
            return "track_error"
        if selected is TrackStatus.MISSING:
            # A swipe where nothing decoded is a bad swipe, whichever track the rule wants.
            return "track_error" if _all_unread(tracks) else "no_match"
        text = selected
        symbology = symbology or "magstripe"
    if rule.remove_spaces:
        text = remove_spaces(text)
    if rule.codabar_start_stop:
        text = strip_codabar_start_stop(text)
    value = extract_value(text, rule.pattern)
    if value is None:
        return "no_match"
    if not length_ok(value, rule.min_len, rule.max_len):
        return "length"
    if not check_digit_ok(value, rule):
        return "check_digit"
    return Credential(rule.kind, value, symbology, source)


def _all_tracks_unread(text: str) -> bool:
    return is_magstripe(text) and _all_unread(split_tracks(text))


def _all_unread(tracks: Mapping[int, str | None]) -> bool:
    return bool(tracks) and all(data is None for data in tracks.values())


# ---------------------------------------------------------------------------------------------
# Logging a credential safely


def mask(value: str) -> str:
    """`••••5866`: the last four characters, and only for values of 8 or more characters (on a
    shorter one, e.g. a prox card number, four characters would give most of it away)."""
    return _MASK + value[-4:] if len(value) >= 8 else _MASK


def credential_fingerprint(install_key: bytes, credential: Credential) -> str:
    """HMAC-SHA256(install_key, kind + ":" + value), 16 hex digits: the only loggable identity
    of a credential (a plain hash of a short number can be brute-forced)."""
    message = f"{credential.kind}:{credential.value}".encode()
    return hmac.new(install_key, message, hashlib.sha256).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Configuration


def default_card_rules() -> CardRules:
    """The library patron barcode of docs/kiosk.md#library-barcodes: 14 digits starting with 2,
    Luhn; AIM identifier, CLSI spaces and Codabar start/stop tolerated."""
    rule = CardRule(
        kind="library_barcode",
        strip_aim=True,
        remove_spaces=True,
        codabar_start_stop=True,
        regex=r"(2\d{13})",
        min_len=14,
        max_len=14,
        check_digit="luhn",
    )
    return CardRules(rules=(rule,))


_RULE_KEYS = frozenset(
    {
        "kind", "strip_aim", "remove_spaces", "prefix", "suffix", "codabar_start_stop", "regex",
        "min_len", "max_len", "check_digit", "mod11_weights", "mod11_map", "track",
    }
)  # fmt: skip
_PCI_KEYS = frozenset({"iin_allow"})
_MAGSTRIPE_KEYS = frozenset({"sensor_digit"})


def load_card_rules(data: Mapping[str, Any]) -> CardRules:
    """Card rules from parsed TOML: the `[[credential_rule]]` list, `[pci]` and `[magstripe]`.
    Other top-level tables are left to their owners. Raises ValueError naming the bad key."""
    raw_rules = data.get("credential_rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ValueError("credential_rule: at least one [[credential_rule]] table is required")
    rules = tuple(_load_rule(entry, index) for index, entry in enumerate(raw_rules, start=1))
    return CardRules(
        rules=rules,
        iin_allow=_load_pci(data.get("pci", {})),
        sensor_digit=_load_magstripe(data.get("magstripe", {})),
    )


def _load_rule(entry: Any, index: int) -> CardRule:
    where = f"credential_rule #{index}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a table")
    _reject_unknown_keys(entry, _RULE_KEYS, where)
    kind = _get(entry, "kind", str, where, None)
    if not kind:
        raise ValueError(f"{where}.kind: required, a non-empty string")
    min_len = _get_count(entry, "min_len", where)
    max_len = _get_count(entry, "max_len", where)
    if min_len is not None and max_len is not None and min_len > max_len:
        raise ValueError(f"{where}.min_len: must not exceed max_len")
    return CardRule(
        kind=kind,
        strip_aim=_get(entry, "strip_aim", bool, where, False),
        remove_spaces=_get(entry, "remove_spaces", bool, where, False),
        prefix=_get(entry, "prefix", str, where, ""),
        suffix=_get(entry, "suffix", str, where, ""),
        codabar_start_stop=_get(entry, "codabar_start_stop", bool, where, False),
        regex=_get_regex(entry, where),
        min_len=min_len,
        max_len=max_len,
        check_digit=_get_choice(entry, "check_digit", CHECK_DIGITS, where, "none"),
        mod11_weights=_get_weights(entry, where),
        mod11_map=_get_mod11_map(entry, where),
        track=_get_choice(entry, "track", TRACKS, where, None),
    )


def _load_pci(table: Any) -> tuple[str, ...]:
    if not isinstance(table, Mapping):
        raise ValueError("pci: must be a table")
    if any(key in table for key in ("enabled", "enable", "guard", "off", "disabled")):
        raise ValueError("pci: the payment-card guard cannot be configured off")
    _reject_unknown_keys(table, _PCI_KEYS, "pci")
    iins = table.get("iin_allow", [])
    if not isinstance(iins, list):
        raise ValueError("pci.iin_allow: must be a list of 6- or 8-digit strings")
    for iin in iins:
        if not isinstance(iin, str) or not _is_ascii_digits(iin) or len(iin) not in (6, 8):
            raise ValueError("pci.iin_allow: every entry must be a 6- or 8-digit string")
    return tuple(iins)


def _load_magstripe(table: Any) -> bool:
    if not isinstance(table, Mapping):
        raise ValueError("magstripe: must be a table")
    _reject_unknown_keys(table, _MAGSTRIPE_KEYS, "magstripe")
    return _get(table, "sensor_digit", bool, "magstripe", False)


def _reject_unknown_keys(table: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in table if key not in known)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")


def _get(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    # bool is a subclass of int; a TOML `true` must not pass as a number or vice versa.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{where}.{key}: must be a {kind.__name__}")
    return value


def _get_count(table: Mapping[str, Any], key: str, where: str) -> int | None:
    value = _get(table, key, int, where, None)
    if value is not None and not 0 <= value <= MAX_FRAME:
        raise ValueError(f"{where}.{key}: must be between 0 and {MAX_FRAME}")
    return value


def _get_choice(
    table: Mapping[str, Any], key: str, choices: tuple[Any, ...], where: str, default: Any
) -> Any:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{where}.{key}: must be one of {allowed}")
    return value


def _get_regex(table: Mapping[str, Any], where: str) -> str | None:
    pattern = _get(table, "regex", str, where, None)
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}.regex: not a valid regular expression ({exc.msg})") from None
    if compiled.groups != 1:
        raise ValueError(f"{where}.regex: needs exactly one capture group (the credential)")
    return pattern


def _get_weights(table: Mapping[str, Any], where: str) -> tuple[int, ...] | None:
    weights = table.get("mod11_weights")
    if weights is None:
        return None
    if (
        not isinstance(weights, list)
        or not weights
        or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in weights)
    ):
        raise ValueError(f"{where}.mod11_weights: must be a non-empty list of positive integers")
    return tuple(weights)


def _get_mod11_map(table: Mapping[str, Any], where: str) -> tuple[tuple[int, str], ...] | None:
    overrides = table.get("mod11_map")
    if overrides is None:
        return None
    if not isinstance(overrides, Mapping):
        raise ValueError(f'{where}.mod11_map: must be a table of remainder = "check char"')
    mapping = default_mod11_map()
    for key, char in overrides.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) <= 10):
            raise ValueError(f'{where}.mod11_map: keys must be remainders "0" to "10"')
        if not isinstance(char, str) or len(char) > 1:
            raise ValueError(f'{where}.mod11_map: values must be one character or ""')
        mapping[int(key)] = char
    return tuple(sorted(mapping.items()))
