"""Versions: immutable, reference-counted views of the live TsFiles, memtables and tombstones.

A reader acquires the current :class:`Version` and reads every source in it, applying the version's
tombstones, so it sees each point exactly once whatever flushes, compactions and deletions install
meanwhile (a compaction that purges deleted points drops their tombstones in the same version). Each
:class:`TableFile` counts the versions that hold it; a file dropped by a compaction (or expired by TTL)
is closed and deleted when the last version holding it is released, never while a reader may still
open it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import blockstats
from iotdb_core.storage.blockstats import BlockStats
from iotdb_core.storage.columns import to_array
from iotdb_core.storage.manifest import FileEntry
from iotdb_core.storage.memtable import MemTable, SeriesKey
from iotdb_core.storage.merge import Run
from iotdb_core.storage.tombstones import Range, Tombstone
from iotdb_core.storage.tsfile_io import SeriesInfo, TsFileSource

log = logging.getLogger("iotdb.storage")


class TableFile:
    """One live TsFile: its manifest entry and an open reader."""

    def __init__(self, path: Path, entry: FileEntry) -> None:
        self.path = path
        self.entry = entry
        self.refs = 0
        self.source = TsFileSource(path)
        self.series: dict[SeriesKey, SeriesInfo] = self.source.series()
        self._blocks: dict[SeriesKey, tuple[TSDataType, BlockStats]] | None = None
        self._blocks_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TableFile({self.entry.name}, refs={self.refs})"

    @property
    def version(self) -> int:
        return self.entry.version

    @property
    def mark(self) -> int:
        return self.entry.tombstone_mark

    def series_keys(self) -> list[SeriesKey]:
        return list(self.series)

    def time_range(self, key: SeriesKey) -> Range | None:
        """The first and last timestamp of a series in the file, or None."""
        info = self.series.get(key)
        return None if info is None or not info.count else (info.start_time, info.end_time)

    def read(self, key: SeriesKey, data_type: TSDataType, start: int, end: int) -> Run | None:
        """Points of a series within ``[start, end]``; None when the file holds none there."""
        info = self.series.get(key)
        if info is None or info.end_time < start or info.start_time > end:
            return None
        timestamps, values = self.source.read(key[0], key[1], start, end)
        if len(timestamps) == 0:
            return None
        if not isinstance(values, np.ndarray) or values.dtype.kind in "UO":
            values = to_array(values, data_type)
        return timestamps, values

    def blocks(self, key: SeriesKey, data_type: TSDataType) -> BlockStats | None:
        """The series' block statistics from the sidecar (loaded on first use), or None."""
        found = self._blocks
        if found is None:
            with self._blocks_lock:
                found = self._blocks
                if found is None:
                    found = self._blocks = blockstats.load(self.path)
        entry = found.get(key)
        if entry is None or entry[0] is not data_type:
            return None
        info = self.series.get(key)
        stats = entry[1]
        if (
            info is None
            or not len(stats)
            or int(stats.count.sum()) != info.count
            or int(stats.start_time[0]) != info.start_time
            or int(stats.end_time[-1]) != info.end_time
        ):
            return None  # does not describe this file's series
        return stats

    def delete(self) -> None:
        """Close the reader and remove the file and its block statistics."""
        self.source.close()
        blockstats.remove(self.path)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            log.exception("cannot remove obsolete TsFile %s", self.path)


class Version:
    """Live files (oldest version first), memtables (oldest first; the last one takes writes), tombstones."""

    __slots__ = ("files", "memtables", "refs", "tombstones")

    def __init__(
        self, files: tuple[TableFile, ...], memtables: tuple[MemTable, ...], tombstones: tuple[Tombstone, ...] = ()
    ) -> None:
        self.files = files
        self.memtables = memtables
        self.tombstones = tombstones
        self.refs = 0

    @property
    def mutable(self) -> MemTable:
        return self.memtables[-1]

    @property
    def frozen(self) -> tuple[MemTable, ...]:
        return self.memtables[:-1]


class _Pin:
    """A version held for a ``with`` block (:meth:`VersionSet.pinned`)."""

    __slots__ = ("_set", "_version")

    def __init__(self, versions: VersionSet) -> None:
        self._set = versions
        self._version: Version | None = None

    def __enter__(self) -> Version:
        self._version = self._set.acquire()
        return self._version

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._version is not None:
            self._set.release(self._version)
            self._version = None


class VersionSet:
    """The current version and reference counting of versions and files."""

    def __init__(self, files: Iterable[TableFile], mutable: MemTable, tombstones: Iterable[Tombstone] = ()) -> None:
        self._lock = threading.Lock()
        self.current = self._adopt(
            Version(tuple(sorted(files, key=lambda f: f.entry.version)), (mutable,), tuple(tombstones))
        )

    def _adopt(self, version: Version) -> Version:
        version.refs = 1
        for table in version.files:
            table.refs += 1
        return version

    def acquire(self) -> Version:
        """The current version, held until :meth:`release`."""
        with self._lock:
            version = self.current
            version.refs += 1
            return version

    def pinned(self) -> _Pin:
        """``with versions.pinned() as version:`` holds the current version for the block."""
        return _Pin(self)

    def release(self, version: Version) -> None:
        doomed = []
        with self._lock:
            doomed = self._unref(version)
        for table in doomed:
            table.delete()

    def _unref(self, version: Version) -> list[TableFile]:
        version.refs -= 1
        if version.refs:
            return []
        doomed = []
        for table in version.files:
            table.refs -= 1
            if table.refs == 0:
                doomed.append(table)
        return doomed

    def install(
        self,
        *,
        add_files: Iterable[TableFile] = (),
        drop_files: Iterable[str] = (),
        add_memtable: MemTable | None = None,
        drop_memtable: MemTable | None = None,
        tombstones: Iterable[Tombstone] | None = None,
    ) -> None:
        """Make a new current version from the current one with the given changes (``tombstones``: replace)."""
        dropped = set(drop_files)
        with self._lock:
            old = self.current
            files = [table for table in old.files if table.entry.name not in dropped]
            files.extend(add_files)
            files.sort(key=lambda table: table.entry.version)
            memtables = [mem for mem in old.memtables if mem is not drop_memtable]
            if add_memtable is not None:
                memtables.append(add_memtable)
            kept = old.tombstones if tombstones is None else tuple(tombstones)
            self.current = self._adopt(Version(tuple(files), tuple(memtables), kept))
            doomed = self._unref(old)
        for table in doomed:
            table.delete()

    def close(self) -> None:
        """Close every file reader of the current version (the files stay)."""
        with self._lock:
            for table in self.current.files:
                table.source.close()
