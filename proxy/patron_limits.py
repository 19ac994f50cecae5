"""How fast one session, and one patron across all their sessions, may use the routes that read
Alma (docs/security.md#rate-limits).

Alma's rate is per institution and shared with every other integration; one patron reloading
in a loop must not take it from everyone else. Each request to such a route takes a token from
its session's bucket and from its patron's; with the fee list kept for a few seconds
(proxy/fee_cache.py), a request costs at most one Alma read, so the patron's pace is also the
most of Alma's rate one patron can use.

On PostgreSQL the buckets' tokens live in the database (proxy/shared_buckets.py), so several
instances give a patron one budget between them; the buckets here then only give each kind's
burst and rate, and hold the tokens while the database cannot be reached. On SQLite (one
machine) the tokens stay in memory: a database write per page view would cost the one machine
a synchronous commit, to share with no other instance.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxy.database.errors import Unavailable
from proxy.rate_limit import DEFAULT_MAX_KEYS, TokenBuckets, take_all

if TYPE_CHECKING:
    from proxy.shared_buckets import SharedBuckets

log = logging.getLogger("patronpay.api")


class PatronLimits:
    def __init__(self, session_burst: int, session_per_minute: int, patron_per_minute: int,
                 clock: Callable[[], float] = time.monotonic,
                 shared: SharedBuckets | None = None) -> None:
        self.shared = shared
        self._shared_down = False
        self.sessions = TokenBuckets(session_burst, session_per_minute / 60, clock=clock)
        # A patron may have two sessions going (a phone and a laptop, the web and a kiosk).
        self.patrons = TokenBuckets(2 * session_burst, patron_per_minute / 60, clock=clock)
        # Sign-ins read Alma too (the patron's record) and a campus sign-on lets its user sign
        # in again without a password, so one user id gets a session's pace of sign-ins.
        self.sign_ins = TokenBuckets(session_burst, session_per_minute / 60, clock=clock)
        self._refused: OrderedDict[str, None] = OrderedDict()  # sessions being refused now

    def wait(self, session_id: str, patron_id: str) -> float:
        """Take this request's tokens and return 0.0, or the seconds until it could."""
        wait = self._take(session_id, patron_id)
        if wait == 0:
            self._refused.pop(session_id, None)
        return wait

    def sign_in_wait(self, user_id: str) -> float:
        """Take a sign-in's token for `user_id` (as the sign-in names them, before Alma says
        whose account it is) and return 0.0, or the seconds until it could."""
        wait = self._claim([(self.sign_ins, "signin", user_id)])
        if wait == 0:
            self._refused.pop("signin:" + user_id, None)
        return wait

    def first_refusal(self, session_id: str) -> bool:
        """True for the first refused request of a run of them (one log line per flood, not
        one per request); call after `wait` refused."""
        if session_id in self._refused:
            return False
        self._refused[session_id] = None
        if len(self._refused) > DEFAULT_MAX_KEYS:
            self._refused.popitem(last=False)
        return True

    def _take(self, session_id: str, patron_id: str) -> float:
        return self._claim([(self.sessions, "session", session_id),
                            (self.patrons, "patron", patron_id)])

    def _claim(self, claims: list[tuple[TokenBuckets, str, str]]) -> float:
        """One token from each (buckets, kind, key), or none from any."""
        if self.shared is not None:
            from proxy.shared_buckets import patron_key

            # The table holds no patron identifiers; a session's key is already a hash.
            named = [(buckets, f"{kind}:{key if kind == 'session' else patron_key(key)}")
                     for buckets, kind, key in claims]
            try:
                wait = self.shared.take_all(named)
                self._shared_down = False
                return wait
            except Unavailable:
                if not self._shared_down:
                    log.warning("shared request buckets unreachable: limiting in this process",
                                extra={"event": "rate_buckets_unavailable"})
                    self._shared_down = True
        return take_all([(buckets, key) for buckets, _, key in claims])
