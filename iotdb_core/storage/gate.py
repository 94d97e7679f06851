"""A shared/exclusive gate: writers pass it together; sealing a memtable closes it.

A writer holds the gate from its WAL append until its points are in the memtable. Sealing takes it
exclusively, so every WAL record numbered below the seal's boundary is in the sealed memtable and every
later one in the next: the boundary recorded in the manifest after the flush is exact. A waiting
exclusive holder blocks new writers, so a stream of writers cannot starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType


class _Passage:
    """``with gate.shared():`` / ``with gate.exclusive():`` (one object per gate and side: no allocation per use)."""

    __slots__ = ("_enter", "_leave")

    def __init__(self, enter: Callable[[], None], leave: Callable[[], None]) -> None:
        self._enter = enter
        self._leave = leave

    def __enter__(self) -> None:
        self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()


class Gate:
    """A reader-writer lock preferring the exclusive side."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self._shared_passage = _Passage(self.enter, self.leave)
        self._exclusive_passage = _Passage(self.close, self.open)

    def shared(self) -> _Passage:
        """Hold the gate together with other writers for the ``with`` block."""
        return self._shared_passage

    def exclusive(self) -> _Passage:
        """Hold the gate alone for the ``with`` block (waits for the writers inside, keeps new ones out)."""
        return self._exclusive_passage

    def enter(self) -> None:
        """Pass the gate together with other writers."""
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1

    def leave(self) -> None:
        with self._cond:
            self._shared -= 1
            if self._shared == 0 and self._waiting:
                self._cond.notify_all()

    def close(self) -> None:
        """Wait until no writer is inside, and keep new ones out until :meth:`open`."""
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True

    def open(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()
