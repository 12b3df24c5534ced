"""Wait for a condition instead of sleeping a guessed time or asserting on the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL_S = 0.05


def eventually(
    predicate: Callable[[], T], timeout_s: float, interval_s: float = POLL_INTERVAL_S
) -> T:
    """Call ``predicate`` every ``interval_s`` until it returns something true, and return that.

    Raises AssertionError when it is still false after ``timeout_s`` (the timeout is a bound on a
    hang, not a speed claim: size it generously, speed belongs in benchmarks/). The predicate is
    called once more at the deadline, so a slow machine that gets there late still passes.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    value = predicate()
    if value:
        return value
    name = getattr(predicate, "__name__", repr(predicate))
    raise AssertionError(f"{name} was still false after {timeout_s} s")
