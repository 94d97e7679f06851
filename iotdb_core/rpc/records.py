"""Typed records of one call regrouped as one tablet per device, for one ``write_tablets`` call.

``insertRecords`` of many devices gives each device only a few rows per call. Row by row the engine validates
them point by point; as tablets it validates each device's rows column by column, and one ``write_tablets``
call logs the whole RPC call as one WAL record with one durability wait. A device's tablet has the union of the
measurements its records name, in order of first appearance; a record without a measurement, or with a null
value for it, has that row marked in the column's null mask. Rows keep the call's order within a device, so the
last write of a timestamp still wins. A call whose records cannot be put this way (a measurement named twice in
one record, a measurement given two types, a device that is not a string, a timestamp that is not an integer)
keeps the row path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.model import Tablet

__all__ = ["as_tablets"]

_DTYPES = {TSDataType.BOOLEAN: np.bool_, TSDataType.INT32: np.int32, TSDataType.INT64: np.int64,
           TSDataType.FLOAT: np.float32, TSDataType.DOUBLE: np.float64}
_FILL = {TSDataType.BOOLEAN: False, TSDataType.INT32: 0, TSDataType.INT64: 0, TSDataType.FLOAT: 0.0,
         TSDataType.DOUBLE: 0.0, TSDataType.TEXT: None}


class _Device:
    """The records of one device in call order, and the layout they share while they share one."""

    __slots__ = ("layout", "measurements", "rows", "timestamps", "types", "uniform")

    def __init__(self, names: tuple[str, ...], kinds: tuple[TSDataType | None, ...]) -> None:
        self.layout = names
        self.measurements = names
        self.types = kinds
        self.uniform = None not in kinds  # every record so far: this layout, no null value
        self.timestamps: list[int] = []
        self.rows: list[tuple[tuple[str, ...], Sequence[Any], Sequence[TSDataType | None]]] = []


def as_tablets(devices: Sequence[Any], timestamps: Sequence[Any], measurements: Sequence[Sequence[str]],
               values: Sequence[Sequence[Any]], kinds: Sequence[Sequence[TSDataType | None]]) -> list[Tablet] | None:
    """The records as one tablet per device, or None when they must keep the row path."""
    groups: dict[str, _Device] = {}
    for device, stamp, given, row, types in zip(devices, timestamps, measurements, values, kinds, strict=True):
        if type(device) is not str or type(stamp) is not int:
            return None
        names = given if type(given) is tuple else tuple(given)
        group = groups.get(device)
        if group is None:
            if len(set(names)) != len(names):
                return None
            group = groups[device] = _Device(names, tuple(types))
        elif group.uniform and (names != group.layout or None in types or tuple(types) != group.types):
            group.uniform = False
        group.timestamps.append(stamp)
        group.rows.append((names, row, types))
    tablets = []
    for device, group in groups.items():
        tablet = _uniform(device, group) if group.uniform else _mixed(device, group)
        if tablet is None:
            return None
        tablets.append(tablet)
    return tablets


def _uniform(device: str, group: _Device) -> Tablet:
    """Records of one layout without nulls: columns straight from the rows."""
    columns: list[Any] = [
        list(column) if data_type is TSDataType.TEXT else np.array(column, dtype=_DTYPES[data_type])  # type: ignore[index]
        for column, data_type in zip(zip(*(row for _, row, _ in group.rows), strict=True), group.types, strict=True)
    ]
    return Tablet(device, np.array(group.timestamps, dtype=np.int64), group.layout, columns, group.types)


def _mixed(device: str, group: _Device) -> Tablet | None:
    """Records of several layouts or with nulls: the union of their measurements, null masks for the gaps."""
    position: dict[str, int] = {}
    types: list[TSDataType | None] = []
    for names, _, kinds in group.rows:
        if len(names) != len(kinds) or len(set(names)) != len(names):
            return None
        for name, kind in zip(names, kinds, strict=True):
            index = position.get(name)
            if index is None:
                position[name] = len(types)
                types.append(kind)
            elif kind is not None and types[index] is not kind:
                if types[index] is not None:
                    return None  # one measurement given two types in one call
                types[index] = kind
    count = len(group.rows)
    cells: list[list[Any]] = [[None] * count for _ in types]
    for row_number, (names, row, _) in enumerate(group.rows):
        for name, value in zip(names, row, strict=True):
            cells[position[name]][row_number] = value
    columns: list[Any] = []
    nulls: list[np.ndarray | None] = []
    for column, data_type in zip(cells, types, strict=True):
        missing = np.fromiter((value is None for value in column), dtype=np.bool_, count=count)
        if data_type is None or data_type is TSDataType.TEXT:
            columns.append(column)  # None entries are the nulls
            nulls.append(None)
            continue
        fill = _FILL[data_type]
        columns.append(np.array([fill if value is None else value for value in column], dtype=_DTYPES[data_type]))
        nulls.append(missing if missing.any() else None)
    return Tablet(device, np.array(group.timestamps, dtype=np.int64), tuple(position), columns, types, nulls)
