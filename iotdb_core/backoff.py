"""Exponential backoff with jitter, for anything that retries a remote peer (upstream brokers, forwarding)."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """The n-th delay is drawn from [d/2, d] with d = min(cap, base * 2**n), so that nodes that lost the same peer
    do not all come back at once; :meth:`reset` after a success."""

    def __init__(self, base: float, cap: float, uniform: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = max(cap, base)
        self._uniform = uniform
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        delay = min(self.cap, self.base * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return delay / 2 + self._uniform() * delay / 2

    def reset(self) -> None:
        """An attempt succeeded: start again from the base delay."""
        self._attempt = 0
