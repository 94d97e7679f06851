"""What the engine's calls return: write outcomes, query results and the segments of :meth:`Engine.scan` and
:meth:`Engine.scan_columns`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from iotdb_core.datatypes import TSDataType


class WriteFailure(NamedTuple):
    """One point that was not written, as the caller gave it, and why."""

    device: str
    measurement: str
    timestamp: Any
    value: Any
    reason: str


@dataclass(slots=True)
class WriteResult:
    """Points written by one call (durable per ``wal_mode`` when returned) and the points that failed."""

    points_written: int = 0
    failures: list[WriteFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no point failed."""
        return not self.failures


@dataclass(frozen=True, slots=True)
class SeriesResult:
    """A series' points in time order, one per timestamp.

    ``values`` has the dtype of the series' type (bool, int32, int64, float32, float64; object holding
    ``str`` for TEXT). ``data_type`` is None for a series that does not exist (both arrays empty).
    """

    timestamps: np.ndarray
    values: np.ndarray
    data_type: TSDataType | None

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclass(frozen=True, slots=True)
class StatsSegment:
    """The points of one TsFile's series, given by its statistics instead of the points.

    ``count`` points with ``start_time <= t <= end_time``; ``sum`` is their sum as a float (for BOOLEAN
    the number of ``True`` points); ``min_value``/``max_value`` are None for BOOLEAN; ``first_value`` and
    ``last_value`` are the values at ``start_time`` and ``end_time``. TEXT series never yield one.
    """

    start_time: int
    end_time: int
    count: int
    sum: float
    min_value: int | float | None
    max_value: int | float | None
    first_value: bool | int | float
    last_value: bool | int | float


@dataclass(frozen=True, slots=True)
class PointsSegment:
    """Points in time order, one per timestamp, as :meth:`Engine.query` returns them."""

    timestamps: np.ndarray
    values: np.ndarray

    @property
    def start_time(self) -> int:
        return int(self.timestamps[0])

    @property
    def end_time(self) -> int:
        return int(self.timestamps[-1])

    @property
    def count(self) -> int:
        return len(self.timestamps)


Segment = StatsSegment | PointsSegment


@dataclass(frozen=True, slots=True)
class StatsRun:
    """Consecutive statistics of one series as parallel arrays: entry ``i`` is what a :class:`StatsSegment`
    holds (a whole TsFile's series, or one of its blocks), in time order and without overlap.

    ``start_time``, ``end_time`` and ``count`` are int64, ``sum`` float64, the others the series' dtype;
    ``min_value``/``max_value`` are None for BOOLEAN. One object stands for thousands of blocks, so a scan of
    a large series costs array work, not an object per block.
    """

    start_time: np.ndarray
    end_time: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    min_value: np.ndarray | None
    max_value: np.ndarray | None
    first_value: np.ndarray
    last_value: np.ndarray

    def __len__(self) -> int:
        return len(self.start_time)

    def take(self, index: np.ndarray | slice) -> StatsRun:
        """The entries at ``index`` (ascending), as a run of their own."""
        return StatsRun(
            self.start_time[index], self.end_time[index], self.count[index], self.sum[index],
            None if self.min_value is None else self.min_value[index],
            None if self.max_value is None else self.max_value[index],
            self.first_value[index], self.last_value[index],
        )

    def segments(self) -> list[StatsSegment]:
        """The entries as :class:`StatsSegment` objects, with Python numbers."""
        size = len(self)
        return [
            StatsSegment(*row)
            for row in zip(
                self.start_time.tolist(), self.end_time.tolist(), self.count.tolist(), self.sum.tolist(),
                [None] * size if self.min_value is None else self.min_value.tolist(),
                [None] * size if self.max_value is None else self.max_value.tolist(),
                self.first_value.tolist(), self.last_value.tolist(),
                strict=True,
            )
        ]

    @staticmethod
    def of(segments: Sequence[StatsSegment], dtype: np.dtype) -> StatsRun:
        """The run of ``segments`` (in time order) of a series whose values have ``dtype``."""
        boolean = dtype == np.dtype(np.bool_)
        return StatsRun(
            np.array([s.start_time for s in segments], dtype=np.int64),
            np.array([s.end_time for s in segments], dtype=np.int64),
            np.array([s.count for s in segments], dtype=np.int64),
            np.array([s.sum for s in segments], dtype=np.float64),
            None if boolean else np.array([s.min_value for s in segments], dtype=dtype),
            None if boolean else np.array([s.max_value for s in segments], dtype=dtype),
            np.array([s.first_value for s in segments], dtype=dtype),
            np.array([s.last_value for s in segments], dtype=dtype),
        )


#: What :meth:`Engine.scan_columns` returns: runs of statistics and runs of points, in time order.
ColumnSegment = StatsRun | PointsSegment
