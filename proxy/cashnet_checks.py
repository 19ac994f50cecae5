"""The checks a CashNet store notification must pass, in order, each named and with what its
failure does:

- refuse: checked on arrival, before the body is read (proxy/web/cashnet.py). The sender gets
  an error answer and a security log line; nothing is stored.
- attention: checked on a success, against the hand-off stored for its payment (the ledger,
  through proxy.notification.line_mismatch). CashNet took the money but not for what we handed
  off, so nothing goes to Alma; the payment waits for staff. The reason names the cause
  (ECHO_CAUSES), so staff know whether amounts, item codes or the message itself are at fault.
- review: checked on a success whose reference, lines and amounts match (through
  proxy.notification.echo_review). The payment is posted, and flagged for staff to look at.

A new check is one entry in CHECKS plus its test.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from proxy.web.security import address_allowed

if TYPE_CHECKING:
    from proxy.config import Settings
    from proxy.notification import Message, StoredLine


class Outcome(StrEnum):
    REFUSE = "refuse"
    ATTENTION = "attention"
    REVIEW = "review"


# How every attention reason begins: what about the echo is wrong.
ECHO_CAUSES = ("conflicting values", "line count mismatch", "item code mismatch",
               "amount mismatch", "unreadable lines")


@dataclass(frozen=True)
class Arrival:
    """A notification as it arrives: the token in its URL and the address it came from."""

    token: str
    peer: str
    settings: Settings


@dataclass(frozen=True)
class Echo:
    """A success's content beside the hand-off we stored for its payment."""

    message: Message
    stored: list[StoredLine]
    custcode: str
    txn_ref_name: str = ""


@dataclass(frozen=True)
class Refusal:
    """The answer a refused sender gets, and the security log line."""

    status: int
    code: str
    message: str
    event: str
    log: str


@dataclass(frozen=True)
class Check:
    """`failure` reads an Arrival (refuse checks) or an Echo (attention checks) and says why
    the check fails, or "" when it passes. A refuse check also says what the sender gets."""

    name: str
    outcome: Outcome
    failure: Callable[[Any], str]
    refusal: Refusal | None = None

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.REFUSE) != (self.refusal is not None):
            raise ValueError(f"check {self.name}: a refusal goes with, and only with, refuse")


def _url_token(arrival: Arrival) -> str:
    settings = arrival.settings
    candidates = [settings.cashnet_postback_token, settings.cashnet_postback_token_previous]
    sent = arrival.token.encode()
    if any(c and hmac.compare_digest(sent, c.encode()) for c in candidates):
        return ""
    return "wrong token"


def _source_address(arrival: Arrival) -> str:
    allowed = arrival.settings.cashnet_allowed_ips
    if not allowed or address_allowed(arrival.peer, allowed):  # an empty list disables it
        return ""
    return "address not allowed"


def _consistent_fields(echo: Echo) -> str:
    # custcode is left to its own check: a differing custcode never stops a payment.
    conflicts = [name for name in echo.message.decision_conflicts(echo.txn_ref_name)
                 if name != "custcode"]
    return f"conflicting values for {', '.join(conflicts)}" if conflicts else ""


def _line_count(echo: Echo) -> str:
    echoed, issued = len(echo.message.lines()), len(echo.stored)
    if echoed == issued:
        return ""
    return f"line count mismatch: {echoed} lines echoed, {issued} issued"


def _lines(echo: Echo) -> str:
    pairs = zip(echo.message.lines(), echo.stored, strict=True)
    for number, ((code, amount), line) in enumerate(pairs, start=1):
        if code.lower() != line.item_code.lower():
            return (f"item code mismatch: line {number}: item code {code!r}, "
                    f"issued {line.item_code!r}")
        if amount is None or amount != line.amount:
            shown = "unreadable" if amount is None else amount
            return f"amount mismatch: line {number}: amount {shown}, issued {line.amount}"
    return ""


def _custcode(echo: Echo) -> str:
    """Compared trimmed and without regard to case; every value, when it came more than once.
    Nothing to compare when we sent no custcode."""
    ours = echo.custcode.strip().casefold()
    echoed = echo.message.repeats.get("custcode") or (echo.message.get("custcode"),)
    differing = [v.strip() for v in echoed if v.strip() and v.strip().casefold() != ours]
    if not ours or not differing:
        return ""
    return f"custcode {differing[0]!r} echoed, {echo.custcode!r} issued"


CHECKS: tuple[Check, ...] = (
    Check("url_token", Outcome.REFUSE, _url_token, Refusal(
        404, "not_found", "Not found.",
        "postback_bad_token", "notification with a wrong token")),
    Check("source_address", Outcome.REFUSE, _source_address, Refusal(
        403, "forbidden_source", "This address may not send notifications.",
        "postback_bad_source", "notification from a disallowed address")),
    Check("consistent_fields", Outcome.ATTENTION, _consistent_fields),
    Check("line_count", Outcome.ATTENTION, _line_count),
    Check("lines", Outcome.ATTENTION, _lines),
    Check("custcode", Outcome.REVIEW, _custcode),
)


def refusal(arrival: Arrival) -> Refusal | None:
    """The answer for the first arrival check that fails, or None to go on."""
    for check in CHECKS:
        if check.outcome is Outcome.REFUSE and check.failure(arrival):
            return check.refusal
    return None


def echo_mismatch(echo: Echo) -> str:
    """Why the first attention check fails, or "" when the success may be posted. May raise
    ValueError or ArithmeticError for an echo that cannot even be read."""
    return _first_failure(echo, Outcome.ATTENTION)


def echo_review(echo: Echo) -> str:
    """Why the first review check fails, or "" when nothing needs a look."""
    return _first_failure(echo, Outcome.REVIEW)


def _first_failure(echo: Echo, outcome: Outcome) -> str:
    for check in CHECKS:
        if check.outcome is outcome and (reason := check.failure(echo)):
            return reason
    return ""
