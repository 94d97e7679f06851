"""Waiting for a condition with a deadline: the one loop tests use instead of hand-written ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is checked again; short enough for fast tests, long enough not to burn a core.
POLL_INTERVAL = 0.02


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = POLL_INTERVAL) -> T | None:
    """Call ``predicate`` until it returns something truthy or ``timeout`` seconds pass.

    Returns that value (so ``assert wait_until(...)`` reads naturally and a found object can be used), or
    None once the deadline passed; the predicate is always called at least once, and once more at the end.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
