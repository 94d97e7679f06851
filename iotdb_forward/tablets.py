"""Rows as the outbox keeps them, and outbox records as the tablets the target receives.

A write's rows become row groups, one per device and measurement list (a tablet written locally is one group);
values the local engine rejected are left out, so the target gets exactly what was stored here. When sending,
the groups of consecutive records are merged per device and measurement list into one tablet each, sorted by
time, a timestamp given twice keeping its later value — as the local engine keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from iotdb.utils.BitMap import BitMap
from iotdb.utils.IoTDBConstants import TSDataType as TargetType
from iotdb.utils.NumpyTablet import NumpyTablet

from iotdb_core.model import Row, Tablet
from iotdb_core.storage.results import WriteFailure
from iotdb_forward.outbox import Record, RowGroup

#: The local type of one series by device and measurement, or ``None`` when unknown.
TypeLookup = Callable[[str, str], str | None]

_FILL: dict[str, Any] = {"BOOLEAN": False, "INT32": 0, "INT64": 0, "FLOAT": 0.0, "DOUBLE": 0.0, "TEXT": ""}


def row_groups(rows: Sequence[Row], failures: Sequence[WriteFailure]) -> list[RowGroup]:
    """The stored points of one write as row groups, in row order within each group."""
    rejected = {(f.device, f.measurement, f.timestamp) for f in failures}
    first = rows[0]
    if all(row.device == first.device and row.measurements == first.measurements for row in rows):
        # One device and one measurement list (a tablet, or one MQTT device): column by column.
        groups = [_group(first, [row.timestamp for row in rows], [list(c) for c in zip(*(r.values for r in rows),
                                                                                         strict=True)])]
    else:
        by_key: dict[tuple[str, tuple[str, ...]], RowGroup] = {}
        for row in rows:
            key = (row.device, tuple(row.measurements))
            group = by_key.get(key)
            if group is None:
                group = by_key[key] = _group(row, [], [[] for _ in row.measurements])
            group[3].append(row.timestamp)
            for column, value in zip(group[4], row.values, strict=True):
                column.append(value)
        groups = list(by_key.values())
    return _stored(groups, rejected)


def tablet_groups(tablets: Sequence[Tablet], failures: Sequence[WriteFailure]) -> list[RowGroup]:
    """The stored points of a tablet write (the engine's checked tablets) as row groups, one per tablet:
    numpy columns become lists in C (``tolist``), without making rows."""
    groups: list[RowGroup] = []
    for tablet in tablets:
        stamps = tablet.timestamps
        timestamps: list[int] = stamps.tolist() if isinstance(stamps, np.ndarray) else list(stamps)
        columns: list[list[Any]] = [column.tolist() if isinstance(column, np.ndarray) else list(column)
                                    for column in tablet.columns]
        for position, mask in enumerate(tablet.nulls or ()):
            if mask is not None and np.any(mask):
                for index in np.flatnonzero(mask).tolist():
                    columns[position][index] = None
        types: tuple[str | None, ...] = tuple(
            None if t is None else str(getattr(t, "value", t)) for t in tablet.types) if tablet.types else \
            (None,) * len(tablet.measurements)
        groups.append((tablet.device, tuple(tablet.measurements), types, timestamps, columns))
    return _stored(groups, {(f.device, f.measurement, f.timestamp) for f in failures})


def _stored(groups: list[RowGroup], rejected: set[tuple[str, str, Any]]) -> list[RowGroup]:
    """``groups`` with the values the engine rejected left out (None), as plain Python values."""
    if rejected:
        for device, measurements, _types, timestamps, columns in groups:
            for measurement, column in zip(measurements, columns, strict=True):
                for index, timestamp in enumerate(timestamps):
                    if (device, measurement, timestamp) in rejected:
                        column[index] = None
    return [_plain(group) for group in groups]


def _group(row: Row, timestamps: list[int], columns: list[list[Any]]) -> RowGroup:
    types = tuple(t.value if t is not None else None for t in row.types) if row.types else \
        (None,) * len(row.measurements)
    return (row.device, tuple(row.measurements), types, timestamps, columns)


def _plain(group: RowGroup) -> RowGroup:
    """The group with numpy scalars turned into Python values (what :mod:`marshal` stores)."""
    device, measurements, types, timestamps, columns = group
    if any(isinstance(t, np.generic) for t in timestamps[:1]):
        timestamps = [int(t) for t in timestamps]
    plain_columns = [[v.item() if isinstance(v, np.generic) else v for v in column]
                     if column and any(isinstance(v, np.generic) for v in column[:1]) else column
                     for column in columns]
    return (device, measurements, types, timestamps, plain_columns)


def tablets(records: Sequence[Record], local_type: TypeLookup) -> list[NumpyTablet]:
    """The records' points as one tablet per device and measurement list, in the order first seen."""
    merged: dict[tuple[str, tuple[str, ...], tuple[str | None, ...]], tuple[list[int], list[list[Any]]]] = {}
    for record in records:
        for device, measurements, types, timestamps, columns in record.groups:
            key = (device, measurements, types)
            entry = merged.get(key)
            if entry is None:
                merged[key] = (list(timestamps), [list(column) for column in columns])
            else:
                entry[0].extend(timestamps)
                for into, column in zip(entry[1], columns, strict=True):
                    into.extend(column)
    out = []
    for (device, measurements, types), (timestamps, columns) in merged.items():
        tablet = _tablet(device, measurements, types, timestamps, columns, local_type)
        if tablet is not None:
            out.append(tablet)
    return out


def _tablet(device: str, measurements: tuple[str, ...], types: tuple[str | None, ...], timestamps: list[int],
            columns: list[list[Any]], local_type: TypeLookup) -> NumpyTablet | None:
    stamps = np.asarray(timestamps, dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    keep = np.ones(len(stamps), dtype=bool)
    keep[:-1] = stamps[1:] != stamps[:-1]  # of a repeated timestamp, the last write wins
    order, stamps = order[keep], stamps[keep]
    names, kinds, arrays, bitmaps = [], [], [], []
    has_nulls = False
    unique: list[int] | None = None
    for measurement, given, column in zip(measurements, types, columns, strict=True):
        if None not in column:  # the usual case: numpy does the work
            kind = given or local_type(device, measurement) or _inferred(column[0])
            target = TargetType[kind]
            array = np.array(column, dtype=target.np_dtype() if kind != "TEXT" else str)[order]
            bitmap = BitMap(len(stamps))
        else:
            if unique is None:
                unique = stamps.tolist()
            latest = {t: v for t, v in zip(timestamps, column, strict=True) if v is not None}
            values = [latest.get(t) for t in unique]  # per series: the last value given at each timestamp
            present = next((v for v in values if v is not None), None)
            if present is None:
                continue
            kind = given or local_type(device, measurement) or _inferred(present)
            target = TargetType[kind]
            has_nulls = True
            bitmap = BitMap(len(values))
            fill = _FILL[kind]
            for index, value in enumerate(values):
                if value is None:
                    bitmap.mark(index)
                    values[index] = fill
            array = np.array(values, dtype=target.np_dtype() if kind != "TEXT" else str)
        names.append(measurement)
        kinds.append(target)
        arrays.append(array)
        bitmaps.append(bitmap)
    if not names:
        return None
    return NumpyTablet(device, names, kinds, arrays, stamps, bitmaps if has_nulls else None)


def _inferred(value: object) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "DOUBLE"
    return "TEXT"
