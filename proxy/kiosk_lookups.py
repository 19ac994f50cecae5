"""Failed card lookups per kiosk (docs/security.md#kiosk-card-lookups).

Someone at a kiosk could type barcodes on the wedge keyboard and watch for a name. After
`max_failures` cards Alma does not know within `window_seconds`, the kiosk looks up no card at
all (known or not: the answer itself is what is being probed) until `window_seconds` have
passed, and the moment it trips is reported once, for staff. Counts live in this process's
memory (the kiosk agent keeps the same count on its side).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Kiosk:
    failures: deque[float] = field(default_factory=deque)
    paused_until: float = 0.0


class KioskLookups:
    def __init__(self, max_failures: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._kiosks: dict[str, _Kiosk] = {}

    def paused_for(self, kiosk_id: str) -> float:
        """Seconds this kiosk must still wait before looking up a card; 0.0 means now."""
        kiosk = self._kiosks.get(kiosk_id)
        return max(0.0, kiosk.paused_until - self.clock()) if kiosk else 0.0

    def failed(self, kiosk_id: str) -> bool:
        """Count a card Alma did not know; True when this failure starts a pause."""
        now = self.clock()
        kiosk = self._kiosks.setdefault(kiosk_id, _Kiosk())
        while kiosk.failures and now - kiosk.failures[0] >= self.window_seconds:
            kiosk.failures.popleft()
        kiosk.failures.append(now)
        if len(kiosk.failures) < self.max_failures:
            return False
        kiosk.failures.clear()
        kiosk.paused_until = now + self.window_seconds
        return True
