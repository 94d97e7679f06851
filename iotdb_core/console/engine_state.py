"""What the overview shows of the storage engine, from its snapshot (:class:`~iotdb_core.backend.SupportsStats`).

Memtables, the WAL, TsFiles per level, flushes and compactions (running now, done, failed, mean duration), the
read-only state and the disk come from :meth:`Engine.stats <iotdb_core.storage.engine.Engine.stats>`; the size
of the whole data directory is summed here from its files. Runs on a worker thread (it stats every file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from iotdb_core.backend import SupportsStats
from iotdb_core.storage.stats import WorkStats

__all__ = ["engine_state"]


def _directory_bytes(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # removed by a compaction or a WAL release since it was listed
                continue
    return total


def _work(work: WorkStats) -> dict[str, Any]:
    done = work.durations.count
    return {"running": work.running, "done": done, "failed": work.failed,
            "mean_seconds": work.durations.total / done if done else None}


def engine_state(engine: object, data_dir: Path) -> dict[str, Any] | None:
    """The engine panel's figures, or None for a storage backend that reports none."""
    if not isinstance(engine, SupportsStats):
        return None
    stats = engine.stats()
    return {
        "writable": stats.writable,
        "read_only_reason": stats.read_only_reason,
        "memtable_bytes": stats.memtable_bytes,
        "memtable_points": stats.memtable_points,
        "sealed_memtables": stats.sealed_memtables,
        "memtable_budget": stats.memtable_budget_bytes,
        "flushes": _work(stats.flushes),
        "compactions": _work(stats.compactions),
        "tsfile_levels": [{"level": level.level, "files": level.files, "bytes": level.bytes}
                          for level in stats.levels],
        "tsfiles": stats.tsfiles,
        "tsfile_bytes": stats.tsfile_bytes,
        "wal_segments": stats.wal_segments,
        "wal_bytes": stats.wal_bytes,
        "data_dir": str(data_dir.resolve()),
        "data_dir_bytes": _directory_bytes(data_dir),
        "disk_total": stats.disk_total_bytes,
        "disk_free": stats.disk_free_bytes,
    }
