"""Suite-wide settings: every test that starts servers or subprocesses is bounded in time."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

#: Seconds a test may take before the alarm fails it (tests marked ``slow``: twice as much).
TEST_DEADLINE = 120


class TestDeadlineExceeded(Exception):
    """Raised in the main thread by the per-test alarm."""

    __test__ = False


@pytest.fixture(autouse=True)
def _test_deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that runs past its deadline instead of hanging the suite."""
    seconds = TEST_DEADLINE * (2 if request.node.get_closest_marker("slow") else 1)

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TestDeadlineExceeded(f"test ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
