"""What the engine's calls return: write outcomes and query results."""

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
