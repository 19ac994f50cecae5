"""Fault injection for the Alma emulator (docs/sandbox.md#alma-fault-injection): settings,
throttling and rules.

`FaultSettings.parse` validates what a test sends to `PUT /_emulator/faults` (an unknown knob is
an error, so a typo cannot silently test nothing). `Gate` holds the moving parts: the sliding
one-second window, the daily count, each rule's `next` countdown and the seeded RNGs.

Besides the spec's knobs, five model what a go-live check must tell apart (the project's own
decisions, as Alma's exact answers are open questions):
  `key_refusal_status`  the HTTP status of a refused key: 400 (default), 401 or 403, with the
                        same bodies (`Invalid API Key` as text, `UNAUTHORIZED` as JSON);
  `api_keys`            extra keys, `{key: kind}`: `no_users` (a key without the Users area:
                        `UNAUTHORIZED` on every users call) or `other_institution` (a key of
                        another institution on this host: none of these patrons exist for it);
  `date_offset_seconds` the `Date` header sent N seconds off the real time (0: the server's own);
  `date_text`           a `Date` header that is not a date: this text, sent verbatim instead;
  `jwks_es256`          false serves the key set without its ES256 (EC P-256) keys.
Three model what real answers were seen to do, beside the well-behaved defaults:
  `throttle_status`     the HTTP status of a `PER_SECOND_THRESHOLD` refusal: 429 (default) or
                        400;
  `omit_empty_keys`     leave a fee's `title`, `barcode`, `owner` and `comment` out when they
                        have no value, instead of writing null;
  `date_style`          `iso` (default) or `epoch_ms`: a fee's `creation_time` and
                        `status_time` as epoch milliseconds, as the old API wrote them.
A key of another region is simply unknown here (`Invalid API Key`): run a second sandbox
seeded with another institution to stand for the other region's host.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.alma_json import NUMBER_STYLES
from sandbox.alma_render import DATE_STYLES, ERROR_STYLES, FeeStyle

# `slow` delays only the matching calls by the rule's `latency_ms`, then processes them (so a
# client that gave up meanwhile still finds the call applied).
MODES = ("http_5xx", "drop", "commit_then_500", "commit_then_drop", "alma_error", "slow")
KNOBS = {
    "seed", "latency_ms", "latency_jitter_ms", "per_second_limit", "daily_limit", "rules",
    "error_style", "number_style", "zero_fee_currency",
    "key_refusal_status", "api_keys", "date_offset_seconds", "date_text", "jwks_es256",
    "throttle_status", "omit_empty_keys", "date_style",
}
KEY_REFUSAL_STATUSES = (400, 401, 403)
THROTTLE_STATUSES = (429, 400)
API_KEY_KINDS = ("no_users", "other_institution")
DEFAULT_PER_SECOND_LIMIT = 25
MAX_DATE_TEXT = 100


def _count(value: Any, name: str, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return value


def _date_text(value: Any) -> str | None:
    """Printable ASCII only: anything else could not be sent as a header (or would split it)."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_DATE_TEXT \
            or not all(" " <= char <= "~" for char in value):
        raise ValueError(f"date_text must be 1 to {MAX_DATE_TEXT} printable ASCII characters")
    return value


def _api_keys(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("api_keys must be an object {key: kind}")
    for key, kind in value.items():
        if not key or kind not in API_KEY_KINDS:
            raise ValueError(f"api_keys: each kind must be one of {API_KEY_KINDS}")
    return dict(value)


@dataclass
class Rule:
    """One `rules[]` entry; `remaining` is the live `next` countdown (None = unlimited)."""

    path: str
    mode: str
    method: str | None = None
    status: int | None = None
    code: str | None = None
    remaining: int | None = None
    probability: float | None = None
    latency_ms: int = 0

    @classmethod
    def parse(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            raise ValueError(f"a rule must be an object, got {data!r}")
        unknown = set(data) - {"match", "mode", "status", "code", "next", "probability",
                               "latency_ms"}
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        match = data.get("match") or {}
        if not isinstance(match, dict) or not isinstance(match.get("path", "*"), str):
            raise ValueError(f"rule match must be {{method?, path}}, got {match!r}")
        mode = data.get("mode")
        if mode not in MODES:
            raise ValueError(f"rule mode must be one of {MODES}, got {mode!r}")
        status = data.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ValueError(f"rule status must be an HTTP status, got {status!r}")
        probability = data.get("probability")
        if probability is not None:
            if isinstance(probability, bool) or not isinstance(probability, int | float | Decimal):
                raise ValueError(f"probability must be a number, got {probability!r}")
            probability = float(probability)  # a chance, not money
            if not 0 <= probability <= 1:
                raise ValueError(f"probability must be within 0..1, got {probability!r}")
        method = match.get("method")
        return cls(
            path=match.get("path", "*"),
            mode=mode,
            method=method.upper() if isinstance(method, str) else None,
            status=status,
            code=str(data["code"]) if data.get("code") is not None else None,
            remaining=_count(data.get("next"), "next", allow_none=True),
            probability=probability,
            latency_ms=_count(data.get("latency_ms", 0), "latency_ms", allow_none=False) or 0,
        )

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    @property
    def live(self) -> bool:
        return self.remaining is None or self.remaining > 0


@dataclass
class FaultSettings:
    seed: Any = None
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    per_second_limit: int | None = DEFAULT_PER_SECOND_LIMIT
    daily_limit: int | None = None
    rules: list[Rule] = field(default_factory=list)
    error_style: str = "plain"
    number_style: str = "float"
    zero_fee_currency: str | None = None
    key_refusal_status: int = 400
    api_keys: dict[str, str] = field(default_factory=dict)
    date_offset_seconds: int = 0
    date_text: str | None = None
    jwks_es256: bool = True
    throttle_status: int = 429
    omit_empty_keys: bool = False
    date_style: str = "iso"

    @property
    def fee_style(self) -> FeeStyle:
        return FeeStyle(omit_empty=self.omit_empty_keys, date_style=self.date_style)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> FaultSettings:
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(data) - KNOBS
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        seed = data.get("seed")
        if seed is not None and not isinstance(seed, int | str):
            seed = str(seed)  # random.Random takes int or str seeds only
        settings = cls(
            seed=seed,
            latency_ms=_count(data.get("latency_ms", 0), "latency_ms", allow_none=False) or 0,
            latency_jitter_ms=_count(
                data.get("latency_jitter_ms", 0), "latency_jitter_ms", allow_none=False) or 0,
            per_second_limit=_count(
                data.get("per_second_limit", DEFAULT_PER_SECOND_LIMIT), "per_second_limit",
                allow_none=True),
            daily_limit=_count(data.get("daily_limit"), "daily_limit", allow_none=True),
            rules=[Rule.parse(rule) for rule in data.get("rules") or []],
            error_style=data.get("error_style", "plain"),
            number_style=data.get("number_style", "float"),
            zero_fee_currency=data.get("zero_fee_currency"),
            key_refusal_status=data.get("key_refusal_status", 400),
            api_keys=_api_keys(data.get("api_keys") or {}),
            date_offset_seconds=_whole(data.get("date_offset_seconds", 0), "date_offset_seconds"),
            date_text=_date_text(data.get("date_text")),
            jwks_es256=data.get("jwks_es256", True),
            throttle_status=data.get("throttle_status", 429),
            omit_empty_keys=data.get("omit_empty_keys", False),
            date_style=data.get("date_style", "iso"),
        )
        if settings.error_style not in ERROR_STYLES:
            raise ValueError(f"error_style must be one of {ERROR_STYLES}")
        if settings.number_style not in NUMBER_STYLES:
            raise ValueError(f"number_style must be one of {NUMBER_STYLES}")
        if settings.key_refusal_status not in KEY_REFUSAL_STATUSES:
            raise ValueError(f"key_refusal_status must be one of {KEY_REFUSAL_STATUSES}")
        if not isinstance(settings.jwks_es256, bool):
            raise ValueError("jwks_es256 must be true or false")
        if settings.throttle_status not in THROTTLE_STATUSES:
            raise ValueError(f"throttle_status must be one of {THROTTLE_STATUSES}")
        if not isinstance(settings.omit_empty_keys, bool):
            raise ValueError("omit_empty_keys must be true or false")
        if settings.date_style not in DATE_STYLES:
            raise ValueError(f"date_style must be one of {DATE_STYLES}")
        return settings


@dataclass
class Verdict:
    """What the gate decided for one request: `fault` is None when it goes through untouched."""

    fault: str | None = None
    rule: Rule | None = None


class Gate:
    """Throttling (checked first) and rules, in the order of
    docs/sandbox.md#alma-fault-injection."""

    def __init__(
        self, settings: FaultSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or FaultSettings()
        self._clock = clock  # seconds; the real monotonic clock except in unit tests
        self._rng = random.Random(self.settings.seed)
        self._latency_rng = random.Random(f"latency:{self.settings.seed}")
        self._window: deque[float] = deque()
        self._daily = 0

    def latency_seconds(self) -> float:
        jitter = self.settings.latency_jitter_ms
        extra = self._latency_rng.uniform(0, jitter) if jitter else 0.0
        return (self.settings.latency_ms + extra) / 1000

    def admit(self, method: str, path: str, *, throttled: bool) -> Verdict:
        """Decide one request. Only requests that get past the thresholds are counted."""
        if throttled:
            limit = self.settings.per_second_limit
            now = self._clock()
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if limit is not None and len(self._window) >= limit:
                return Verdict("per_second_limit")
            daily = self.settings.daily_limit
            if daily is not None and self._daily >= daily:
                return Verdict("daily_limit")
            self._window.append(now)
            self._daily += 1
        for rule in self.settings.rules:
            if not rule.live or not rule.matches(method, path):
                continue
            if rule.probability is not None and self._rng.random() >= rule.probability:
                continue  # this rule did not fire this time; a later one still may
            if rule.remaining is not None:
                rule.remaining -= 1
            return Verdict(rule.mode, rule)
        return Verdict()
