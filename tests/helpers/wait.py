"""Waiting for a condition: `wait_until` (returns the predicate's value) and `wait_for`
(returns how long it took). Both poll and raise AssertionError after a time-out, so a
caller may catch a short wait's failure and try again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.05, message: str | None = None
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Raises AssertionError naming `message` (or the predicate) after `timeout` seconds.
    The predicate is always tried once more at the deadline, so a slow machine that
    oversleeps does not fail a condition that has become true.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def wait_for(
    cond: Callable[[], object], timeout: float = 10.0, what: str = "condition", interval: float = 0.01
) -> float:
    """Poll `cond()` every `interval` s until it is true; returns the seconds that took.

    Raises AssertionError ("timed out after ... waiting for `what`") after `timeout` s.
    """
    began = time.monotonic()
    wait_until(cond, timeout, interval, what)
    return time.monotonic() - began
