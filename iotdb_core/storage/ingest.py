"""Turning caller input into validated, typed points: the write path before the WAL.

Rows (``insert_record``, ``insert_records``, ``write_rows``) become :class:`SeriesChunk` lists grouped
by series; a tablet becomes :class:`TabletColumn` arrays. Paths are canonicalised, series resolved or
created (auto-create, with type inference; an explicit type wins), values coerced with IoTDB's widening
rules and timestamps checked against the int64 range. Every rejected point becomes a
:class:`WriteFailure` naming path, value and reason; with ``enable_partial_insert`` off, a row with a
rejected point is not written at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iotdb_core.datatypes import INT64_MAX, INT64_MIN, TSDataType, ValueTypeError
from iotdb_core.model import Row, Tablet
from iotdb_core.paths import PathError
from iotdb_core.storage.arguments import sequence
from iotdb_core.storage.codec import SeriesChunk, TabletColumn
from iotdb_core.storage.columns import NUMPY_DTYPE, Conversion, check_timestamp, convert_timestamps
from iotdb_core.storage.errors import InvalidArgumentError, InvalidArgumentTypeError, SchemaError
from iotdb_core.storage.memtable import SeriesKey
from iotdb_core.storage.results import WriteFailure
from iotdb_core.storage.schema import (
    SchemaRegistry,
    SeriesSchema,
    canonical_device,
    canonical_measurement,
    make_schema,
)
from iotdb_core.storage.tsfile_io import check_encoding

_TEXT_ESTIMATE = 64
#: Consecutive rows of one device and measurement list from which rows are validated column by column.
COLUMNAR_RUN = 32
ROW_REJECTED = "not written: another measurement of this row failed and enable_partial_insert is false"


def data_types(
    types: Sequence[TSDataType | str | None] | None, argument: str, count: int
) -> tuple[TSDataType | None, ...] | None:
    """``types`` as TSDataType members: IoTDB type names (``"DOUBLE"``, ``"text"``) are accepted.

    Raises InvalidArgumentError naming ``argument`` when it is not a sequence of ``count`` types, names or None.
    """
    if types is None:
        return None
    if isinstance(types, (str, bytes)) or not isinstance(types, Sequence | np.ndarray):
        raise InvalidArgumentTypeError(f"{argument}: expected a sequence of {count} data types, got {types!r}")
    if len(types) != count:
        raise InvalidArgumentError(f"{argument}: {len(types)} data types for {count} measurements")
    parsed: list[TSDataType | None] = []
    for index, kind in enumerate(types):
        if kind is None or isinstance(kind, TSDataType):
            parsed.append(kind)
        elif isinstance(kind, str):
            try:
                parsed.append(TSDataType.parse(kind))
            except ValueError as exc:
                raise InvalidArgumentError(f"{argument}[{index}]: {exc}") from None
        else:
            raise InvalidArgumentTypeError(
                f"{argument}[{index}]: expected a data type (TSDataType or a name such as 'DOUBLE'), got {kind!r}"
            )
    return tuple(parsed)


@dataclass(slots=True)
class PreparedRows:
    """Points of rows grouped by series, ready for the WAL and the memtable."""

    chunks: list[SeriesChunk] = field(default_factory=list)
    failures: list[WriteFailure] = field(default_factory=list)
    points: int = 0
    nbytes: int = 0


@dataclass(slots=True)
class PreparedTablet:
    """A tablet's accepted rows and columns, ready for the WAL and the memtable."""

    device: str
    timestamps: np.ndarray
    columns: list[TabletColumn]
    failures: list[WriteFailure]
    points: int = 0
    nbytes: int = 0


#: Memory a point takes in a memtable (a TEXT value is estimated).
_POINT_BYTES: dict[TSDataType, int] = {
    data_type: 8 + (_TEXT_ESTIMATE if data_type is TSDataType.TEXT else dtype.itemsize)
    for data_type, dtype in NUMPY_DTYPE.items()
}
_DOUBLE, _TEXT, _BOOLEAN = TSDataType.DOUBLE, TSDataType.TEXT, TSDataType.BOOLEAN


def _estimate(data_type: TSDataType, points: int) -> int:
    return points * _POINT_BYTES[data_type]


class Ingest:
    """Validation and schema resolution for writes (thread-safe; creation goes through the registry)."""

    def __init__(self, registry: SchemaRegistry, conversion: Conversion, auto_create: bool, partial: bool) -> None:
        self.registry = registry
        self.conversion = conversion
        self.auto_create = auto_create
        self.partial = partial

    # ------------------------------------------------------------------------------------------ schemas

    def _plan(
        self, device: str, nodes: tuple[str, ...], measurement: str, value: Any, declared: TSDataType | None
    ) -> SeriesSchema:
        """A schema for a series that does not exist yet. Raises SchemaError, PathError, ValueTypeError."""
        if not self.auto_create:
            raise SchemaError(
                f"timeseries {device}.{measurement} does not exist and enable_auto_create_schema is false"
            )
        self.registry.planned_database(nodes)
        data_type = declared if declared is not None else self.conversion.infer(value)
        return make_schema(device, measurement, data_type)

    def _create(self, planned: dict[SeriesKey, SeriesSchema]) -> None:
        if planned:
            self.registry.create_series(planned.values(), auto_database=True, exist_ok=True)

    # --------------------------------------------------------------------------------------------- rows

    def rows(self, rows: Sequence[Row]) -> PreparedRows:
        """Validate rows and group their points by series, creating new series.

        A run of at least :data:`COLUMNAR_RUN` consecutive rows of one device with the same measurements
        and types (a batch document, or many single-row messages of one device) whose series all exist is
        validated as a tablet, column by column: the same rules, without per-point Python work. Chunks keep
        the call's order, so the last write of a timestamp still wins.
        """
        out = PreparedRows()
        count = len(rows)
        done = start = 0
        while start < count:
            end = _run_end(rows, start)
            if end - start >= COLUMNAR_RUN and _distinct(rows[start].measurements) and self._series_exist(rows[start]):
                if done < start:
                    self._rows_one_by_one(rows[done:start], out)
                self._rows_as_tablet(rows[start:end], out)
                done = end
            start = end
        if done < count:
            self._rows_one_by_one(rows[done:] if done else rows, out)
        return out

    def _series_exist(self, row: Row) -> bool:
        """True when every measurement of the row names an existing series of its (valid) device.

        New series are left to the row-by-row path, which infers each one's type from its first value.
        """
        try:
            device, _ = canonical_device(row.device)
        except PathError:
            return False
        known = self.registry.device_series(device)
        return all(measurement in known for measurement in row.measurements)

    def _rows_as_tablet(self, run: Sequence[Row], out: PreparedRows) -> None:
        """Validate a run of one device's rows with the same measurements and types as one tablet."""
        first = run[0]
        columns = [list(column) for column in zip(*(row.values for row in run), strict=True)]
        tablet = self.tablet(first.device, [row.timestamp for row in run], first.measurements, columns, first.types)
        out.failures.extend(tablet.failures)
        for column in tablet.columns:
            timestamps = tablet.timestamps if column.mask is None else tablet.timestamps[column.mask]
            out.chunks.append(SeriesChunk(tablet.device, column.measurement, column.data_type, timestamps,
                                          column.values))
        out.points += tablet.points
        out.nbytes += tablet.nbytes

    def _rows_one_by_one(self, rows: Sequence[Row], out: PreparedRows) -> None:
        """Validate rows point by point, appending their chunks (grouped by series) to ``out``."""
        failures = out.failures
        groups: dict[SeriesKey, tuple[TSDataType, list[int], list[Any], list[Any]]] = {}
        planned: dict[SeriesKey, SeriesSchema] = {}
        get = self.registry.get
        device_series = self.registry.device_series
        convert = self.conversion.value
        partial = self.partial
        for row in rows:
            measurements, values, types = row.measurements, row.values, row.types
            timestamp = row.timestamp
            try:
                if len(measurements) != len(values) or (types is not None and len(types) != len(values)):
                    counts = f"{len(measurements)} measurements, {len(values)} values"
                    if types is not None:
                        counts += f", {len(types)} types"
                    raise ValueTypeError(f"row has {counts}")
                device, nodes = canonical_device(row.device)
                if type(timestamp) is not int or not INT64_MIN <= timestamp <= INT64_MAX:
                    timestamp = check_timestamp(timestamp)
            except (PathError, ValueTypeError) as exc:
                reason = str(exc)
                failures.extend(
                    WriteFailure(row.device, m, row.timestamp, v, reason)
                    for m, v in zip(measurements, values, strict=False)
                    if v is not None
                )
                continue
            known = device_series(device)
            accepted: list[tuple[SeriesKey, TSDataType, Any, Any]] = []
            row_failed = False
            for index, raw in enumerate(values):
                if raw is None:
                    continue
                declared = types[index] if types is not None else None
                schema = known.get(measurements[index])
                try:
                    if schema is None:
                        measurement = canonical_measurement(measurements[index])
                        schema = get(device, measurement) or planned.get((device, measurement))
                        if schema is None:
                            schema = self._plan(device, nodes, measurement, raw, declared)
                            planned[(device, measurement)] = schema
                    data_type = schema.data_type
                    if declared is None and (
                        (data_type is _DOUBLE and type(raw) is float)
                        or (data_type is _TEXT and type(raw) is str and raw.isascii())
                        or (data_type is _BOOLEAN and type(raw) is bool)
                    ):
                        value = raw  # already what coercion would return
                    else:
                        value = convert(raw, data_type, declared)
                except (PathError, ValueTypeError, SchemaError) as exc:
                    failures.append(WriteFailure(row.device, measurements[index], row.timestamp, raw, str(exc)))
                    row_failed = True
                    continue
                accepted.append(((device, schema.measurement), data_type, value, raw))
            if row_failed and not partial:
                failures.extend(
                    WriteFailure(row.device, key[1], row.timestamp, raw, ROW_REJECTED) for key, _, _, raw in accepted
                )
                continue
            for key, data_type, value, raw in accepted:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = (data_type, [], [], [])
                group[1].append(timestamp)
                group[2].append(value)
                group[3].append(raw)
        planned = {key: schema for key, schema in planned.items() if key in groups}
        self._create(planned)
        for key, group in groups.items():
            data_type, timestamps, converted, raws = group
            if key in planned:
                actual = get(*key)
                if actual is not None and actual.data_type is not data_type:
                    data_type = actual.data_type
                    timestamps, converted = self._reconvert(key, data_type, timestamps, raws, failures)
                    if not timestamps:
                        continue
            out.chunks.append(SeriesChunk(key[0], key[1], data_type, timestamps, converted))
            out.points += len(timestamps)
            out.nbytes += len(timestamps) * _POINT_BYTES[data_type]

    def _reconvert(
        self,
        key: SeriesKey,
        data_type: TSDataType,
        timestamps: list[int],
        raws: list[Any],
        failures: list[WriteFailure],
    ) -> tuple[list[int], list[Any]]:
        """Coerce again for a series another writer created first with another type."""
        kept_ts: list[int] = []
        kept: list[Any] = []
        for timestamp, raw in zip(timestamps, raws, strict=True):
            try:
                kept.append(self.conversion.value(raw, data_type))
            except ValueTypeError as exc:
                failures.append(WriteFailure(key[0], key[1], timestamp, raw, str(exc)))
            else:
                kept_ts.append(timestamp)
        return kept_ts, kept

    # ------------------------------------------------------------------------------------------ tablets

    def tablet(
        self,
        device: str,
        timestamps: Any,
        measurements: Sequence[str],
        columns: Sequence[Any],
        types: Sequence[TSDataType | None] | None,
        nulls: Sequence[np.ndarray | None] | None = None,
    ) -> PreparedTablet:
        """Validate a tablet column by column (vectorised), creating new series.

        ``nulls``, when given, holds per column None or a boolean array marking the rows without a value.
        """
        rows = len(timestamps)
        if len(columns) != len(measurements):
            raise ValueError(f"tablet has {len(measurements)} measurements but {len(columns)} columns")
        if types is not None and len(types) != len(measurements):
            raise ValueError(f"tablet has {len(measurements)} measurements but {len(types)} types")
        for measurement, column in zip(measurements, columns, strict=True):
            if len(column) != rows:
                raise ValueError(f"tablet column {measurement!r} has {len(column)} values for {rows} timestamps")
        present = _present_masks(nulls, len(columns))
        failures: list[WriteFailure] = []
        try:
            canonical, nodes = canonical_device(device)
        except PathError as exc:
            failures.extend(_all_points(device, timestamps, measurements, columns, present, str(exc)))
            return PreparedTablet(device, np.empty(0, np.int64), [], failures)
        ts_ok, ts, ts_failures = convert_timestamps(timestamps)
        row_ok = ts_ok.copy()
        for row, raw_ts, reason in ts_failures:
            failures.extend(
                WriteFailure(device, m, _py(raw_ts), _py(column[row]), reason)
                for m, column, given in zip(measurements, columns, present, strict=True)
                if _has(column, given, row)
            )
        resolved: list[tuple[str, str, SeriesSchema, Any, np.ndarray | None, TSDataType | None]] = []
        planned: dict[SeriesKey, SeriesSchema] = {}
        for index, measurement in enumerate(measurements):
            raw = columns[index]
            given = present[index]
            if given is not None and not given.any():
                continue  # every row is null
            declared = types[index] if types is not None else None
            try:
                name = canonical_measurement(measurement)
                schema = self.registry.get(canonical, name) or planned.get((canonical, name))
                if schema is None:
                    data_type = declared if declared is not None else self.conversion.infer_array(
                        raw if given is None else _select(raw, given)
                    )
                    if data_type is None:
                        continue  # every value is None
                    schema = self._plan(canonical, nodes, name, None, data_type)
                    planned[(canonical, name)] = schema
            except (PathError, ValueTypeError, SchemaError) as exc:
                reason = str(exc)
                for row in np.flatnonzero(ts_ok).tolist():
                    if _has(raw, given, row):
                        failures.append(WriteFailure(device, measurement, _py(timestamps[row]), _py(raw[row]), reason))
                        if not self.partial:
                            row_ok[row] = False
                continue
            resolved.append((measurement, name, schema, raw, given, declared))
        self._create(planned)
        converted: list[tuple[str, str, Any, TSDataType, np.ndarray, np.ndarray]] = []
        for measurement, name, schema, raw, given, declared in resolved:
            actual = self.registry.get(canonical, name) or schema
            ok, values, column_failures = self._column(raw, given, actual.data_type, declared)
            for row, value, reason in column_failures:
                if ts_ok[row]:
                    failures.append(WriteFailure(device, measurement, _py(timestamps[row]), value, reason))
                    if not self.partial:
                        row_ok[row] = False
            converted.append((measurement, name, raw, actual.data_type, ok, values))
        all_rows = bool(row_ok.all())
        if not self.partial and not all_rows:
            for measurement, _, raw, _, ok, _ in converted:
                for row in np.flatnonzero(ok & ts_ok & ~row_ok).tolist():
                    failures.append(
                        WriteFailure(device, measurement, _py(timestamps[row]), _py(raw[row]), ROW_REJECTED)
                    )
        prepared = PreparedTablet(canonical, ts if all_rows else ts[row_ok], [], failures)
        for _, name, _, data_type, column_ok, column_values in converted:
            ok, values = column_ok, column_values
            if not all_rows:
                values = column_values[row_ok[column_ok]]
                ok = column_ok[row_ok]
            count = len(values)
            if count == 0:
                continue
            mask = None if count == len(ok) else ok
            prepared.columns.append(TabletColumn(name, data_type, mask, values))
            prepared.points += count
            prepared.nbytes += _estimate(data_type, count)
        return prepared

    def _column(
        self, raw: Any, present: np.ndarray | None, data_type: TSDataType, declared: TSDataType | None
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Any, str]]]:
        """:meth:`Conversion.column` of the rows ``present`` marks (None: every row), with row numbers of the
        whole column."""
        if present is None:
            return self.conversion.column(raw, data_type, declared)
        rows = np.flatnonzero(present)
        ok_given, values, failures = self.conversion.column(_select(raw, present), data_type, declared)
        ok = np.zeros(len(present), dtype=bool)
        ok[rows[ok_given]] = True
        return ok, values, [(int(rows[row]), value, reason) for row, value, reason in failures]


#: A tablet whose shape :func:`check_tablets` accepted: device, timestamps, measurements, columns, parsed
#: types and null masks.
CheckedTablet = tuple[str, Any, Any, Any, tuple[TSDataType | None, ...] | None, list[np.ndarray | None] | None]


def check_tablets(tablets: object, call: str) -> list[CheckedTablet]:
    """The shape of every tablet of a ``write_tablets`` call, checked before anything is written.

    Returns per tablet ``(device, timestamps, measurements, columns, types, nulls)`` with type names parsed
    and null masks as boolean arrays. Raises InvalidArgumentError (or its TypeError kind) naming the call,
    the tablet's index and the field, so one wrong-shaped tablet refuses the whole call.
    """
    checked: list[CheckedTablet] = []
    for index, tablet in enumerate(sequence(tablets, f"{call}: tablets")):
        where = f"{call}: tablets[{index}]"
        if not isinstance(tablet, Tablet):
            raise InvalidArgumentTypeError(f"{where}: expected a Tablet, got {type(tablet).__name__}")
        if not isinstance(tablet.device, str):
            raise InvalidArgumentTypeError(f"{where}.device: expected a string, got {type(tablet.device).__name__}")
        timestamps = sequence(tablet.timestamps, f"{where}.timestamps")
        measurements = sequence(tablet.measurements, f"{where}.measurements")
        columns = sequence(tablet.columns, f"{where}.columns")
        rows, width = len(timestamps), len(measurements)
        if len(columns) != width:
            raise InvalidArgumentError(f"{where}.columns: {len(columns)} columns for {width} measurements")
        for position, column in enumerate(columns):
            if len(sequence(column, f"{where}.columns[{position}]")) != rows:
                raise InvalidArgumentError(
                    f"{where}.columns[{position}]: {len(column)} values for {rows} timestamps"
                )
        types = data_types(tablet.types, f"{where}.types", width)
        nulls: list[np.ndarray | None] | None = None
        if tablet.nulls is not None:
            given = sequence(tablet.nulls, f"{where}.nulls")
            if len(given) != width:
                raise InvalidArgumentError(f"{where}.nulls: {len(given)} null masks for {width} columns")
            nulls = [_null_mask(mask, f"{where}.nulls[{position}]", rows) for position, mask in enumerate(given)]
        checked.append((tablet.device, timestamps, measurements, columns, types, nulls))
    return checked


def _null_mask(mask: object, argument: str, rows: int) -> np.ndarray | None:
    """A null mask as a boolean array of ``rows`` entries (None stays None); InvalidArgumentError otherwise."""
    if mask is None:
        return None
    values = sequence(mask, argument)
    if isinstance(values, np.ndarray):
        if values.dtype != np.bool_:
            raise InvalidArgumentTypeError(f"{argument}: expected a boolean array, got dtype {values.dtype}")
        array = values
    else:
        if not all(type(value) is bool or isinstance(value, np.bool_) for value in values):
            raise InvalidArgumentTypeError(f"{argument}: expected booleans (true where the row has no value)")
        array = np.array(values, dtype=np.bool_)
    if len(array) != rows:
        raise InvalidArgumentError(f"{argument}: {len(array)} entries for {rows} timestamps")
    return array


def _present_masks(nulls: Sequence[np.ndarray | None] | None, width: int) -> list[np.ndarray | None]:
    """Per column the rows that have a value (None: every row whose entry is not None)."""
    if nulls is None:
        return [None] * width
    return [None if mask is None or not mask.any() else ~mask for mask in nulls]


def _select(raw: Any, present: np.ndarray) -> Any:
    """The entries of a column at the rows ``present`` marks."""
    if isinstance(raw, np.ndarray):
        return raw[present]
    return [value for value, keep in zip(raw, present.tolist(), strict=True) if keep]


def _has(column: Any, present: np.ndarray | None, row: int) -> bool:
    """Whether a column holds a value at ``row``."""
    return (present is None or bool(present[row])) and column[row] is not None


def _run_end(rows: Sequence[Row], start: int) -> int:
    """End of the run of rows from ``start`` sharing device, measurements and types, each well formed."""
    first = rows[start]
    device, measurements, types = first.device, first.measurements, first.types
    width = len(measurements)
    if len(first.values) != width or (types is not None and len(types) != width):
        return start + 1
    end = start + 1
    count = len(rows)
    while end < count:
        row = rows[end]
        if (
            (row.device is not device and row.device != device)
            or (row.measurements is not measurements and row.measurements != measurements)
            or (row.types is not types and row.types != types)
            or len(row.values) != width
        ):
            break
        end += 1
    return end


def _distinct(measurements: Sequence[str]) -> bool:
    """True when no measurement is named twice: column by column, the order of two writes of one series at one
    timestamp would be lost."""
    return len(set(measurements)) == len(measurements)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _all_points(
    device: str,
    timestamps: Any,
    measurements: Sequence[str],
    columns: Sequence[Any],
    present: Sequence[np.ndarray | None],
    reason: str,
) -> list[WriteFailure]:
    return [
        WriteFailure(device, measurement, _py(timestamps[row]), _py(column[row]), reason)
        for measurement, column, given in zip(measurements, columns, present, strict=True)
        for row in range(len(timestamps))
        if _has(column, given, row)
    ]


def check_series_encoding(schema: SeriesSchema) -> None:
    """Raise SchemaError when the series' encoding cannot store its type losslessly in a TsFile."""
    try:
        check_encoding(schema.data_type, schema.encoding)
    except ValueError as exc:
        raise SchemaError(f"timeseries {schema.path}: {exc}") from None
