"""The checks a CashNet store notification must pass, in order, each named and with what its
failure does (docs/cashnet.md#notification-checks):

- refuse: checked on arrival, before the body is read (proxy/web/cashnet.py). The sender gets
  an error answer and a security log line; nothing is stored.
- attention: checked on a success, beside its payment and the hand-off stored for it (the
  ledger, through `judge`, inside the transaction that reads the payment). CashNet took the
  money but not for what we handed off, so nothing goes to Alma; the payment waits for staff.
  The reason names the cause (ECHO_CAUSES), so staff know whether amounts, item codes or the
  message itself are at fault.
- review: the payment is flagged for staff to look at. A review check that `keeps` the success
  stops it there: it is recorded beside a payment it must not change (one already settled).
  One that does not lets the success be posted all the same (its reference, lines and amounts
  match). A success whose transaction number was stored before changes nothing whatever its
  checks say (once per transaction); its checks only decide whether staff look.

A new check is one entry in CHECKS plus its test.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from proxy.states import UNSETTLED, NoticeEffect, PaymentState
from proxy.web.security import address_allowed

if TYPE_CHECKING:
    from proxy.config import Settings
    from proxy.notification import Message, StoredLine


class Outcome(StrEnum):
    REFUSE = "refuse"
    ATTENTION = "attention"
    REVIEW = "review"


class Stage(StrEnum):
    """Which notifications a check reads."""

    ARRIVAL = "arrival"  # every notification, before its body is read (an Arrival)
    REPEAT = "repeat"  # a success whose transaction number was stored before (an Echo)
    SUCCESS = "success"  # any other success (an Echo)


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
    """A success's content beside its payment as stored: the hand-off (lines, custcode), the
    state, the CashNet transaction that settled it, and the fields of an earlier notification
    with the same transaction number (None: the first)."""

    message: Message
    stored: list[StoredLine]
    custcode: str
    txn_ref_name: str = ""
    state: str = PaymentState.PENDING
    settled_by: str | None = None
    earlier: dict | None = None


@dataclass(frozen=True)
class Refusal:
    """The answer a refused sender gets, and the security log line."""

    status: int
    code: str
    message: str
    event: str
    log: str


@dataclass(frozen=True)
class Kept:
    """How the ledger keeps a success a review check stopped: the word stored as the
    notification's outcome, and what the notification did."""

    note: str
    effect: NoticeEffect


@dataclass(frozen=True)
class Check:
    """`failure` reads an Arrival (refuse checks) or an Echo (the others) and says why the
    check fails, or "" when it passes. A refuse check also says what the sender gets; a review
    check that stops the success says how it is kept. `stage` defaults to ARRIVAL for a refuse
    check and SUCCESS for the others."""

    name: str
    outcome: Outcome
    failure: Callable[[Any], str]
    refusal: Refusal | None = None
    kept: Kept | None = None
    stage: Stage | None = None

    def __post_init__(self) -> None:
        refuse = self.outcome is Outcome.REFUSE
        if self.stage is None:
            object.__setattr__(self, "stage", Stage.ARRIVAL if refuse else Stage.SUCCESS)
        if refuse != (self.refusal is not None):
            raise ValueError(f"check {self.name}: a refusal goes with, and only with, refuse")
        if refuse != (self.stage is Stage.ARRIVAL):
            raise ValueError(f"check {self.name}: refuse checks, and only they, read arrivals")
        if self.stage is Stage.REPEAT and self.outcome is not Outcome.REVIEW:
            raise ValueError(f"check {self.name}: a repeat changes nothing; review only")
        if self.kept is not None and (self.outcome, self.stage) != (Outcome.REVIEW,
                                                                    Stage.SUCCESS):
            raise ValueError(f"check {self.name}: only a review of a success keeps it")

    @property
    def stops(self) -> bool:
        """Whether a failure stops the success here (else it is posted, flagged)."""
        return self.outcome is Outcome.ATTENTION or self.kept is not None


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


def _repeated_tx(echo: Echo) -> str:
    if echo.earlier == echo.message.recordable() and not echo.message.decision_conflicts():
        return ""
    return f"CashNet sent transaction {echo.message.tx} twice with different contents"


def _settled_without_tx(echo: Echo) -> str:
    # A malformed success must not unsettle money an earlier notification settled (nor wipe
    # its transaction number).
    if echo.message.tx or echo.state in UNSETTLED:
        return ""
    return ("CashNet sent a success without a transaction number for a payment already "
            f"{echo.state}")


def _without_tx(echo: Echo) -> str:
    return "" if echo.message.tx else "success without a CashNet transaction number"


def _double_charge(echo: Echo) -> str:
    if echo.settled_by is None and echo.state in UNSETTLED:
        return ""
    earlier = echo.settled_by or "an earlier notification"
    return (f"second CashNet success (transaction {echo.message.tx}) for a payment already "
            f"settled by {earlier}: refund")


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
    Check("repeated_tx", Outcome.REVIEW, _repeated_tx, stage=Stage.REPEAT),
    Check("settled_without_tx", Outcome.REVIEW, _settled_without_tx,
          kept=Kept("no tx", NoticeEffect.RECORDED)),
    Check("without_tx", Outcome.ATTENTION, _without_tx),
    Check("double_charge", Outcome.REVIEW, _double_charge,
          kept=Kept("double charge", NoticeEffect.DOUBLE_CHARGE)),
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


@dataclass(frozen=True)
class Verdict:
    """What the checks make of a success: the check that stops it (None: it goes on) with its
    reason, and what staff should look at although it goes on."""

    stop: Check | None = None
    reason: str = ""
    review: str = ""


def judge(echo: Echo) -> Verdict:
    """Run the checks of the success's stage, in order, up to the first that stops it. An echo
    that cannot even be read fails its check as "unreadable lines"."""
    stage = Stage.SUCCESS if echo.earlier is None else Stage.REPEAT
    review = ""
    for check in CHECKS:
        if check.stage is not stage:
            continue
        try:
            reason = check.failure(echo)
        except (ValueError, ArithmeticError) as exc:
            reason = f"unreadable lines ({type(exc).__name__})"
        if reason and check.stops:
            return Verdict(check, reason, review)
        review = review or reason
    return Verdict(review=review)


def echo_mismatch(echo: Echo) -> str:
    """Why the first attention check fails, or "" when the success may be posted. May raise
    ValueError or ArithmeticError for an echo that cannot even be read."""
    return _first_failure(echo, lambda check: check.outcome is Outcome.ATTENTION)


def echo_review(echo: Echo) -> str:
    """Why the first review check that lets the success be posted fails, or "" when nothing
    needs a look."""
    return _first_failure(echo, lambda check: check.outcome is Outcome.REVIEW and not check.stops)


def _first_failure(echo: Echo, chosen: Callable[[Check], bool]) -> str:
    for check in CHECKS:
        if check.stage is Stage.SUCCESS and chosen(check) and (reason := check.failure(echo)):
            return reason
    return ""
