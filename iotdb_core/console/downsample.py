"""Downsampling a series for a chart from the storage engine's block statistics.

An exact ``GROUP BY`` over pixel-column windows reads back every TsFile block a window edge cuts (about
2.5 ms a block here, so about 2.5 s for 1,000 windows whatever the series' size; see docs/benchmarks.md).
A chart does not need exact edges: here every block of :meth:`Engine.scan` is one element placed in the
window holding its first point, so a window's min, max and mean may include up to one block beyond its end,
and only the few blocks :meth:`Engine.scan` cannot describe by statistics are read as points (memtable
data, files overlapped by newer data or tombstones, one block per file that the scan is split at).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.storage import PointsSegment, StatsSegment

__all__ = ["Windows", "block_windows"]


@dataclass(frozen=True)
class Windows:
    """Non-empty windows: start times, min, max, mean and point count of each, and the blocks read."""

    starts: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    count: np.ndarray
    blocks: int
    points_read: int


def _segments(engine: Any, path: str, first: int, last: int, interval: int) -> list[Any]:
    """The scan of ``[first, last]``, split into blocks wherever one file's statistics span several windows.

    :meth:`Engine.scan` gives a file wholly inside the range as one segment; one bound inside it makes the
    scan give its blocks instead (and read back just the block the bound cuts).
    """
    segments = engine.scan(path, first, last)
    bounds = [(s.start_time + s.end_time) // 2 + 1 for s in segments
              if isinstance(s, StatsSegment) and (s.end_time - first) // interval != (s.start_time - first) // interval]
    return engine.scan(path, first, last, bounds=bounds) if bounds else segments


def block_windows(engine: Any, path: str, first: int, last: int, windows: int) -> tuple[int, Windows]:
    """``(interval, windows)`` for ``windows`` equal windows from ``first`` covering ``last``."""
    interval = max(1, -(-(last - first + 1) // windows))
    segments = _segments(engine, path, first, last, interval)
    stats = [s for s in segments if isinstance(s, StatsSegment)]
    points = [s for s in segments if isinstance(s, PointsSegment)]
    times = [np.fromiter((s.start_time for s in stats), np.int64, len(stats))]
    table = np.array([(s.count, s.sum, s.min_value, s.max_value) for s in stats], np.float64).reshape(-1, 4)
    counts = [table[:, 0].astype(np.int64)]
    sums, mins, maxs = [table[:, 1]], [table[:, 2]], [table[:, 3]]
    for segment in points:
        values = segment.values.astype(np.float64)
        times.append(segment.timestamps.astype(np.int64))
        counts.append(np.ones(len(values), np.int64))
        sums.append(values)
        mins.append(values)
        maxs.append(values)
    time = np.concatenate(times)
    order = np.argsort(time, kind="stable")  # stats and points segments interleave in time
    slot = (time[order] - first) // interval
    count, total = np.concatenate(counts)[order], np.concatenate(sums)[order]
    low, high = np.concatenate(mins)[order], np.concatenate(maxs)[order]
    if not len(slot):
        empty = np.empty(0)
        return interval, Windows(empty.astype(np.int64), empty, empty, empty, empty.astype(np.int64), 0, 0)
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    window_count = np.add.reduceat(count, starts)
    return interval, Windows(
        starts=first + slot[starts] * interval,
        min=np.minimum.reduceat(low, starts),
        max=np.maximum.reduceat(high, starts),
        mean=np.add.reduceat(total, starts) / window_count,
        count=window_count,
        blocks=len(stats),
        points_read=sum(len(s.timestamps) for s in points),
    )
