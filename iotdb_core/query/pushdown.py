"""Statistics pushdown: aggregates over :meth:`Engine.scan` segments instead of points where a file allows it.

``Engine.scan(path, start, end)`` gives a series' points in ``[start, end]`` as time-ordered, disjoint
segments: :class:`~iotdb_core.storage.StatsSegment` (one whole TsFile's or one block's statistics: count, sum,
min, max, first, last, time range) or :class:`~iotdb_core.storage.PointsSegment`; ``Engine.scan_columns``
gives the same with consecutive statistics as one :class:`~iotdb_core.storage.results.StatsRun` of arrays,
which is what makes a scan of 100,000 blocks cost milliseconds (statistics given as StatsSegments are gathered
into runs here). Statistics no window bound cuts — lying wholly inside each window they touch, or in none —
become one *element* of the series each; every point of a PointsSegment is an element of its own; statistics
that a window bound cuts (or that reach outside the scanned range) are read back as points with
``Engine.query`` over their time range (runs of adjacent ones in one call). Which entries are cut is found
for a whole run at once with ``np.searchsorted``. The elements are in time order, so each window is an index
range of them (``np.searchsorted`` of the window bounds over the elements' start times) and
:func:`~iotdb_core.query.aggregates.aggregate_elements` reduces them as it reduces points.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from iotdb_core.storage.results import ColumnSegment, PointsSegment, Segment, StatsRun, StatsSegment

__all__ = ["MAX_SCAN_RANGES", "Elements", "ExecutionStats", "build_elements", "element_windows"]

#: Most time-filter intervals read with one ``Engine.scan`` call each; a filter with more is read as points.
MAX_SCAN_RANGES = 64

#: Reads the points of ``[low, high]`` (inclusive) of the series being aggregated: (timestamps, values).
Reader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]

_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)


@dataclass(slots=True)
class ExecutionStats:
    """What aggregate queries read, added up over the statements that were given this object.

    ``scans``: ``Engine.scan_columns`` (or ``scan``) calls; ``stats_segments``: file or block statistics
    aggregated whole, standing for ``stats_points`` points; ``expanded_segments``: statistics read back as
    points (a window bound cuts them); ``points``: points aggregated one by one on the scan path;
    ``point_reads``: series read wholly as points (raw queries; aggregates against an engine without
    ``scan_columns`` or ``scan``, with a value filter in WHERE, or with more than :data:`MAX_SCAN_RANGES` time
    intervals).
    """

    scans: int = 0
    stats_segments: int = 0
    stats_points: int = 0
    expanded_segments: int = 0
    points: int = 0
    point_reads: int = 0


Piece = tuple[np.ndarray, np.ndarray] | StatsRun


class Elements:
    """A series as time-ordered elements: single points, and file statistics standing for many points.

    Implements :class:`~iotdb_core.query.aggregates.ElementColumns`; columns are built on first use.
    """

    __slots__ = ("_columns", "_pieces", "dtype", "has_stats")

    def __init__(self, pieces: Sequence[Piece], dtype: np.dtype) -> None:
        self._pieces = list(pieces)
        self.dtype = dtype
        self.has_stats = any(isinstance(piece, StatsRun) for piece in self._pieces)
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.column("start"))

    def column(self, name: str) -> np.ndarray:
        found = self._columns.get(name)
        if found is None:
            found = self._build(name)
            self._columns[name] = found
        return found

    def _build(self, name: str) -> np.ndarray:
        if name in ("start", "end", "count"):
            dtype: np.dtype = _INT64
        elif name == "sum":
            dtype = _FLOAT64
        elif name in ("min", "max", "first", "last"):
            dtype = self.dtype
        else:
            raise KeyError(name)
        parts: list[np.ndarray] = []
        for piece in self._pieces:
            if isinstance(piece, StatsRun):
                parts.append(_statistic(piece, name))
            else:
                timestamps, values = piece
                if name in ("start", "end"):
                    parts.append(timestamps)
                elif name == "count":
                    parts.append(np.ones(len(timestamps), dtype=_INT64))
                else:
                    parts.append(values)
        if not parts:
            return np.empty(0, dtype=dtype)
        if len(parts) == 1:
            return parts[0].astype(dtype, copy=False)
        return np.concatenate(parts).astype(dtype, copy=False)


def _statistic(run: StatsRun, name: str) -> np.ndarray:
    found = {
        "start": run.start_time, "end": run.end_time, "count": run.count, "sum": run.sum, "min": run.min_value,
        "max": run.max_value, "first": run.first_value, "last": run.last_value,
    }[name]
    if found is None:
        raise KeyError(f"{name} of a BOOLEAN series")
    return found


def _cut(run: StatsRun, low: int, high: int, windows: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Which entries of a run cannot be used whole: reaching outside ``[low, high]`` or cut by a window bound.

    A bound ``x`` (a window's start, or its exclusive end) cuts ``[a, b]`` when ``a < x <= b``; window starts
    and ends are each ascending, so the bounds in ``(a, b]`` are counted with ``searchsorted``.
    """
    firsts, lasts = run.start_time, run.end_time
    cut = (firsts < low) | (lasts > high)
    if windows is not None:
        for bounds in windows:
            inside = np.searchsorted(bounds, lasts, side="right") - np.searchsorted(bounds, firsts, side="right")
            cut |= inside > 0
    return cut


def _runs(segments: Sequence[Segment | ColumnSegment], dtype: np.dtype) -> list[StatsRun | PointsSegment]:
    """``segments`` with each stretch of consecutive :class:`StatsSegment` objects as one :class:`StatsRun`."""
    pieces: list[StatsRun | PointsSegment] = []
    pending: list[StatsSegment] = []
    for segment in segments:
        if isinstance(segment, StatsSegment):
            pending.append(segment)
            continue
        if pending:
            pieces.append(StatsRun.of(pending, dtype))
            pending = []
        pieces.append(segment)
    if pending:
        pieces.append(StatsRun.of(pending, dtype))
    return pieces


def build_elements(
    scans: Sequence[tuple[int, int, Sequence[Segment | ColumnSegment]]],
    windows: tuple[np.ndarray, np.ndarray] | None,
    read: Reader,
    dtype: np.dtype,
    stats: ExecutionStats | None = None,
) -> Elements:
    """The elements of a series from the segments of each scanned range ``(low, high, segments)``.

    ``scans`` are in time order and disjoint, their segments those of ``Engine.scan`` or
    ``Engine.scan_columns``; ``windows`` (starts, exclusive ends) are the GROUP BY windows, or None for one
    window over everything scanned. Statistics that a window bound cuts, or that reach outside their range,
    are read as points with ``read`` (runs of adjacent ones with one call).
    """
    pieces: list[Piece] = []
    used = used_points = expanded = points = 0
    pending: tuple[int, int] | None = None  # a stretch of adjacent cut statistics, to read as points

    def add_points(timestamps: np.ndarray, values: np.ndarray) -> None:
        nonlocal points
        if len(timestamps):
            pieces.append((timestamps, values))
            points += len(timestamps)

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            add_points(*read(*pending))
            pending = None

    for low, high, segments in scans:
        for piece in _runs(segments, dtype):
            if isinstance(piece, PointsSegment):
                flush()
                add_points(piece.timestamps, piece.values)
                continue
            cut = _cut(piece, low, high, windows)
            if not cut.any():
                flush()
                pieces.append(piece)
                used += len(piece)
                used_points += int(piece.count.sum())
                continue
            expanded += int(np.count_nonzero(cut))
            # Stretches of entries that are all used or all cut, in time order.
            edges = [0, *(np.flatnonzero(cut[1:] != cut[:-1]) + 1).tolist(), len(cut)]
            for a, b in itertools.pairwise(edges):
                if cut[a]:
                    start = max(int(piece.start_time[a]), low) if pending is None else pending[0]
                    pending = (start, min(int(piece.end_time[b - 1]), high))
                else:
                    flush()
                    kept = piece.take(slice(a, b))
                    pieces.append(kept)
                    used += b - a
                    used_points += int(kept.count.sum())
        flush()
    if stats is not None:
        stats.stats_segments += used
        stats.stats_points += used_points
        stats.expanded_segments += expanded
        stats.points += points
    return Elements(pieces, dtype)


def element_windows(
    elements: Elements, windows: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each window's index range ``[lo, hi)`` of elements (one range over all of them without windows)."""
    if windows is None:
        return np.zeros(1, dtype=np.intp), np.full(1, len(elements), dtype=np.intp)
    starts = elements.column("start")
    return np.searchsorted(starts, windows[0], side="left"), np.searchsorted(starts, windows[1], side="left")

