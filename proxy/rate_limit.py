"""Token buckets, one per key (a session, a patron, an address), in this process's memory
(docs/security.md#rate-limits).

A bucket holds at most `burst` tokens and gains `per_second` of them back; a request takes one
or is refused with the seconds until it could have one, which becomes `Retry-After`. Counts
live in memory: they cost no database write, and a restart forgives everyone. Several proxy
processes each keep their own buckets, so the limit a client meets is per process (on
PostgreSQL the patron limits keep their tokens in the database: proxy/shared_buckets.py). The
number of keys is bounded: past `max_keys`, full buckets (idle long enough to have refilled)
are forgotten first, then the least recently used.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

DEFAULT_MAX_KEYS = 50_000


class TokenBuckets:
    def __init__(self, burst: float, per_second: float, *, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("a bucket needs a burst of at least 1 and a positive rate")
        self.burst = float(burst)
        self.per_second = float(per_second)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def wait(self, key: str, tokens: float = 1.0) -> float:
        """Seconds until `key` has `tokens` to spend; 0.0 means now. Takes nothing."""
        available = self._level(key, self.clock())
        return 0.0 if available >= tokens else (tokens - available) / self.per_second

    def take(self, key: str, tokens: float = 1.0) -> float:
        """Spend `tokens` from `key`'s bucket and return 0.0, or spend nothing and return the
        seconds until it could."""
        now = self.clock()
        available = self._level(key, now)
        if available < tokens:
            return (tokens - available) / self.per_second
        self._store(key, available - tokens, now)
        return 0.0

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        held = self._buckets.get(key)
        if held is None:
            return self.burst
        tokens, at = held
        return min(self.burst, tokens + max(0.0, now - at) * self.per_second)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full = [k for k, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.per_second >= self.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


def take_all(claims: Sequence[tuple[TokenBuckets, str]]) -> float:
    """One token from each (buckets, key), or none from any: a request refused by the patron's
    bucket must not also drain the session's. Returns 0.0, or the seconds to wait."""
    wait = max((buckets.wait(key) for buckets, key in claims), default=0.0)
    if wait > 0:
        return wait
    for buckets, key in claims:
        buckets.take(key)
    return 0.0


def retry_after(seconds: float) -> str:
    """A `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def address_key(address: str) -> str:
    """The key for a client address: an IPv6 client usually holds a whole /64, so that is one
    key; IPv4 addresses (and anything unparsable) stand for themselves."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
