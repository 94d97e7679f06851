"""A cheap, read-only snapshot of an open engine (:meth:`Engine.stats <iotdb_core.storage.engine.Engine.stats>`).

What ``/metrics``, ``iotdb status`` and the console's overview show of the engine: memtables, the WAL, the
live TsFiles per level, flushes and compactions (done, failed, running now, and how long they took), the
read-only state and the disk. Taking it holds no engine lock: the memtable sizes and the file list are read
from the current version (replaced whole, never changed in place), the flush and compaction figures from
their :class:`WorkTracker`; the WAL's own lock is held only to copy its segment list, and the disk costs one
``statvfs`` and a ``stat`` per closed WAL segment.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iotdb_core.metrics import Buckets, HistogramSample

if TYPE_CHECKING:
    from iotdb_core.storage.state import EngineState

__all__ = ["WORK_BUCKETS", "EngineStats", "LevelStats", "Work", "WorkStats", "WorkTracker", "engine_stats"]

#: Upper bounds (seconds) of the flush and compaction duration buckets: a tiny memtable to a merge of GiBs.
WORK_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)


@dataclass(frozen=True, slots=True)
class WorkStats:
    """Flushes (or compactions) since the engine opened: running now, failed, and the durations of those done
    (``durations.count`` of them; a failed one is not timed)."""

    running: int
    failed: int
    durations: HistogramSample

    @property
    def completed(self) -> int:
        return self.durations.count


class Work:
    """One flush or compaction being tracked: counted as running from :meth:`start` until the block ends."""

    __slots__ = ("_began", "_tracker")

    def __init__(self, tracker: WorkTracker) -> None:
        self._tracker = tracker
        self._began: float | None = None

    @property
    def started(self) -> bool:
        return self._began is not None

    def start(self) -> None:
        if self._began is None:
            self._began = time.perf_counter()
            self._tracker.change(1)

    def seconds(self) -> float:
        assert self._began is not None
        return time.perf_counter() - self._began


class WorkTracker:
    """Counts one kind of background work (flushes or compactions) and times it; thread-safe."""

    def __init__(self, bounds: tuple[float, ...] = WORK_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._failed = 0
        self._durations = Buckets(bounds, "work duration")

    def change(self, running: int) -> None:
        with self._lock:
            self._running += running

    @contextmanager
    def track(self, *, start: bool = True) -> Iterator[Work]:
        """The work inside the block; with ``start=False`` it counts only once the block calls
        :meth:`Work.start` (a block that finds nothing to do leaves no trace)."""
        work = Work(self)
        if start:
            work.start()
        try:
            yield work
        except BaseException:
            if work.started:
                with self._lock:
                    self._running -= 1
                    self._failed += 1
            raise
        if work.started:
            self._durations.observe(work.seconds())
            self.change(-1)

    def stats(self) -> WorkStats:
        with self._lock:
            running, failed = self._running, self._failed
        return WorkStats(running, failed, self._durations.snapshot())


@dataclass(frozen=True, slots=True)
class LevelStats:
    """The live TsFiles of one compaction level: how many, their bytes and points (from the manifest)."""

    level: int
    files: int
    bytes: int
    points: int


@dataclass(frozen=True, slots=True)
class EngineStats:
    """An open engine at one instant.

    ``memtable_bytes`` and ``memtable_points`` cover every memtable not yet in a TsFile: the one taking
    writes and the sealed ones waiting for (or in) a flush, ``sealed_memtables`` of them. ``wal_bytes`` counts
    the records logged (not the space a segment has allocated ahead). ``read_only_reason`` is empty while
    ``writable``.
    """

    memtable_bytes: int
    memtable_points: int
    sealed_memtables: int
    memtable_budget_bytes: int
    wal_bytes: int
    wal_segments: int
    levels: tuple[LevelStats, ...]
    flushes: WorkStats
    compactions: WorkStats
    writable: bool
    read_only_reason: str
    disk_free_bytes: int
    disk_total_bytes: int

    @property
    def tsfiles(self) -> int:
        return sum(level.files for level in self.levels)

    @property
    def tsfile_bytes(self) -> int:
        return sum(level.bytes for level in self.levels)


def _levels(state: EngineState) -> tuple[LevelStats, ...]:
    totals: dict[int, tuple[int, int, int]] = {}
    for table in state.versions.current.files:
        entry = table.entry
        files, size, points = totals.get(entry.level, (0, 0, 0))
        totals[entry.level] = (files + 1, size + entry.size, points + entry.points)
    return tuple(LevelStats(level, *totals[level]) for level in sorted(totals))


def engine_stats(state: EngineState) -> EngineStats:
    """The snapshot of ``state`` (see the module's docstring for what it costs)."""
    memtables = state.versions.current.memtables
    wal = state.wal.segment_sizes()
    health = state.health.health()
    disk = shutil.disk_usage(state.data_dir)
    return EngineStats(
        memtable_bytes=sum(memtable.size for memtable in memtables),
        memtable_points=sum(memtable.points for memtable in memtables),
        sealed_memtables=len(memtables) - 1,
        memtable_budget_bytes=state.budget,
        wal_bytes=sum(wal),
        wal_segments=len(wal),
        levels=_levels(state),
        flushes=state.flush_work.stats(),
        compactions=state.compaction_work.stats(),
        writable=health.writable,
        read_only_reason=health.reason,
        disk_free_bytes=disk.free,
        disk_total_bytes=disk.total,
    )
