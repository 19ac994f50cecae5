"""The one patron session a kiosk holds, in memory only (never on disk), with wall-clock
deadlines (docs/kiosk.md#session-reset).

The browser holds only `handle`, a random kiosk-local name for the session; the proxy's cookie
and CSRF token stay here. `due()` says when the agent must end the session by itself:
- `idle`: the page showed no life for idle + warning + 5 s (its JavaScript may have died);
- `payment_timeout`: the patron has been on CashNet's page longer than `payment_max`;
- `no_return`: the proxy reports a final payment state but the browser has not come back
  within `after_result`.
Pure and clock-injected, so every deadline is testable without sleeping.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.proxy_client import ProxySession


@dataclass
class KioskPayment:
    id: str
    started_at: float
    returned: bool = False  # the browser is back on the kiosk's return page
    result_at: float | None = None  # when the proxy first reported a final state
    receipt_token: str = field(default="", repr=False)  # the proxy's web receipt for it
    printed: bool = False  # a receipt came out of the kiosk's printer


@dataclass
class PatronSession:
    handle: str
    proxy: ProxySession = field(repr=False)
    first_name: str
    fingerprint: str  # of the credential that opened it (a re-scan of the same card)
    opened_at: float
    last_activity: float
    payment: KioskPayment | None = None
    # Item titles by fee id, kept only when receipts print titles (PATRONPAY_KIOSK_RECEIPT_TITLES).
    titles: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def paying(self) -> bool:
        """The patron is on CashNet's page: the kiosk's own pages are not showing."""
        return self.payment is not None and not self.payment.returned


class SessionHolder:
    def __init__(self, *, lifetime_seconds: float, payment_max_seconds: float,
                 after_result_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.payment_max_seconds = payment_max_seconds
        self.after_result_seconds = after_result_seconds
        self.clock = clock
        self._session: PatronSession | None = None

    @property
    def current(self) -> PatronSession | None:
        return self._session

    def matches(self, handle: str | None) -> PatronSession | None:
        """The current session if the page's handle names it."""
        session = self._session
        if session is None or not handle or not secrets.compare_digest(
                handle.encode(), session.handle.encode()):
            return None
        return session

    def open(self, proxy: ProxySession, first_name: str, fingerprint: str) -> PatronSession:
        """Hold a new session (the caller has ended any earlier one with `end()` first)."""
        now = self.clock()
        self._session = PatronSession(secrets.token_urlsafe(24), proxy, first_name,
                                      fingerprint, now, now)
        return self._session

    def end(self) -> PatronSession | None:
        """Forget the session (patron, fees, payment reference); returns what was held."""
        session, self._session = self._session, None
        return session

    def touch(self) -> None:
        if self._session is not None:
            self._session.last_activity = self.clock()

    def start_payment(self, payment_id: str) -> None:
        if self._session is not None:
            self._session.payment = KioskPayment(payment_id, self.clock())
            self._session.last_activity = self._session.payment.started_at

    def browser_returned(self) -> None:
        if self._session is not None and self._session.payment is not None:
            self._session.payment.returned = True
            self._session.last_activity = self.clock()

    def result_known(self) -> None:
        """The proxy reports a final state for the payment in progress."""
        session = self._session
        if session is not None and session.payment is not None and \
                session.payment.result_at is None:
            session.payment.result_at = self.clock()

    def deadline(self) -> tuple[float, str] | None:
        """When the agent must end the current session by itself, and why."""
        session = self._session
        if session is None:
            return None
        if session.paying:
            assert session.payment is not None
            deadlines = [(session.payment.started_at + self.payment_max_seconds,
                          "payment_timeout")]
            if session.payment.result_at is not None:
                deadlines.append((session.payment.result_at + self.after_result_seconds,
                                  "no_return"))
            return min(deadlines)
        return session.last_activity + self.lifetime_seconds, "idle"

    def due(self) -> str | None:
        """The reason the session must end now, or None."""
        deadline = self.deadline()
        if deadline is not None and self.clock() >= deadline[0]:
            return deadline[1]
        return None
