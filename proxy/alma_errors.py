"""What Alma's answers mean: the exceptions the client raises, and one table from Alma's error
codes to the exception and its meaning in plain words.

The exception decides what the caller does (tell the patron, retry later, read the fee before
paying again), and the patron's wording follows from the exception (proxy/web/common.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class AlmaError(Exception):
    """Alma refused or failed a call. `code` is Alma's errorCode when it sent one."""

    def __init__(self, message: str, code: str = "", tracking_id: str = "", status: int = 0):
        super().__init__(message)
        self.code = code
        self.tracking_id = tracking_id
        self.status = status


class AlmaUserNotFound(AlmaError):
    """No patron with that identifier."""


class AlmaFeeNotFound(AlmaError):
    """No such fee for that patron."""


class AlmaInvalidRequest(AlmaError):
    """Alma found a parameter invalid (for a payment: usually a stale amount)."""


class AlmaNotPayable(AlmaError):
    """The library has restricted this fee from API payment: pay at the desk."""


class AlmaConfigError(AlmaError):
    """The API key is unknown, read-only or lacks the Users area: staff must fix configuration."""


class AlmaInvalidCredentials(AlmaError):
    """Guest sign-in failed (wrong password, or no such internal account: never say which)."""


class AlmaUnavailable(AlmaError):
    """A transient failure: connection trouble, a timeout, a 5xx, throttling. Try again later.
    For a payment call, raised only when the request certainly never reached Alma."""

    def __init__(self, message: str, *, daily_limit: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.daily_limit = daily_limit


class AlmaOutcomeUnknown(AlmaError):
    """A payment call that may or may not have been applied. Read the fee before retrying.
    `in_flight` means Alma may still be working on it (timeout, dropped connection): wait
    a little longer than the read timeout before reading."""

    def __init__(self, message: str, *, in_flight: bool, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.in_flight = in_flight


@dataclass(frozen=True)
class Meaning:
    error: type[AlmaError]
    meaning: str  # in plain words; the exception's message when Alma sends none


_USER_NOT_FOUND = Meaning(AlmaUserNotFound, "user not found")
_KEY_REFUSED = Meaning(AlmaConfigError, "Alma refused the API key for this call")

# Alma's error codes (errorCode, always a string). A code not listed is a plain AlmaError.
CODES: dict[str, Meaning] = {
    # Which of the three a call sends is ambiguous; they all mean the same.
    "401861": _USER_NOT_FOUND,
    "401651": _USER_NOT_FOUND,
    "401890": _USER_NOT_FOUND,
    "401665": Meaning(AlmaFeeNotFound, "fee not found"),
    "401666": Meaning(AlmaInvalidRequest, "parameter not valid"),
    "401866": Meaning(AlmaInvalidCredentials, "user authentication failed"),
    "402119": Meaning(AlmaUnavailable, "Alma general error"),
    "60340": Meaning(AlmaNotPayable, "fee restricted from online payment"),
    "60258": _KEY_REFUSED,
    "UNAUTHORIZED": _KEY_REFUSED,
}

# Throttling is told by the HTTP status as well as by these codes: Alma has been seen sending
# `PER_SECOND_THRESHOLD` with HTTP 400 as well as with 429.
THROTTLE_CODES = ("PER_SECOND_THRESHOLD", "DAILY_THRESHOLD")


def is_throttle(error: AlmaError) -> bool:
    """Alma refused the call because of its thresholds (per second or per day), whatever the
    HTTP status it chose for saying so."""
    return isinstance(error, AlmaUnavailable) and (
        error.status == 429 or error.code in THROTTLE_CODES)


def error_for(status: int, code: str, message: str, tracking_id: str) -> AlmaError:
    """The exception for an answer that is not a success: throttling and server trouble by
    status first, then by code."""
    kwargs: dict[str, Any] = {"code": code, "tracking_id": tracking_id, "status": status}
    if status == 429 or code in THROTTLE_CODES:
        return AlmaUnavailable(f"Alma is throttling requests ({code or status})",
                               daily_limit=code == "DAILY_THRESHOLD", **kwargs)
    if status >= 500:
        return AlmaUnavailable(f"Alma answered {status}", **kwargs)
    if code in CODES:
        known = CODES[code]
        return known.error(message or known.meaning, **kwargs)
    if code:
        return AlmaError(message or f"Alma error {code}", **kwargs)
    return AlmaUnavailable(f"unexpected answer from Alma ({status})", status=status)
