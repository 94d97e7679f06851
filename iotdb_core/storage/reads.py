"""The read path: ``query``, ``scan`` and ``scan_columns`` (statistics for aggregate pushdown) and ``last``.

A read pins the current :class:`~iotdb_core.storage.version.Version` (its files, memtables and
tombstones stay as they are while pinned), narrows the range to what TTL leaves visible, reads every
source that holds the series in the range without what the tombstones hide, and merges the runs
newest-wins (:func:`~iotdb_core.storage.merge.merge_runs`). ``last`` is served from the last-point cache.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.datatypes import INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.storage.blockstats import BlockStats, block_runs
from iotdb_core.storage.columns import NUMPY_DTYPE
from iotdb_core.storage.memtable import SeriesKey
from iotdb_core.storage.merge import Run, merge_runs
from iotdb_core.storage.results import ColumnSegment, PointsSegment, Segment, SeriesResult, StatsRun
from iotdb_core.storage.schema import SeriesSchema, split_series_path
from iotdb_core.storage.state import EngineState
from iotdb_core.storage.tombstones import covers_all, drop_ranges, hidden_ranges
from iotdb_core.storage.tsfile_io import SeriesInfo
from iotdb_core.storage.version import TableFile, Version

__all__ = ["ReadPath"]

_TAIL_WIDTH = 1024  # first window of the backward search for a series' newest visible point
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)
_STATS_TYPES = frozenset(
    {TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE}
)


class ReadPath:
    """Reads of one engine's state."""

    def __init__(self, state: EngineState) -> None:
        self.state = state

    def query(self, path: str, start: int | None = None, end: int | None = None) -> SeriesResult:
        """Points of one series with ``start <= time <= end`` (both inclusive; None = unbounded), in time order.

        Deleted points and points expired by TTL are left out. A series that does not exist yields an
        empty result with ``data_type`` None.
        """
        s = self.state
        s.check_open()
        device, measurement = split_series_path(path)
        schema = s.registry.get(device, measurement)
        if schema is None:
            return SeriesResult(np.empty(0, np.int64), np.empty(0, np.float64), None)
        key = (device, measurement)
        low, high = self._visible_range(key, start, end)
        merged = None
        if low <= high:
            with s.versions.pinned() as version:
                merged = self._read(version, key, schema, low, high)
        if merged is None:
            return SeriesResult(np.empty(0, np.int64), np.empty(0, NUMPY_DTYPE[schema.data_type]), schema.data_type)
        return SeriesResult(merged[0], merged[1], schema.data_type)

    def scan(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[Segment]:
        """The points ``query(path, start, end)`` returns, as segments for aggregate pushdown.

        Segments are in time order and do not overlap. A :class:`StatsSegment` stands for the series in
        one TsFile whose time range lies within the range and that nothing else can change: no other
        file or memtable holds a point of the series within its time range, no tombstone or TTL rule
        touches it, and its statistics are exact (numeric and BOOLEAN series; FLOAT/DOUBLE without NaN).
        Where such a file has block statistics (:mod:`~iotdb_core.storage.blockstats`) and the range's ends
        or one of ``bounds`` (times where the caller cuts, e.g. GROUP BY window starts and ends: ``x`` cuts
        ``[a, b]`` when ``a < x <= b``) cut it, or it holds NaN, it yields one StatsSegment per usable block
        lying wholly inside the range instead, and points for the rest.
        Everything else is in :class:`PointsSegment` segments, merged newest-wins as ``query`` merges them.
        """
        segments: list[Segment] = []
        for piece in self.scan_columns(path, start, end, bounds=bounds):
            if isinstance(piece, StatsRun):
                segments.extend(piece.segments())
            else:
                segments.append(piece)
        return segments

    def scan_columns(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[ColumnSegment]:
        """What :meth:`scan` returns, with consecutive statistics as one :class:`StatsRun` of arrays (a file's
        usable blocks in one run, a whole file in a run of one) instead of one StatsSegment each."""
        s = self.state
        s.check_open()
        device, measurement = split_series_path(path)
        schema = s.registry.get(device, measurement)
        if schema is None:
            return []
        key = (device, measurement)
        low, high = self._visible_range(key, start, end)
        if low > high:
            return []
        with s.versions.pinned() as version:
            cuts = None if bounds is None else np.unique(np.asarray(bounds, dtype=np.int64))
            return self._scan(version, key, schema, low, high, cuts)

    def _scan(
        self, version: Version, key: SeriesKey, schema: SeriesSchema, low: int, high: int, cuts: np.ndarray | None
    ) -> list[ColumnSegment]:
        data_type = schema.data_type
        candidates: list[TableFile] = []
        spans: dict[int, tuple[int, int]] = {}  # a candidate's time range clipped to [low, high]
        blocks_of: dict[int, BlockStats | None] = {}
        if data_type in _STATS_TYPES:
            for table in version.files:
                info = table.series.get(key)
                if info is None or not info.count or info.data_type is not data_type:
                    continue
                if info.end_time < low or info.start_time > high:
                    continue
                whole = info.start_time >= low and info.end_time <= high and _whole_file_exact(info, data_type)
                split = not whole
                if whole and cuts is not None:
                    first, last = np.searchsorted(cuts, [info.start_time, info.end_time], side="right")
                    split = bool(first != last)
                blocks = table.blocks(key, data_type) if split else None
                if blocks is None and not whole:
                    continue  # without blocks a cut file's segment is read back as points by the caller
                lo, hi = max(low, info.start_time), min(high, info.end_time)
                if hidden_ranges(version.tombstones, key, table.entry.version, table.entry.tombstone_mark, lo, hi):
                    continue
                candidates.append(table)
                spans[id(table)] = (lo, hi)
                blocks_of[id(table)] = blocks
        chosen = {id(table) for table in candidates}
        runs = self._visible_runs(version, key, schema, low, high, skip=chosen)
        changed = True
        while changed:  # a candidate that another source overlaps is read as points, which may overlap others
            changed = False
            for table in list(candidates):
                lo, hi = spans[id(table)]
                if any(
                    other is not table and spans[id(other)][0] <= hi and spans[id(other)][1] >= lo
                    for other in candidates
                ) or any(_holds_between(run[0], lo, hi) for _, run in runs):
                    candidates.remove(table)
                    chosen.discard(id(table))
                    runs.extend(self._visible_runs(version, key, schema, low, high, only=table))
                    changed = True
        runs.sort(key=lambda item: item[0])
        merged = merge_runs([run for _, run in runs])
        segments: list[ColumnSegment] = []
        position = 0
        for table in sorted(candidates, key=lambda t: spans[id(t)][0]):
            lo, hi = spans[id(table)]
            if merged is not None:
                cut = int(np.searchsorted(merged[0], lo, side="left"))
                if cut > position:
                    segments.append(PointsSegment(merged[0][position:cut], merged[1][position:cut]))
                position = cut
            blocks = blocks_of[id(table)]
            if blocks is None:
                segments.append(_file_run(table.series[key], data_type))
            else:
                segments.extend(block_runs(blocks, lo, hi, _reader(table, key, data_type)))
        if merged is not None and position < len(merged[0]):
            segments.append(PointsSegment(merged[0][position:], merged[1][position:]))
        return segments

    def _visible_range(self, key: SeriesKey, start: int | None, end: int | None) -> tuple[int, int]:
        """The asked range narrowed to what the series' TTL leaves visible now."""
        s = self.state
        low = INT64_MIN if start is None else int(start)
        high = INT64_MAX if end is None else int(end)
        ttl = s.ttl
        if ttl:
            low = max(low, ttl.cutoff(key, ttl.now()))
        return low, high

    def _read(self, version: Version, key: SeriesKey, schema: SeriesSchema, low: int, high: int) -> Run | None:
        """The series' visible points within ``[low, high]``, merged newest-wins.

        Where no two sources overlap in time (the usual case: files flushed in time order, the memtable after
        them), the points need no merge: the files are read together (:func:`_read_parts`, on several cores
        when large) and every decoded batch is copied once into the result.
        """
        files = self._file_reads(version, key, schema, low, high)
        memtables = self._memtable_runs(version, key, schema, low, high)
        spans = sorted(
            [(read.low, read.high, index) for index, read in enumerate(files)]
            + [(int(run[0][0]), int(run[0][-1]), -1 - index) for index, (_, run) in enumerate(memtables)]
        )
        if schema.data_type is TSDataType.TEXT or any(a[1] >= b[0] for a, b in itertools.pairwise(spans)):
            runs: list[tuple[int, Run | None]] = [(read.place, read.run()) for read in files]
            runs.extend(memtables)
            return merge_runs([run for _, run in sorted(runs, key=lambda item: item[0]) if run is not None])
        pieces = _read_parts(files)
        parts: list[Run] = []
        for _, _, index in spans:
            parts.extend(pieces[index] if index >= 0 else [memtables[-1 - index][1]])
        if not parts:
            return None
        return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])

    def _file_reads(
        self,
        version: Version,
        key: SeriesKey,
        schema: SeriesSchema,
        low: int,
        high: int,
        *,
        skip: set[int] | frozenset[int] = frozenset(),
        only: TableFile | None = None,
    ) -> list[_FileRead]:
        """The files to read the series from within ``[low, high]``, and what tombstones hide in each.

        Files in ``skip`` are left out; with ``only`` just that file is read. Data of another type is that of a
        deleted and re-created series, hidden by the deletion's tombstone, and is left out.
        """
        reads: list[_FileRead] = []
        tombstones = version.tombstones
        data_type = schema.data_type
        for place, table in enumerate(version.files):
            if (only is not None and table is not only) or id(table) in skip:
                continue
            info = table.series.get(key)
            if info is None or info.data_type is not data_type or info.end_time < low or info.start_time > high:
                continue
            lo, hi = max(low, info.start_time), min(high, info.end_time)
            ranges = hidden_ranges(tombstones, key, table.entry.version, table.entry.tombstone_mark, lo, hi)
            if not covers_all(ranges, lo, hi):
                reads.append(_FileRead(place, table, key, data_type, lo, hi, ranges))
        return reads

    def _memtable_runs(
        self, version: Version, key: SeriesKey, schema: SeriesSchema, low: int, high: int
    ) -> list[tuple[int, Run]]:
        """The memtables' runs of the series within ``[low, high]`` without tombstoned points, with each one's
        place after the files."""
        runs: list[tuple[int, Run]] = []
        offset = len(version.files)
        for place, mem in enumerate(version.memtables, offset):
            if mem.series_type(key) is not schema.data_type:
                continue
            ranges = hidden_ranges(version.tombstones, key, mem.version, 0, low, high)
            if covers_all(ranges, low, high):
                continue
            run = mem.read(key, low, high)
            if run is not None:
                run = drop_ranges(run[0], run[1], ranges)
                if len(run[0]):
                    runs.append((place, run))
        return runs

    def _visible_runs(
        self,
        version: Version,
        key: SeriesKey,
        schema: SeriesSchema,
        low: int,
        high: int,
        *,
        skip: set[int] | frozenset[int] = frozenset(),
        only: TableFile | None = None,
    ) -> list[tuple[int, Run]]:
        """The series' runs within ``[low, high]`` without tombstoned points, with each source's place.

        Sources are numbered oldest first (files, then memtables), the order :func:`merge_runs` needs.
        Files in ``skip`` are left out; with ``only`` just that file is read (and no memtable).
        """
        runs: list[tuple[int, Run]] = []
        for read in self._file_reads(version, key, schema, low, high, skip=skip, only=only):
            run = read.run()
            if run is not None:
                runs.append((read.place, run))
        if only is None:
            runs.extend(self._memtable_runs(version, key, schema, low, high))
        return runs

    def tail(self, version: Version, key: SeriesKey, schema: SeriesSchema, high: int) -> tuple[int, Any] | None:
        """The newest visible point at or before ``high`` (ignoring TTL), read in widening windows backwards."""
        floor = INT64_MAX
        for table in version.files:
            info = table.series.get(key)
            if info is not None and info.count and info.data_type is schema.data_type:
                floor = min(floor, info.start_time)
        for mem in version.memtables:
            if mem.series_type(key) is schema.data_type:
                run = mem.read(key, INT64_MIN, high)
                if run is not None:
                    floor = min(floor, int(run[0][0]))
        width = _TAIL_WIDTH
        while high >= floor:
            low = max(floor, high - width + 1)
            merged = merge_runs([run for _, run in self._visible_runs(version, key, schema, low, high)])
            if merged is not None and len(merged[0]):
                value = merged[1][-1]
                return int(merged[0][-1]), value.item() if isinstance(value, np.generic) else value
            high = low - 1
            width *= 16
        return None

    def last(self, path: str) -> tuple[int, Any] | None:
        """The point with the largest timestamp of a series, or None; served from memory.

        None also when that point has expired by TTL (then every point has).
        """
        s = self.state
        s.check_open()
        key = split_series_path(path)
        point = s.last.get(key)
        ttl = s.ttl
        if point is not None and ttl and point[0] < ttl.cutoff(key, ttl.now()):
            return None
        return point


def _whole_file_exact(info: SeriesInfo, data_type: TSDataType) -> bool:
    """True when a file's statistics of a series are exact (numeric and BOOLEAN; FLOAT/DOUBLE without NaN)."""
    if info.data_type is not data_type or None in (info.sum_value, info.first_value, info.last_value):
        return False
    return data_type is TSDataType.BOOLEAN or (info.min_value is not None and info.max_value is not None)

def _file_run(info: SeriesInfo, data_type: TSDataType) -> StatsRun:
    """A file's statistics of a series as a run of one."""
    dtype = NUMPY_DTYPE[data_type]

    def one(value: Any, kind: np.dtype = dtype) -> np.ndarray:
        return np.array([value], dtype=kind)

    boolean = data_type is TSDataType.BOOLEAN
    return StatsRun(
        one(info.start_time, _INT64), one(info.end_time, _INT64), one(info.count, _INT64),
        one(float(info.sum_value), _FLOAT64),  # type: ignore[arg-type]
        None if boolean else one(info.min_value), None if boolean else one(info.max_value),
        one(info.first_value), one(info.last_value),
    )


def _reader(table: TableFile, key: SeriesKey, data_type: TSDataType) -> Callable[[int, int], PointsSegment | None]:
    """Reads a file's points of a series within ``[a, b]``, as a segment (None when it holds none there)."""

    def read(a: int, b: int) -> PointsSegment | None:
        run = table.read(key, data_type, a, b)
        return PointsSegment(run[0], run[1]) if run is not None and len(run[0]) else None

    return read


@dataclass(frozen=True, slots=True)
class _FileRead:
    """One file's part of a read: its place among the sources, the span to read, the ranges tombstones hide."""

    place: int
    table: TableFile
    key: SeriesKey
    data_type: TSDataType
    low: int
    high: int
    hidden: list[tuple[int, int]]

    def run(self) -> Run | None:
        """The points, as one run."""
        run = self.table.read(self.key, self.data_type, self.low, self.high)
        return None if run is None else drop_ranges(run[0], run[1], self.hidden)

    def parts(self, low: int, high: int) -> list[Run]:
        """The points within ``[low, high]`` (inside this read's span), as the batches the file decodes
        (numeric and BOOLEAN series)."""
        parts = self.table.source.read_parts(self.key[0], self.key[1], low, high)
        if self.hidden:
            parts = [drop_ranges(part[0], part[1], self.hidden) for part in parts]  # type: ignore[arg-type]
        return [part for part in parts if len(part[0])]  # type: ignore[misc]


#: Points at which a read is spread over threads (below it the hand-off costs more than it saves), and the
#: fewest points of a piece.
_PARALLEL_POINTS = 200_000
_PIECE_POINTS = 50_000
_WORKERS = max(1, (os.cpu_count() or 1) - 1)
#: Threads that decode alongside the reading thread, one per further core (started on first use).
_READERS = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="iotdb-read")


def _read_parts(files: list[_FileRead]) -> list[list[Run]]:
    """Each file's decoded batches in time order.

    A large read is cut into pieces of about equal points (a file's span split evenly in time, its points
    assumed spread evenly) that the calling thread and the ``_READERS`` threads take in turn; the library
    decodes without the GIL, and a source opens another native reader when pieces of one file meet.
    """
    counts = [read.table.series[read.key].count for read in files]
    total = sum(counts)
    if total < _PARALLEL_POINTS or not _WORKERS:
        return [read.parts(read.low, read.high) for read in files]
    target = max(_PIECE_POINTS, -(-total // (4 * (_WORKERS + 1))))  # pieces enough to even out the threads
    pieces: list[tuple[int, int, int]] = []  # (file index, low, high)
    for index, (read, count) in enumerate(zip(files, counts, strict=True)):
        splits = max(1, min(count // target, read.high - read.low + 1))
        width = -(-(read.high - read.low + 1) // splits)
        pieces.extend((index, low, min(read.high, low + width - 1)) for low in range(read.low, read.high + 1, width))
    found: list[list[Run] | None] = [None] * len(pieces)
    order = iter(range(len(pieces)))
    taking = threading.Lock()

    def work() -> None:
        while True:
            with taking:
                place = next(order, None)
            if place is None:
                return
            index, low, high = pieces[place]
            found[place] = files[index].parts(low, high)

    helpers = [_READERS.submit(work) for _ in range(min(_WORKERS, len(pieces) - 1))]
    work()
    for helper in helpers:  # every piece is taken: a helper that has not started (the pool busy) is not needed
        if not helper.cancel():
            helper.result()
    out: list[list[Run]] = [[] for _ in files]
    for (index, _, _), parts in zip(pieces, found, strict=True):
        out[index].extend(parts or [])
    return out


def _holds_between(timestamps: np.ndarray, low: int, high: int) -> bool:
    """True when sorted ``timestamps`` hold a time within ``[low, high]``."""
    index = int(np.searchsorted(timestamps, low, side="left"))
    return index < len(timestamps) and int(timestamps[index]) <= high

