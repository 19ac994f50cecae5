"""The token buckets every rate limit uses (proxy/rate_limit.py), on a hand-turned clock."""

from __future__ import annotations

import pytest

from proxy.rate_limit import TokenBuckets, address_key, retry_after, take_all


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_refill_rate():
    clock = Clock()
    buckets = TokenBuckets(3, 0.5, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(2.0)  # one token back after 2 s at 0.5/s
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 2.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_a_refused_request_spends_nothing():
    clock = Clock()
    buckets = TokenBuckets(1, 1.0, clock=clock)
    assert buckets.take("a") == 0.0
    for _ in range(10):
        assert buckets.take("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert buckets.take("a") == 0.0


def test_take_all_takes_from_every_bucket_or_from_none():
    clock = Clock()
    session = TokenBuckets(5, 1.0, clock=clock)
    patron = TokenBuckets(1, 1.0, clock=clock)
    assert take_all([(session, "s"), (patron, "p")]) == 0.0
    assert take_all([(session, "s"), (patron, "p")]) == pytest.approx(1.0)
    assert session.wait("s", 4) == 0.0  # the refused request left the session's tokens alone


def test_keys_are_bounded_forgetting_idle_buckets_first():
    clock = Clock()
    buckets = TokenBuckets(2, 1.0, max_keys=3, clock=clock)
    for key in ("a", "b", "c", "d"):
        buckets.take(key)
    assert len(buckets) <= 3
    buckets.take("e")
    buckets.take("e")
    for key in ("f", "g", "h"):
        buckets.take(key)
    assert len(buckets) <= 3


def test_retry_after_is_whole_seconds_at_least_one():
    assert retry_after(0.01) == "1"
    assert retry_after(2.2) == "3"


def test_an_ipv6_client_is_one_key_per_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("not an address") == "not an address"
