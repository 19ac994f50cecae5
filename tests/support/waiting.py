"""Waiting for something another thread or process does: poll it, with a deadline, never a
fixed sleep (a busy machine makes any fixed sleep too short one day)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], what: str = "the condition", *,
             timeout: float = 10.0) -> T:
    """Poll `predicate` until it returns something truthy and return that, or fail after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
