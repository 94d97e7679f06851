"""Statistics pushdown: aggregates over :meth:`Engine.scan` segments instead of points where a file allows it.

``Engine.scan(path, start, end)`` gives a series' points in ``[start, end]`` as time-ordered, disjoint
segments: :class:`~iotdb_core.storage.StatsSegment` (one whole TsFile's statistics: count, sum, min, max,
first, last, time range) or :class:`~iotdb_core.storage.PointsSegment`. A StatsSegment no window bound cuts
— it lies wholly inside each window it touches, or in none — becomes one *element* of the series; every
point of a PointsSegment is an element of its own; a StatsSegment that a window bound cuts (or that
reaches outside the scanned range) is read back as points with ``Engine.query`` over its time range (runs of
adjacent such segments in one call). The elements are in time order, so each window is an index range of
them (``np.searchsorted`` of the window bounds over the elements' start times) and
:func:`~iotdb_core.query.aggregates.aggregate_elements` reduces them as it reduces points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from iotdb_core.storage.results import PointsSegment, Segment, StatsSegment

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

    ``scans``: ``Engine.scan`` calls; ``stats_segments``: StatsSegments aggregated from their statistics,
    standing for ``stats_points`` points; ``expanded_segments``: StatsSegments read back as points (a window
    bound cuts them); ``points``: points aggregated one by one on the scan path; ``point_reads``: series read
    wholly as points (raw queries; aggregates against an engine without ``scan``, with a value filter in
    WHERE, or with more than :data:`MAX_SCAN_RANGES` time intervals).
    """

    scans: int = 0
    stats_segments: int = 0
    stats_points: int = 0
    expanded_segments: int = 0
    points: int = 0
    point_reads: int = 0


Piece = tuple[np.ndarray, np.ndarray] | list[StatsSegment]


class Elements:
    """A series as time-ordered elements: single points, and file statistics standing for many points.

    Implements :class:`~iotdb_core.query.aggregates.ElementColumns`; columns are built on first use.
    """

    __slots__ = ("_columns", "_pieces", "dtype", "has_stats")

    def __init__(self, pieces: Sequence[Piece], dtype: np.dtype) -> None:
        self._pieces = list(pieces)
        self.dtype = dtype
        self.has_stats = any(isinstance(piece, list) for piece in self._pieces)
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
            if isinstance(piece, list):
                parts.append(np.array([_statistic(segment, name) for segment in piece], dtype=dtype))
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


def _statistic(segment: StatsSegment, name: str) -> object:
    if name == "start":
        return segment.start_time
    if name == "end":
        return segment.end_time
    if name == "count":
        return segment.count
    if name == "sum":
        return segment.sum
    if name == "min":
        return segment.min_value
    if name == "max":
        return segment.max_value
    if name == "first":
        return segment.first_value
    return segment.last_value


def _cut(
    segments: list[StatsSegment], low: int, high: int, windows: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Which StatsSegments cannot be used whole: reaching outside ``[low, high]`` or cut by a window bound.

    A bound ``x`` (a window's start, or its exclusive end) cuts ``[a, b]`` when ``a < x <= b``; window starts
    and ends are each ascending, so the bounds in ``(a, b]`` are counted with ``searchsorted``.
    """
    firsts = np.array([segment.start_time for segment in segments], dtype=_INT64)
    lasts = np.array([segment.end_time for segment in segments], dtype=_INT64)
    cut = (firsts < low) | (lasts > high)
    if windows is not None:
        for bounds in windows:
            inside = np.searchsorted(bounds, lasts, side="right") - np.searchsorted(bounds, firsts, side="right")
            cut |= inside > 0
    return cut


def build_elements(
    scans: Sequence[tuple[int, int, Sequence[Segment]]],
    windows: tuple[np.ndarray, np.ndarray] | None,
    read: Reader,
    dtype: np.dtype,
    stats: ExecutionStats | None = None,
) -> Elements:
    """The elements of a series from the segments of each scanned range ``(low, high, segments)``.

    ``scans`` are in time order and disjoint; ``windows`` (starts, exclusive ends) are the GROUP BY windows,
    or None for one window over everything scanned. A StatsSegment that a window bound cuts, or that reaches
    outside its range, is read as points with ``read`` (runs of adjacent ones with one call).
    """
    pieces: list[Piece] = []
    used = used_points = expanded = points = 0

    def add_points(timestamps: np.ndarray, values: np.ndarray) -> None:
        nonlocal points
        if len(timestamps):
            pieces.append((timestamps, values))
            points += len(timestamps)

    for low, high, segments in scans:
        kept = [segment for segment in segments if isinstance(segment, StatsSegment)]
        cut = iter(_cut(kept, low, high, windows).tolist() if kept else [])
        pending: tuple[int, int] | None = None  # a run of adjacent cut StatsSegments, to read as points
        for segment in segments:
            if isinstance(segment, StatsSegment) and next(cut):
                expanded += 1
                start = max(segment.start_time, low) if pending is None else pending[0]
                pending = (start, min(segment.end_time, high))
                continue
            if pending is not None:
                add_points(*read(*pending))
                pending = None
            if isinstance(segment, PointsSegment):
                add_points(segment.timestamps, segment.values)
            else:
                used += 1
                used_points += segment.count
                if pieces and isinstance(pieces[-1], list):
                    pieces[-1].append(segment)
                else:
                    pieces.append([segment])
        if pending is not None:
            add_points(*read(*pending))
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

