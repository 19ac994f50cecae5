"""Failed card lookups at this kiosk (docs/security.md#kiosk-card-lookups): after
`max_failures` cards the proxy did not know within `window_seconds`, the kiosk looks up no card
for `window_seconds`, whatever is scanned or typed, so that nobody at the kiosk can try
barcodes to see whose they are. The proxy keeps the same count for each kiosk and answers 429
while it pauses one; the agent honours that pause too. The proxy records the pause for staff.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5  # the proxy's PATRONPAY_KIOSK_LOOKUP_FAILURES default
WINDOW_SECONDS = 300.0  # the proxy's PATRONPAY_KIOSK_COOLDOWN_SECONDS default


class LookupGuard:
    def __init__(self, max_failures: int = MAX_FAILURES, window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: deque[float] = deque()
        self._paused_until = 0.0

    def paused_for(self) -> float:
        """Seconds before the next lookup may go to the proxy; 0.0 means now."""
        return max(0.0, self._paused_until - self.clock())

    def failed(self) -> bool:
        """Count an unknown card; True when this one starts a pause."""
        now = self.clock()
        while self._failures and now - self._failures[0] >= self.window_seconds:
            self._failures.popleft()
        self._failures.append(now)
        if len(self._failures) < self.max_failures:
            return False
        self.pause(self.window_seconds)
        return True

    def pause(self, seconds: float) -> None:
        """Pause lookups for `seconds` (the proxy said so, or too many failed here)."""
        self._failures.clear()
        self._paused_until = max(self._paused_until, self.clock() + seconds)
