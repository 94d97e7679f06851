"""What the overview shows of the storage engine: TsFiles per level, the WAL, the data directory, disk free.

Read from :meth:`Engine.file_levels` and the sizes of the data directory's files (the engine keeps memtable
sizes and running flushes and compactions to itself). Runs on a worker thread: it stats every live file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["engine_state"]

#: Directories of the data directory, as the storage engine names them (see docs/storage.md).
SEQUENCE_DIR = "sequence"
WAL_DIR = "wal"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # removed by a compaction since it was listed
        return 0


def engine_state(engine: Any, data_dir: Path) -> dict[str, Any]:
    """TsFile count and bytes per level, WAL segments and bytes, data directory bytes, disk total and free."""
    levels: dict[int, dict[str, int]] = {}
    for name, level in engine.file_levels():
        entry = levels.setdefault(level, {"level": level, "files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += _size(data_dir / SEQUENCE_DIR / name)
    wal_dir = data_dir / WAL_DIR
    try:
        segments = [entry for entry in os.scandir(wal_dir) if entry.is_file()]
    except OSError:
        segments = []
    wal_bytes = 0
    for segment in segments:
        try:
            wal_bytes += segment.stat().st_size
        except OSError:
            continue
    total = 0
    for root, _dirs, files in os.walk(data_dir):
        total += sum(_size(Path(root) / name) for name in files)
    disk = shutil.disk_usage(data_dir)
    return {
        "tsfile_levels": [levels[level] for level in sorted(levels)],
        "tsfiles": sum(entry["files"] for entry in levels.values()),
        "tsfile_bytes": sum(entry["bytes"] for entry in levels.values()),
        "wal_segments": len(segments),
        "wal_bytes": wal_bytes,
        "data_dir": str(data_dir.resolve()),
        "data_dir_bytes": total,
        "disk_total": disk.total,
        "disk_free": disk.free,
    }
