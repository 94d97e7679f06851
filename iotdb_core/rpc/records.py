"""Typed records regrouped as tablets: one per device and measurement list, for the engine's column path.

``insertRecords`` of many devices gives each device only a few rows per call; the engine validates rows of short
runs point by point (about 15 µs a point), but a tablet column by column. Records without nulls whose device,
measurements and types repeat are therefore regrouped into tablets, written concurrently so that their WAL
appends share one group commit, and answered once all are durable. A call with a null, or whose rows of one
group are not in increasing time order (where the last write of a timestamp must win), keeps the row path.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage.results import WriteResult

__all__ = ["RecordTablet", "as_tablets", "write_tablets"]

_DTYPES = {TSDataType.BOOLEAN: np.bool_, TSDataType.INT32: np.int32, TSDataType.INT64: np.int64,
           TSDataType.FLOAT: np.float32, TSDataType.DOUBLE: np.float64}


@dataclass
class RecordTablet:
    """The records of one device with one measurement list and types, in call order."""

    device: str
    measurements: tuple[str, ...]
    types: tuple[TSDataType, ...]
    timestamps: list[int] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)

    def columns(self) -> list[Any]:
        """Column by column: numpy arrays of the types' dtypes (a list for TEXT)."""
        out: list[Any] = []
        for index, data_type in enumerate(self.types):
            values = [row[index] for row in self.rows]
            out.append(values if data_type is TSDataType.TEXT else np.array(values, dtype=_DTYPES[data_type]))
        return out


def as_tablets(devices: Sequence[str], timestamps: Sequence[Any], measurements: Sequence[Sequence[str]],
               values: Sequence[list[Any]], kinds: Sequence[list[TSDataType | None]]) -> list[RecordTablet] | None:
    """The records as tablets, or None when they must keep the row path."""
    groups: dict[tuple[Any, ...], RecordTablet] = {}
    for device, stamp, names, row, types in zip(devices, timestamps, measurements, values, kinds, strict=True):
        if not isinstance(device, str) or not isinstance(stamp, int) or None in types:
            return None
        key = (device, tuple(names), tuple(types))
        group = groups.get(key)
        if group is None:
            group = groups[key] = RecordTablet(device, tuple(names), tuple(types))  # type: ignore[arg-type]
        elif stamp <= group.timestamps[-1]:
            return None
        group.timestamps.append(stamp)
        group.rows.append(row)
    return list(groups.values())


def write_tablets(engine: Any, tablets: list[RecordTablet], executor: Executor) -> WriteResult:
    """Write the tablets (concurrently when several) and return their combined result once all are durable."""

    def write(tablet: RecordTablet) -> WriteResult:
        return engine.insert_tablet(tablet.device, np.array(tablet.timestamps, dtype=np.int64),
                                    list(tablet.measurements), tablet.columns(), list(tablet.types))

    if len(tablets) == 1:
        return write(tablets[0])
    results = [future.result() for future in [executor.submit(write, tablet) for tablet in tablets]]
    combined = WriteResult()
    for result in results:
        combined.points_written += result.points_written
        combined.failures.extend(result.failures)
    return combined
