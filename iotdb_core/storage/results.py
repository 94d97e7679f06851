"""What the engine's calls return: write outcomes, query results and the segments of :meth:`Engine.scan`."""

from __future__ import annotations

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
