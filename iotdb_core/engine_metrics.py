"""Operations figures of the storage engine and the process, gathered when ``/metrics`` is scraped.

Only what the engine exposes publicly is used, plus its durable layout on disk (``docs/storage.md``):

- TsFiles per level from :meth:`Engine.file_levels`, their sizes from ``<data_dir>/sequence/<name>``;
- WAL bytes and segments from the ``*.wal`` files of ``<data_dir>/wal/``;
- free and total bytes of the file system holding the data directory (:func:`shutil.disk_usage`);
- flushes (count, bytes, points) through the ``iotdb_after_flush`` hook (:class:`FlushObserver`).

The engine exposes neither its memtable size nor flush or compaction timings, so those are not reported.
Process figures (resident memory, CPU seconds, open file descriptors, start time) come from
``prometheus_client``'s :class:`ProcessCollector`, which reads ``/proc`` (Linux; elsewhere it reports none).
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import ProcessCollector

from iotdb_core.hookspecs import FlushInfo, hookimpl
from iotdb_core.metrics import ServiceCounters

__all__ = ["EngineFigures", "FlushObserver", "ProcessFigure", "engine_figures", "process_figures"]

#: Directory names of the durable layout (docs/storage.md): the write-ahead log and the sequence TsFiles.
WAL_DIR = "wal"
SEQUENCE_DIR = "sequence"
WAL_SUFFIX = ".wal"


class FlushObserver:
    """A pluggy plugin counting every flush into the service counters (``engine_flush*_total``)."""

    def __init__(self, counters: ServiceCounters) -> None:
        self.counters = counters

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.counters.add("engine_flushes_total")
        self.counters.add("engine_flushed_bytes_total", info.file_size)
        self.counters.add("engine_flushed_points_total", info.point_count)


@dataclass(frozen=True)
class EngineFigures:
    """The engine's state on disk at one instant."""

    wal_bytes: int
    wal_segments: int
    tsfiles_by_level: dict[int, int] = field(default_factory=dict)
    tsfile_bytes_by_level: dict[int, int] = field(default_factory=dict)
    disk_free_bytes: int = 0
    disk_total_bytes: int = 0


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed by a compaction or a WAL release since it was listed
        return None


def _wal_figures(wal_dir: Path) -> tuple[int, int]:
    size = segments = 0
    try:
        entries = list(os.scandir(wal_dir))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        if entry.name.endswith(WAL_SUFFIX):
            try:
                size += entry.stat().st_size
            except FileNotFoundError:
                continue
            segments += 1
    return size, segments


def engine_figures(engine: Any) -> EngineFigures | None:
    """Read the figures of an open engine (file system calls: run it off the event loop).

    None for a backend supplied by a plugin (``iotdb_storage_backend``) that has no data directory.
    """
    if getattr(engine, "data_dir", None) is None:
        return None
    data_dir = Path(engine.data_dir)
    wal_bytes, wal_segments = _wal_figures(data_dir / WAL_DIR)
    files: dict[int, int] = defaultdict(int)
    sizes: dict[int, int] = defaultdict(int)
    levels = engine.file_levels() if hasattr(engine, "file_levels") else []
    for name, level in levels:
        size = _file_size(data_dir / SEQUENCE_DIR / name)
        if size is None:
            continue
        files[level] += 1
        sizes[level] += size
    usage = shutil.disk_usage(data_dir)
    return EngineFigures(wal_bytes, wal_segments, dict(files), dict(sizes), usage.free, usage.total)


@dataclass(frozen=True)
class ProcessFigure:
    """One process metric: name as exposed, Prometheus type, meaning and value."""

    name: str
    kind: str
    description: str
    value: float


_PROCESS = ProcessCollector(registry=None)


def process_figures() -> list[ProcessFigure]:
    """Resident and virtual memory, CPU seconds, open and maximum file descriptors, start time."""
    figures = []
    for family in _PROCESS.collect():
        for sample in family.samples:
            figures.append(ProcessFigure(sample.name, family.type, family.documentation, float(sample.value)))
    return figures
