"""Operations figures of the storage engine and the process, gathered when ``/metrics`` is scraped.

- The engine's snapshot, :meth:`Engine.stats <iotdb_core.storage.engine.Engine.stats>` (the capability
  :class:`~iotdb_core.backend.SupportsStats`): memtables, WAL, TsFiles per level, flushes and compactions
  (running, done, failed, durations), the read-only state, disk free.
- Flushed bytes and points through the ``iotdb_after_flush`` hook (:class:`FlushObserver`).
- Process figures (resident memory, CPU seconds, open file descriptors, start time) from ``prometheus_client``'s
  :class:`ProcessCollector`, which reads ``/proc`` (Linux; elsewhere it reports none), and the thread count
  from ``/proc/self/stat``.
- The garbage collector's frozen objects and full collections (see :mod:`iotdb_core.gc_tuning`).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import ProcessCollector

from iotdb_core.backend import SupportsStats
from iotdb_core.gc_tuning import full_collections
from iotdb_core.hookspecs import FlushInfo, hookimpl
from iotdb_core.metrics import ServiceCounters

if TYPE_CHECKING:
    from iotdb_core.storage.stats import EngineStats

__all__ = ["FlushObserver", "ProcessFigure", "engine_stats", "process_figures"]

#: Where Linux tells a process about itself; field 20 of ``stat`` is the number of threads.
PROC_STAT = Path("/proc/self/stat")


class FlushObserver:
    """A pluggy plugin counting every flush into the service counters (``engine_flush*_total``)."""

    def __init__(self, counters: ServiceCounters) -> None:
        self.counters = counters

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.counters.add("engine_flushes_total")
        self.counters.add("engine_flushed_bytes_total", info.file_size)
        self.counters.add("engine_flushed_points_total", info.point_count)


def engine_stats(engine: object) -> EngineStats | None:
    """The engine's snapshot (:class:`~iotdb_core.backend.SupportsStats`; a ``statvfs`` and a few ``stat`` calls:
    run it off the event loop), or None for a backend supplied by a plugin that offers none."""
    return engine.stats() if isinstance(engine, SupportsStats) else None


@dataclass(frozen=True)
class ProcessFigure:
    """One process metric: name as exposed, Prometheus type, meaning and value."""

    name: str
    kind: str
    description: str
    value: float


_PROCESS = ProcessCollector(registry=None)


def _threads() -> int | None:
    try:
        fields = PROC_STAT.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    except (OSError, IndexError):
        return None
    return int(fields[17])  # num_threads: field 20, the 18th after the name


def process_figures() -> list[ProcessFigure]:
    """Resident and virtual memory, CPU seconds, open and maximum file descriptors, start time, threads, and
    the garbage collector's frozen objects and full collections."""
    figures = []
    for family in _PROCESS.collect():
        for sample in family.samples:
            figures.append(ProcessFigure(sample.name, family.type, family.documentation, float(sample.value)))
    threads = _threads()
    if threads is not None:
        figures.append(ProcessFigure("process_threads", "gauge", "Number of OS threads in the process.", threads))
    figures.append(ProcessFigure("python_gc_frozen_objects", "gauge",
                                 "Objects in the garbage collector's permanent generation.", gc.get_freeze_count()))
    figures.append(ProcessFigure("python_gc_full_collections_total", "counter",
                                 "Collections of the garbage collector's oldest generation.", full_collections()))
    return figures
