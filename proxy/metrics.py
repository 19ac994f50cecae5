"""Prometheus metrics (docs/operations.md#metrics), defined in one place.

Two kinds, so that several processes sharing one ledger still report one truth:

- **Counted as things happen**, per process: CashNet notifications, Alma calls, rate-limiter
  waits, the paid → posted latency. When `PROMETHEUS_MULTIPROC_DIR` is set, prometheus_client
  keeps these in files in that folder and a scrape of any process sums every process's.
- **Read from the ledger at scrape time**: payments by state and channel, attention, needs
  review, the oldest paid payment still waiting for Alma, kiosk sessions. Every process reads
  the same ledger, so any process answers for the whole installation, restarts included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.kiosk_fleet import PRINTER_STATES, READER_STATES, KioskStatus
from proxy.ledger.figures import LedgerFigures
from proxy.states import STATES, NoticeEffect, PaymentState

# `*_created` series say when a counter was made: noise for every panel and rule here.
disable_created_metrics()

COUNTED = CollectorRegistry()

NOTIFICATION_REFUSALS = ("postback_bad_token", "postback_bad_source")
NOTIFICATION_OUTCOMES = (*(effect.value for effect in NoticeEffect), *NOTIFICATION_REFUSALS)
ALMA_OPERATIONS = ("get_user", "list_fees", "get_fee", "pay_fee", "authenticate", "other")
ALMA_OUTCOMES = ("ok", "refused", "throttled", "error", "unreachable")

NOTIFICATIONS = Counter(
    "patronpay_notifications", "CashNet notifications received, by what recording one did "
    "(paid, duplicate, attention, ...) or why it was refused (postback_bad_token, "
    "postback_bad_source).", ["outcome"], registry=COUNTED)
ALMA_CALLS = Counter(
    "patronpay_alma_calls", "Calls to the Alma API by operation and outcome: ok, refused "
    "(4xx), throttled (429), error (5xx), unreachable (no answer).",
    ["operation", "outcome"], registry=COUNTED)
ALMA_CALL_SECONDS = Histogram(
    "patronpay_alma_call_duration_seconds", "How long Alma took to answer, by operation.",
    ["operation"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30), registry=COUNTED)
RATE_LIMIT_WAITS = Counter(
    "patronpay_alma_rate_limit_waits", "Alma calls this process's rate limiter held back.",
    registry=COUNTED)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "patronpay_alma_rate_limit_wait_seconds", "Time Alma calls spent held back by the rate "
    "limiter.", registry=COUNTED)
PAID_TO_POSTED_SECONDS = Histogram(
    "patronpay_paid_to_posted_seconds", "From CashNet's success notification until every fee "
    "share is in Alma.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600, 72 * 3600),
    registry=COUNTED)

# Every series exists from the start, at zero: rules and panels see a zero, not a gap. The
# Alma calls' series are kept by their labels too: `labels()` checks its arguments and takes a
# lock every time, twice for each Alma call of a fees page.
for _outcome in NOTIFICATION_OUTCOMES:
    NOTIFICATIONS.labels(outcome=_outcome)
_ALMA_CALL_SECONDS = {_operation: ALMA_CALL_SECONDS.labels(operation=_operation)
                      for _operation in ALMA_OPERATIONS}
_ALMA_CALLS = {(_operation, _outcome): ALMA_CALLS.labels(operation=_operation, outcome=_outcome)
               for _operation in ALMA_OPERATIONS for _outcome in ALMA_OUTCOMES}


# --- what the instrumented modules call ---

def notification(outcome: str) -> None:
    NOTIFICATIONS.labels(outcome=outcome).inc()


def alma_call(method: str, path: str, op: str, status: int | None, seconds: float) -> None:
    operation = alma_operation(method, path, op)
    _ALMA_CALLS[operation, alma_outcome(status)].inc()
    if status is not None:
        _ALMA_CALL_SECONDS[operation].observe(seconds)


def rate_limit_wait(seconds: float) -> None:
    RATE_LIMIT_WAITS.inc()
    RATE_LIMIT_WAIT_SECONDS.inc(seconds)


def payment_posted(paid_at: float | None, now: float) -> None:
    if paid_at is not None:
        PAID_TO_POSTED_SECONDS.observe(max(0.0, now - paid_at))


def alma_operation(method: str, path: str, op: str) -> str:
    """The call's name from its shape (a fixed set: user ids never become label values)."""
    if op:
        return {"pay": "pay_fee", "auth": "authenticate"}.get(op, "other")
    segments = path.strip("/").split("/")
    if method != "GET" or segments[0] != "users":
        return "other"
    shapes = {2: "get_user", 3: "list_fees", 4: "get_fee"}
    if len(segments) > 2 and segments[2] != "fees":
        return "other"
    return shapes.get(len(segments), "other")


def alma_outcome(status: int | None) -> str:
    if status is None:
        return "unreachable"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "error"
    return "refused" if status >= 400 else "ok"


# --- the scrape ---

class LedgerCollector:
    """The ledger's figures as gauges, read when Prometheus asks."""

    def __init__(self, read: Callable[[], LedgerFigures], kiosks: Iterable[str],
                 clock: Callable[[], float] = time.time,
                 fleet: Callable[[], list[KioskStatus]] | None = None) -> None:
        self.read = read
        self.kiosk_channels = [f"kiosk:{kiosk}" for kiosk in kiosks]
        self.clock = clock
        self.fleet = fleet  # the kiosks' own reports (proxy/kiosk_fleet.py)

    def collect(self) -> Iterator[Metric]:
        readable = GaugeMetricFamily(
            "patronpay_ledger_readable", "1 when this scrape could read the ledger.")
        try:
            figures = self.read()
        except Exception:  # a scrape must still answer, with the counters and this zero
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        yield from self._payments(figures)
        yield from self._kiosks(figures)
        if self.fleet is not None:
            yield from kiosk_state_metrics(self.fleet())

    def _payments(self, figures: LedgerFigures) -> Iterator[Metric]:
        payments = GaugeMetricFamily(
            "patronpay_payments", "Payments in the ledger by state and channel (web or "
            "kiosk:<id>).", labels=["state", "channel"])
        channels = {"web"} | {channel for _, channel in figures.payments}
        for channel in sorted(channels):
            for state in STATES:
                payments.add_metric([state, channel], figures.payments.get((state, channel), 0))
        yield payments

        def total(state: PaymentState) -> int:
            return sum(n for (s, _), n in figures.payments.items() if s == state)

        yield GaugeMetricFamily(
            "patronpay_attention_payments", "Payments in `attention`: money CashNet took that "
            "could not be applied in Alma without staff.", value=total(PaymentState.ATTENTION))
        yield GaugeMetricFamily(
            "patronpay_needs_review_payments", "Payments flagged for review (a double charge, "
            "a transaction sent twice with different contents).", value=figures.needs_review)
        yield GaugeMetricFamily(
            "patronpay_unposted_paid_payments", "Paid payments not yet wholly in Alma.",
            value=total(PaymentState.PAID))
        oldest = figures.oldest_paid_at
        yield GaugeMetricFamily(
            "patronpay_oldest_unposted_paid_seconds", "Age of the oldest paid payment not yet "
            "wholly in Alma, since CashNet's notification (0 when none waits).",
            value=max(0.0, self.clock() - oldest) if oldest is not None else 0.0)

    def _kiosks(self, figures: LedgerFigures) -> Iterator[Metric]:
        channels = sorted(set(self.kiosk_channels) | set(figures.kiosk_last_session_at))
        sessions = GaugeMetricFamily(
            "patronpay_kiosk_sessions_open", "Patron sessions open at each kiosk.",
            labels=["kiosk"])
        last = GaugeMetricFamily(
            "patronpay_kiosk_last_session_timestamp_seconds", "When each kiosk last opened a "
            "session (a card read that found a patron); 0 when the ledger has none.",
            labels=["kiosk"])
        for channel in channels:
            kiosk = channel.removeprefix("kiosk:")
            sessions.add_metric([kiosk], figures.kiosk_sessions_open.get(channel, 0))
            last.add_metric([kiosk], figures.kiosk_last_session_at.get(channel, 0.0))
        yield sessions
        yield last


def kiosk_state_metrics(statuses: list[KioskStatus]) -> Iterator[Metric]:
    """Each kiosk's state, reader and printer from its last report, one series per possible
    value (1 for the current one), and when it was last heard from."""
    families = [
        ("patronpay_kiosk_state", "Each kiosk: online, offline (not heard from for five "
         "minutes) or never heard from.", ("online", "offline", "never_heard"),
         lambda s: s.state),
        ("patronpay_kiosk_reader_state", "Each kiosk's card reader, as last reported.",
         sorted(READER_STATES), lambda s: s.report.reader if s.report else None),
        ("patronpay_kiosk_printer_state", "Each kiosk's receipt printer, as last reported.",
         sorted(PRINTER_STATES), lambda s: s.report.printer if s.report else None),
    ]
    for name, help_text, values, current in families:
        family = GaugeMetricFamily(name, help_text, labels=["kiosk", "state"])
        for status in statuses:
            for value in values:
                family.add_metric([status.kiosk_id, value], int(current(status) == value))
        yield family
    heard = GaugeMetricFamily(
        "patronpay_kiosk_last_heard_timestamp_seconds", "When each kiosk last reported; 0 "
        "when never.", labels=["kiosk"])
    for status in statuses:
        heard.add_metric([status.kiosk_id], status.heard_at or 0.0)
    yield heard


class _Scrape:
    def __init__(self, collectors: Iterable) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def counted_collector():
    """This process's counters, or every process's when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return MultiProcessCollector(CollectorRegistry())
    return COUNTED


def exposition(ledger: LedgerCollector) -> tuple[bytes, str]:
    """The text Prometheus reads, and its content type."""
    return generate_latest(_Scrape([counted_collector(), ledger])), CONTENT_TYPE_LATEST
