"""Handing work from the event loop to worker threads in groups.

A ``loop.run_in_executor`` round trip costs tens of microseconds of CPU (a work item, two futures, a thread
wake-up and a wake-up of the loop), about as much as writing a hundred single-row messages. The MQTT server
hands over one batch per connection at a time, so with many connections those round trips were a large
share of ingestion. A :class:`GroupHandoff` instead queues items and lets a worker thread take everything
queued so far in one go: one thread wake-up serves every item queued meanwhile, and the results go back to
the loop in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_Settled = tuple["asyncio.Future[R]", R | None, BaseException | None]


class GroupHandoff(Generic[T, R]):
    """Runs ``work(item)`` on ``executor`` for each submitted item, in submission order per worker.

    At most ``workers`` drain jobs run at once; each takes every item queued so far and works through them in
    order. With ``settle_each`` the loop hears of each result as soon as it is ready (for waits, where a later
    item may take longer: a durability wait must not hold back the acknowledgement of one already durable);
    otherwise once for the group.
    """

    def __init__(self, executor: Executor, work: Callable[[T], R], *, workers: int = 1,
                 settle_each: bool = False) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._executor = executor
        self._work = work
        self._workers = workers
        self._settle_each = settle_each
        self._lock = threading.Lock()
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` (call on the event loop); the future resolves on the loop with ``work(item)``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            self._queue.append((item, future))
            start = self._running < self._workers
            if start:
                self._running += 1
        if start:
            try:
                self._executor.submit(self._drain, loop)
            except BaseException:  # the executor was shut down: nothing will take the item
                with self._lock:
                    self._running -= 1
                    self._queue = [queued for queued in self._queue if queued[1] is not future]
                raise
        return future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On a worker thread: work through what is queued, then make room for other jobs of the executor.

        A drain that found more work queued when it finished goes to the back of the executor's queue rather
        than looping, so other jobs of the same executor (a session log sync) are not starved under load.
        """
        with self._lock:
            group, self._queue = self._queue, []
        settled: list[_Settled[R]] = []
        for item, future in group:
            try:
                settled.append((future, self._work(item), None))
            except BaseException as exc:  # handed to the awaiting side, as run_in_executor does
                settled.append((future, None, exc))
            if self._settle_each:
                _post(loop, settled)
                settled = []
        if settled:
            _post(loop, settled)
        with self._lock:
            again = bool(self._queue)
            if not again:
                self._running -= 1
        if again:
            try:
                self._executor.submit(self._drain, loop)
            except RuntimeError as exc:  # the executor was shut down: the queued items fail as its jobs would
                with self._lock:
                    self._running -= 1
                    given_up, self._queue = self._queue, []
                failed: list[_Settled[R]] = [(future, None, exc) for _, future in given_up]
                _post(loop, failed)


def _post(loop: asyncio.AbstractEventLoop, settled: list[_Settled[R]]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[_Settled[R]]) -> None:
    for future, result, error in settled:
        if future.done():  # cancelled while the work ran
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
