"""Which ledger events alert staff, and how often alert mail may go.

An alert is raised for a ledger event: to alert staff about something new, record it as an
event in the trail (`Transaction.event`, in the same transaction as the change it reports)
and add one entry to `ALERT_RULES` below. The mail worker reads the trail in order, so the
alert is as durable as the event: a crash never loses it and never raises it twice.

Alerts are gathered, never stormed (docs/staff.md#e-mail): an alert mail goes at most once per
`ALERT_WINDOW_SECONDS`; alerts raised while one waits go together in one digest; and no more
than `ALERT_MAILS_PER_HOUR` alert mails go in any hour (the rest wait, gathered, for the next).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.states import EventKind, NoticeKind, PaymentState

ALERT_WINDOW_SECONDS = 60.0
ALERT_MAILS_PER_HOUR = 12
HOUR = 3600.0

# A condition rather than an event: the oldest paid payment has waited too long for Alma.
POSTING_LATE = "posting_late"


def _always(detail: dict) -> bool:
    return True


@dataclass(frozen=True)
class AlertRule:
    title: str  # what staff read in the subject line and the digest
    applies: Callable[[dict], bool] = _always  # on the event's detail


ALERT_RULES: dict[str, AlertRule] = {
    PaymentState.ATTENTION: AlertRule("a payment needs staff attention"),
    EventKind.NEEDS_REVIEW: AlertRule("a payment needs review"),
    EventKind.NOTIFICATION: AlertRule(
        "CashNet sent a notification that matches no payment",
        lambda detail: detail.get("kind") == NoticeKind.UNMATCHED),
    POSTING_LATE: AlertRule("a paid payment is waiting too long to be posted to Alma"),
    # Kiosk events carry no payment (proxy/web/kiosk.py, proxy/kiosk_fleet.py).
    "kiosk_cooldown": AlertRule("a kiosk paused card lookups after too many unknown cards"),
    "kiosk_offline": AlertRule("a kiosk has stopped reporting"),
    # Bursar imports carry no payment either (proxy/bursar/importer.py), one event per file.
    "bursar_refused": AlertRule("a bursar payments file was refused whole"),
    "bursar_rejected": AlertRule("rows of a bursar payments file were refused"),
}


def rule_for(kind: str, detail: dict) -> AlertRule | None:
    """The rule that makes this event an alert, if any."""
    rule = ALERT_RULES.get(kind)
    return rule if rule is not None and rule.applies(detail) else None


def title_of(kind: str) -> str:
    rule = ALERT_RULES.get(kind)
    return rule.title if rule else kind.replace("_", " ")


def next_mail_at(recent: Sequence[float], now: float) -> float:
    """When the next alert mail may go, given when the alert mails of the last hour went."""
    recent = sorted(at for at in recent if at > now - HOUR)
    at = recent[-1] + ALERT_WINDOW_SECONDS if recent else now
    if len(recent) >= ALERT_MAILS_PER_HOUR:
        at = max(at, recent[-ALERT_MAILS_PER_HOUR] + HOUR)
    return max(at, now)
