"""Running statements against a storage engine: ``execute(engine, sql)``.

SELECT reads each series once through ``Engine.query`` over the hull of the statement's time filter,
aligns series by time with ``np.unique`` / ``np.searchsorted``, evaluates value filters as row masks,
aggregates windows with ``reduceat`` (:mod:`~iotdb_core.query.aggregates`), then fills, orders and pages.
An aggregate without a value filter, against an engine with ``scan_columns`` (or ``scan``), reads segments
instead (:mod:`~iotdb_core.query.pushdown`): a file or block lying wholly inside a window contributes its
statistics.
SELECT LAST is served by ``Engine.last``. Metadata statements use ``list_series``, ``list_devices`` and
``list_databases``; writes use ``insert_records``, ``create_database`` and ``create_timeseries``.
``DELETE``, ``DELETE TIMESERIES`` and ``SET``/``UNSET TTL`` call ``engine.delete``,
``engine.delete_timeseries`` and ``engine.set_ttl`` when the engine has them (code 701 otherwise).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from iotdb_core.auth import Session
from iotdb_core.authz import ADMIN, Privilege
from iotdb_core.backend import StorageBackend, SupportsColumnScan, SupportsDelete, SupportsScan, SupportsTTL
from iotdb_core.config import Settings, default_settings
from iotdb_core.datatypes import INT64_MAX, INT64_MIN, Compressor, TSDataType, TSEncoding, ValueTypeError
from iotdb_core.paths import PathError, canonical_node, split_path
from iotdb_core.patterns import matches
from iotdb_core.query import ast
from iotdb_core.query.aggregates import aggregate, aggregate_elements
from iotdb_core.query.errors import (
    DATABASE_ALREADY_EXISTS,
    ILLEGAL_PATH,
    METADATA_ERROR,
    PATH_NOT_EXIST,
    STORAGE_ENGINE_ERROR,
    TIMESERIES_ALREADY_EXIST,
    WRITE_PROCESS_REJECT,
    QueryError,
    RowLimitExceededError,
    SemanticError,
)
from iotdb_core.query.fill import fill_constant, fill_linear, fill_previous
from iotdb_core.query.filters import IntervalSet, compile_predicate, evaluate, series_of, time_bound
from iotdb_core.query.groupby import window_bounds
from iotdb_core.query.parser import parse
from iotdb_core.query.planner import RowSource, SchemaView, check_path, plan_last, plan_select
from iotdb_core.query.pushdown import MAX_SCAN_RANGES, Elements, ExecutionStats, build_elements, element_windows
from iotdb_core.query.result import MetadataResult, ResultSet, UpdateResult
from iotdb_core.query.security import FilteredSchemaView, Guard, run_security
from iotdb_core.query.timeexpr import Now, TimeContext, TimeExpr
from iotdb_core.storage.columns import NUMPY_DTYPE
from iotdb_core.storage.errors import SchemaError, StorageError, WriteRejectedError
from iotdb_core.storage.schema import SeriesSchema

__all__ = ["ExecutionStats", "execute"]

Result = ResultSet | MetadataResult | UpdateResult
_ROOT_ALL = ast.Path(("root", "**"))
_OBJECT = np.dtype(object)


def execute(
    engine: StorageBackend,
    sql: str | ast.Statement,
    *,
    settings: Settings | None = None,
    row_limit: int | None = None,
    zone: _dt.tzinfo | None = None,
    stats: ExecutionStats | None = None,
    session: Session | None = None,
) -> Result:
    """Parse and run one statement against ``engine`` (a :class:`~iotdb_core.storage.Engine`).

    ``session`` (from :meth:`UserStore.session`) is who runs the statement: its privileges are checked
    (:mod:`~iotdb_core.query.security`) and user, role and privilege statements go to its user store.
    Without a session nothing is checked and those statements are refused (701).

    ``settings`` supplies ``timestamp_precision`` (default: the engine's settings). ``row_limit`` caps the
    rows of a result: a larger result raises :class:`~iotdb_core.query.errors.RowLimitExceededError`
    (code 708, IoTDB REST's "Dataset row size exceeded the given max row size"). ``zone`` is the time zone
    of date-times written without an offset (default: the local zone, as IoTDB's CLI). Every error a
    statement can cause is a :class:`~iotdb_core.query.errors.QueryError`. ``stats``, when given, is added
    what aggregates read: file statistics used, statistics read back as points, points (see
    :class:`~iotdb_core.query.pushdown.ExecutionStats`).
    """
    if row_limit is not None and (isinstance(row_limit, bool) or not isinstance(row_limit, int) or row_limit <= 0):
        raise SemanticError(f"row_limit should be a positive integer, got {row_limit!r}")
    statement = parse(sql) if isinstance(sql, str) else sql
    if settings is None:
        settings = engine.settings or default_settings()
    precision = settings.get("timestamp_precision", "ms")
    context = TimeContext(precision, zone, time.time_ns())
    try:
        if isinstance(statement, ast.SECURITY_STATEMENTS):
            return run_security(statement, session)
        guard = Guard(session) if session is not None and session.user != ADMIN else None
        return _Executor(engine, context, row_limit, stats, guard).run(statement)
    except QueryError:
        raise
    except PathError as exc:
        raise QueryError(ILLEGAL_PATH, str(exc)) from None
    except (SchemaError, ValueTypeError) as exc:
        raise QueryError(METADATA_ERROR, str(exc)) from None
    except WriteRejectedError as exc:
        raise QueryError(WRITE_PROCESS_REJECT, str(exc)) from None
    except StorageError as exc:
        raise QueryError(STORAGE_ENGINE_ERROR, str(exc)) from None
    except RecursionError:
        raise SemanticError("statement is nested too deeply") from None


# ------------------------------------------------------------------------------------------- helpers


def _empty(data_type: TSDataType | None) -> np.ndarray:
    return np.empty(0, dtype=NUMPY_DTYPE[data_type] if data_type is not None else _OBJECT)


def _null_column(size: int, data_type: TSDataType | None) -> tuple[np.ndarray, np.ndarray | None]:
    dtype = NUMPY_DTYPE[data_type] if data_type is not None else _OBJECT
    values = np.full(size, None, dtype=_OBJECT) if dtype == _OBJECT else np.zeros(size, dtype=dtype)
    return values, (np.ones(size, dtype=bool) if size else None)


def _union(arrays: list[np.ndarray]) -> np.ndarray:
    """The sorted distinct timestamps of several series.

    Series of one device usually share their timestamps, which is checked first. Otherwise the union is a sort
    and a neighbour comparison: numpy 2.4's ``np.unique`` hashes int64 arrays and is about 50 times slower.
    """
    first = arrays[0]
    if all(len(other) == len(first) and np.array_equal(other, first) for other in arrays[1:]):
        return first
    merged = np.sort(np.concatenate(arrays), kind="stable")
    if not len(merged):
        return merged
    keep = np.empty(len(merged), dtype=bool)
    keep[0] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _project(rows: np.ndarray, timestamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A series' values placed on ``rows`` (sorted timestamps): values and null mask (None: no nulls)."""
    size = len(rows)
    if len(timestamps) == size and np.array_equal(timestamps, rows):
        return values, None
    index = np.searchsorted(rows, timestamps)
    inside = index < size
    inside[inside] = rows[index[inside]] == timestamps[inside]
    target = index[inside]
    out = np.full(size, None, dtype=_OBJECT) if values.dtype == _OBJECT else np.zeros(size, dtype=values.dtype)
    out[target] = values[inside]
    nulls = np.ones(size, dtype=bool)
    nulls[target] = False
    return out, (nulls if nulls.any() else None)


_FORMATTERS: dict[TSDataType, Callable[[Any], str]] = {
    TSDataType.BOOLEAN: lambda value: "true" if value else "false",
    TSDataType.FLOAT: lambda value: str(np.float32(value)),
    TSDataType.DOUBLE: lambda value: repr(float(value)),
    TSDataType.INT32: lambda value: str(int(value)),
    TSDataType.INT64: lambda value: str(int(value)),
    TSDataType.TEXT: str,
}


def format_value(value: Any, data_type: TSDataType) -> str:
    """A value as IoTDB prints it in SELECT LAST's ``value`` column (FLOAT in its shortest float32 form)."""
    return _FORMATTERS[data_type](value)


def _pattern_nodes(path: ast.Path) -> tuple[str, ...]:
    return tuple(canonical_node(node) for node in path.nodes)


class _Executor:
    def __init__(
        self,
        engine: StorageBackend,
        context: TimeContext,
        row_limit: int | None,
        stats: ExecutionStats | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.engine = engine
        self.context = context
        self.row_limit = row_limit
        self.stats = stats
        self.guard = guard
        self.schema = SchemaView(engine)
        self._reads: dict[tuple[str, tuple[tuple[int, int], ...]], tuple[np.ndarray, np.ndarray]] = {}
        self._elements: dict[tuple[str, tuple[tuple[int, int], ...]], tuple[Elements, np.ndarray, np.ndarray]] = {}

    def run(self, statement: ast.Statement) -> Result:
        handler = getattr(self, "_run_" + type(statement).__name__, None)
        if handler is None:
            raise SemanticError(f"{type(statement).__name__} is not a statement this executor runs")
        reading = self._guard_reads(statement)
        result: Result = handler(statement)
        if reading is not None:
            reading.check_something_allowed()
        if self.row_limit is not None and not isinstance(result, UpdateResult) and len(result) > self.row_limit:
            raise RowLimitExceededError(self.row_limit)
        return result

    def _guard_reads(self, statement: ast.Statement) -> FilteredSchemaView | None:
        """Let SELECT see only readable series and SHOW/COUNT TIMESERIES only visible ones; the SELECT view
        is returned, to fail with 803 when it matched series but none readable."""
        if self.guard is None:
            return None
        if isinstance(statement, ast.Select):
            view = self.guard.schema(self.engine, Privilege.READ_DATA)
            self.schema = view
            return view
        if isinstance(statement, (ast.ShowTimeseries, ast.CountTimeseries)):
            self.schema = self.guard.schema(self.engine, Privilege.READ_SCHEMA)
        return None

    def _visible(self, prefixes: list[str]) -> list[str]:
        """Databases or devices the user may see (all of them without a guard)."""
        return prefixes if self.guard is None else self.guard.visible(Privilege.READ_SCHEMA, prefixes)

    def _require(self, privilege: Privilege, paths: list[str] | None = None) -> None:
        if self.guard is not None:
            self.guard.require(privilege, paths)

    def _require_pattern(self, privilege: Privilege, path: ast.Path) -> None:
        if self.guard is not None:
            self.guard.require_pattern(privilege, path)

    def _require_matched(self, privilege: Privilege, paths: tuple[ast.Path, ...]) -> None:
        """803 unless the user holds ``privilege`` on every existing series the patterns match."""
        if self.guard is not None:
            self.guard.require(privilege, sorted({s.path for path in paths for s in self.schema.expand(path)}))

    def _check_rows(self, rows: int) -> None:
        if self.row_limit is not None and rows > self.row_limit:
            raise RowLimitExceededError(self.row_limit)

    # ------------------------------------------------------------------------------------------ reading

    def _read(self, series: SeriesSchema, bound: IntervalSet) -> tuple[np.ndarray, np.ndarray]:
        key = (series.path, bound.intervals)
        cached = self._reads.get(key)
        if cached is not None:
            return cached
        hull = bound.hull
        if hull is None:
            data = (np.empty(0, dtype=np.int64), _empty(series.data_type))
        else:
            low = None if hull[0] == INT64_MIN else hull[0]
            high = None if hull[1] == INT64_MAX else hull[1]
            timestamps, values = self._query(series, low, high)
            if len(bound.intervals) > 1 and len(timestamps):
                keep = bound.mask(timestamps)
                timestamps, values = timestamps[keep], values[keep]
            data = (timestamps, values)
        if self.stats is not None:
            self.stats.point_reads += 1
        self._reads[key] = data
        return data

    def _query(self, series: SeriesSchema, low: int | None, high: int | None) -> tuple[np.ndarray, np.ndarray]:
        found = self.engine.query(series.path, low, high)
        if found.data_type is None:
            return found.timestamps, _empty(series.data_type)
        return found.timestamps, found.values

    def _scanned(
        self, series: SeriesSchema, bound: IntervalSet, windows: tuple[np.ndarray, np.ndarray] | None, scan: Any
    ) -> tuple[Elements, np.ndarray, np.ndarray]:
        """A series within ``bound`` as elements (points and file statistics), and each window's element range."""
        key = (series.path, bound.intervals)
        cached = self._elements.get(key)
        if cached is not None:
            return cached
        scans = []
        # Window bounds let the engine answer files they cut with time-aligned block statistics.
        cuts = {} if windows is None else {"bounds": np.union1d(windows[0], windows[1])}
        for low, high in bound.intervals:
            segments = scan(
                series.path, None if low == INT64_MIN else low, None if high == INT64_MAX else high, **cuts
            )
            scans.append((low, high, segments))
        if self.stats is not None:
            self.stats.scans += len(scans)
        dtype = NUMPY_DTYPE[series.data_type]

        def read(low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
            return self._query(series, low, high)

        elements = build_elements(scans, windows, read, dtype, self.stats)
        found = (elements, *element_windows(elements, windows))
        self._elements[key] = found
        return found

    # ------------------------------------------------------------------------------------------- SELECT

    def _run_Select(self, statement: ast.Select) -> ResultSet:
        if statement.last:
            return self._select_last(statement)
        plan = plan_select(statement, self.schema, self.context)
        with_time = not plan.aggregate or plan.windows is not None
        if plan.windows is not None and not statement.align_by_device:
            rows = len(plan.windows[0]) - statement.offset
            self._check_rows(max(0, rows if statement.limit is None else min(rows, statement.limit)))
        blocks: list[tuple[str | None, np.ndarray | None, list[np.ndarray], list[np.ndarray | None]]] = []
        for source in plan.sources:
            if not source.columns:
                continue
            if plan.aggregate:
                stamps, values, nulls = self._aggregate_rows(source, plan.windows)
            else:
                stamps, values, nulls = self._raw_rows(source)
            if statement.order_desc and stamps is not None:
                stamps = stamps[::-1]
                values = [v[::-1] for v in values]
                nulls = [n[::-1] if n is not None else None for n in nulls]
            if statement.fill is not None:
                values, nulls = self._fill(statement.fill, stamps, values, nulls, [c.data_type for c in source.columns])
            blocks.append((source.device, stamps, values, nulls))
        names, types = list(plan.names), list(plan.types)
        if statement.align_by_device:
            result = self._by_device(names, types, blocks, with_time)
        elif blocks:
            _, stamps, values, nulls = blocks[0]
            result = ResultSet(names, types, stamps, values, nulls)
        else:
            result = ResultSet.empty(with_time)
        return self._page(result, statement.offset, statement.limit)

    def _raw_rows(self, source: RowSource) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]:
        # Rows: every time a selected series, or a series the filter reads, has a point (IoTDB's full outer
        # join); the filter then decides which stay. A row may so hold nulls only, as in IoTDB.
        needed = {spec.series.path: spec.series for spec in source.columns if spec.series is not None}
        if not needed:
            return np.empty(0, dtype=np.int64), *self._null_columns(source, 0)
        if source.filter is not None:
            for series in series_of(source.filter):
                needed.setdefault(series.path, series)
        data = {path: self._read(series, source.bound) for path, series in needed.items()}
        rows = _union([timestamps for timestamps, _ in data.values()])
        columns = {path: _project(rows, *data[path]) for path in data}
        if source.filter is not None:
            keep = evaluate(source.filter, rows, columns)
            if not keep.all():
                rows = rows[keep]
                columns = {
                    path: (values[keep], None if nulls is None else nulls[keep])
                    for path, (values, nulls) in columns.items()
                }
        out_values: list[np.ndarray] = []
        out_nulls: list[np.ndarray | None] = []
        for spec in source.columns:
            if spec.series is None:
                values, nulls = _null_column(len(rows), spec.data_type)
            else:
                values, nulls = columns[spec.series.path]
                if nulls is not None and not nulls.any():
                    nulls = None
            out_values.append(values)
            out_nulls.append(nulls)
        return rows, out_values, out_nulls

    @staticmethod
    def _null_columns(source: RowSource, size: int) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        pairs = [_null_column(size, spec.data_type) for spec in source.columns]
        return [values for values, _ in pairs], [nulls for _, nulls in pairs]

    def _filtered_series(self, source: RowSource) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each aggregated series' points that pass the row filter (rows aligned over those series)."""
        selected = {spec.series.path: spec.series for spec in source.columns if spec.series is not None}
        data = {path: self._read(series, source.bound) for path, series in selected.items()}
        if source.filter is None or not data:
            return data
        rows = _union([timestamps for timestamps, _ in data.values()])
        columns = {path: _project(rows, *data[path]) for path in data}
        for series in series_of(source.filter):
            if series.path not in columns:
                columns[series.path] = _project(rows, *self._read(series, source.bound))
        keep = evaluate(source.filter, rows, columns)
        filtered = {}
        for path, (timestamps, values) in data.items():
            passing = keep[np.searchsorted(rows, timestamps)]
            filtered[path] = (timestamps[passing], values[passing])
        return filtered

    def _aggregate_rows(
        self, source: RowSource, windows: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray | None, list[np.ndarray], list[np.ndarray | None]]:
        """One aggregate column per select column, from ``Engine.scan_columns`` (or ``scan``) statistics when it
        can, else from points."""
        scan: Any = None
        if isinstance(self.engine, SupportsColumnScan):
            scan = self.engine.scan_columns
        elif isinstance(self.engine, SupportsScan):
            scan = self.engine.scan
        if scan is not None and source.filter is None and len(source.bound.intervals) <= MAX_SCAN_RANGES:

            def column(spec: Any) -> tuple[np.ndarray, np.ndarray | None]:
                elements, lo, hi = self._scanned(spec.series, source.bound, windows, scan)
                return aggregate_elements(spec.function, elements, lo, hi)

        else:
            data = self._filtered_series(source)
            bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}

            def column(spec: Any) -> tuple[np.ndarray, np.ndarray | None]:
                timestamps, series_values = data[spec.series.path]
                if spec.series.path not in bounds:
                    if windows is None:
                        bounds[spec.series.path] = (np.zeros(1, dtype=np.intp), np.full(1, len(timestamps)))
                    else:
                        bounds[spec.series.path] = window_bounds(timestamps, *windows)
                lo, hi = bounds[spec.series.path]
                return aggregate(spec.function, timestamps, series_values, lo, hi)

        out_values: list[np.ndarray] = []
        out_nulls: list[np.ndarray | None] = []
        size = 1 if windows is None else len(windows[0])
        for spec in source.columns:
            if spec.series is None or spec.function is None:
                values, nulls = _null_column(size, spec.data_type)
            else:
                values, nulls = column(spec)
            out_values.append(values)
            out_nulls.append(nulls)
        return (None if windows is None else windows[0]), out_values, out_nulls

    def _fill(
        self,
        fill: ast.Fill,
        stamps: np.ndarray | None,
        values: list[np.ndarray],
        nulls: list[np.ndarray | None],
        types: list[TSDataType | None],
    ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        constant = fill.value
        if isinstance(constant, TimeExpr):
            resolved = self.context.resolve(constant)
            constant = ast.Literal(resolved, str(resolved))
        out_values, out_nulls = [], []
        for column, column_nulls, data_type in zip(values, nulls, types, strict=True):
            filled = (column, column_nulls)
            if column_nulls is None or data_type is None:
                pass
            elif fill.mode == "PREVIOUS":
                filled = fill_previous(column, column_nulls)
            elif fill.mode == "LINEAR":
                if stamps is not None:
                    filled = fill_linear(stamps, column, column_nulls, data_type)
            elif constant is not None:
                filled = fill_constant(column, column_nulls, data_type, constant)
            out_values.append(filled[0])
            out_nulls.append(filled[1])
        return out_values, out_nulls

    def _by_device(
        self,
        names: list[str],
        types: list[TSDataType | None],
        blocks: list[tuple[str | None, np.ndarray | None, list[np.ndarray], list[np.ndarray | None]]],
        with_time: bool,
    ) -> ResultSet:
        columns = ["Device", *names]
        column_types: list[TSDataType | None] = [TSDataType.TEXT, *types]
        if not blocks:
            empty = [_empty(t) for t in column_types]
            return ResultSet(columns, column_types, np.empty(0, dtype=np.int64) if with_time else None, empty)
        sizes = [len(values[0]) if values else 0 for _, _, values, _ in blocks]
        device_column = np.empty(sum(sizes), dtype=_OBJECT)
        position = 0
        for (device, _, _, _), size in zip(blocks, sizes, strict=True):
            device_column[position : position + size] = device
            position += size
        out_values = [device_column]
        out_nulls: list[np.ndarray | None] = [None]
        for index, data_type in enumerate(types):
            parts = [values[index] for _, _, values, _ in blocks]
            dtype = NUMPY_DTYPE[data_type] if data_type is not None else _OBJECT
            out_values.append(np.concatenate(parts).astype(dtype, copy=False) if parts else _empty(data_type))
            null_parts = [
                mask if (mask := nulls[index]) is not None else np.zeros(size, dtype=bool)
                for (_, _, _, nulls), size in zip(blocks, sizes, strict=True)
            ]
            merged = np.concatenate(null_parts)
            out_nulls.append(merged if merged.any() else None)
        stamps = None
        if with_time:
            stamps = np.concatenate([s if s is not None else np.empty(0, np.int64) for _, s, _, _ in blocks])
        return ResultSet(columns, column_types, stamps, out_values, out_nulls)

    @staticmethod
    def _page(result: ResultSet, offset: int, limit: int | None) -> ResultSet:
        if offset == 0 and limit is None:
            return result
        window = slice(offset, None if limit is None else offset + limit)
        return ResultSet(
            result.columns,
            result.data_types,
            None if result.timestamps is None else result.timestamps[window],
            [values[window] for values in result.values],
            [None if nulls is None or not nulls[window].any() else nulls[window] for nulls in result.nulls],
        )

    def _select_last(self, statement: ast.Select) -> ResultSet:
        chosen, bound = plan_last(statement, self.schema, self.context)
        stamps: list[int] = []
        paths: list[str] = []
        shown: list[str] = []
        kinds: list[str] = []
        everything = bound.is_everything
        last = self.engine.last
        for series in chosen:
            point = last(series.path)
            if point is None:
                continue
            timestamp, value = point
            if not everything and not bound.contains(timestamp):
                point = self._last_within(series, bound, timestamp)
                if point is None:
                    continue
                timestamp, value = point
            data_type = series.data_type
            stamps.append(timestamp)
            paths.append(series.path)
            shown.append(_FORMATTERS[data_type](value))
            kinds.append(data_type.value)
        order = np.arange(len(stamps))
        times = np.array(stamps, dtype=np.int64)
        if statement.order_desc and len(stamps) > 1:
            order = np.argsort(-times, kind="stable")
        columns = [
            np.array(items, dtype=_OBJECT)[order] if items else np.empty(0, _OBJECT) for items in (paths, shown, kinds)
        ]
        result = ResultSet(
            ["timeseries", "value", "dataType"], [TSDataType.TEXT] * 3, times[order], columns, [None, None, None]
        )
        return self._page(result, statement.offset, statement.limit)

    def _last_within(self, series: SeriesSchema, bound: IntervalSet, latest: int) -> tuple[int, Any] | None:
        hull = bound.hull
        if hull is None or hull[0] > latest:
            return None
        found = self.engine.query(series.path, hull[0], min(hull[1], latest))
        keep = np.flatnonzero(bound.mask(found.timestamps))
        if not len(keep):
            return None
        index = keep[-1]
        value = found.values[index]
        return int(found.timestamps[index]), value.item() if isinstance(value, np.generic) else value

    # ----------------------------------------------------------------------------------------- metadata

    def _database_of(self, device: str, databases: set[str]) -> str | None:
        nodes = split_path(device)
        for end in range(2, len(nodes) + 1):
            candidate = ".".join(nodes[:end])
            if candidate in databases:
                return candidate
        return None

    def _run_ShowTimeseries(self, statement: ast.ShowTimeseries) -> MetadataResult:
        series = self.schema.expand(statement.path or _ROOT_ALL)
        self._check_rows(len(series))
        databases = set(self.engine.list_databases())
        rows = [
            (
                s.path,
                None,
                self._database_of(s.device, databases),
                s.data_type.value,
                s.encoding.value,
                s.compressor.value,
                None,
                None,
                None,
                None,
            )
            for s in series
        ]
        columns = [
            "timeseries",
            "alias",
            "database",
            "dataType",
            "encoding",
            "compression",
            "tags",
            "attributes",
            "deadband",
            "deadband parameters",
        ]
        return MetadataResult(columns, rows)

    def _matching(self, candidates: list[str], path: ast.Path | None) -> list[str]:
        pattern = path or _ROOT_ALL
        check_path(pattern, wildcards=True, min_levels=0)
        nodes = _pattern_nodes(pattern)
        return [item for item in candidates if matches(nodes, split_path(item))]

    def _run_ShowDevices(self, statement: ast.ShowDevices) -> MetadataResult:
        devices = self._visible(self._matching(self.engine.list_devices(), statement.path))
        return MetadataResult(["Device", "IsAligned"], [(device, "false") for device in devices])

    def _run_ShowDatabases(self, statement: ast.ShowDatabases) -> MetadataResult:
        databases = self._visible(self._matching(self.engine.list_databases(), statement.path))
        rules = list(self.engine.list_ttl().items()) if isinstance(self.engine, SupportsTTL) else []
        columns = ["Database", "TTL", "SchemaReplicationFactor", "DataReplicationFactor", "TimePartitionInterval"]
        return MetadataResult(columns, [(database, _ttl_of(database, rules), 1, 1, None) for database in databases])

    def _run_CountTimeseries(self, statement: ast.CountTimeseries) -> MetadataResult:
        return MetadataResult(["count"], [(len(self.schema.expand(statement.path or _ROOT_ALL)),)])

    def _run_CountDevices(self, statement: ast.CountDevices) -> MetadataResult:
        devices = self._visible(self._matching(self.engine.list_devices(), statement.path))
        return MetadataResult(["count"], [(len(devices),)])

    def _run_CreateDatabase(self, statement: ast.CreateDatabase) -> UpdateResult:
        text = check_path(statement.path, wildcards=False, min_levels=1)
        self._require(Privilege.MANAGE_DATABASE)
        canonical = ".".join(_pattern_nodes(statement.path))
        if canonical in self.engine.list_databases():
            raise QueryError(DATABASE_ALREADY_EXISTS, f"{canonical} has already been created as database")
        self.engine.create_database(text)
        return UpdateResult("CREATE DATABASE", 1)

    def _run_CreateTimeseries(self, statement: ast.CreateTimeseries) -> UpdateResult:
        text = check_path(statement.path, wildcards=False, min_levels=2)
        self._require(Privilege.WRITE_SCHEMA, [".".join(_pattern_nodes(statement.path))])
        try:
            data_type = TSDataType.parse(statement.data_type)
        except ValueError as exc:
            raise SemanticError(f"CREATE TIMESERIES {text}: {exc}") from None
        encoding = _enum(TSEncoding, statement.encoding, "encoding", text)
        compressor = _enum(Compressor, statement.compressor, "compressor", text)
        if self.schema.expand(statement.path):
            raise QueryError(TIMESERIES_ALREADY_EXIST, f"Path [{text}] already exist")
        self.engine.create_timeseries(text, data_type, encoding, compressor)
        return UpdateResult("CREATE TIMESERIES", 1)

    # ------------------------------------------------------------------------------------------- writes

    def _run_Insert(self, statement: ast.Insert) -> UpdateResult:
        device = check_path(statement.device, wildcards=False, min_levels=1)
        measurements: list[str] = []
        for index, column in enumerate(statement.columns):
            if index == statement.time_index:
                continue
            try:
                nodes = split_path("root." + column)
            except PathError as exc:
                raise QueryError(ILLEGAL_PATH, f"measurement {column!r}: {exc}") from None
            if len(nodes) != 2:  # pragma: no cover - the grammar gives one node per column
                raise QueryError(ILLEGAL_PATH, f"measurement {column!r} must be a single node")
            measurements.append(canonical_node(nodes[1]))
        if len(set(measurements)) != len(measurements):
            raise SemanticError(f"INSERT INTO {device}: a measurement is given twice")
        if not measurements:
            raise SemanticError(f"INSERT INTO {device}: no measurement to write")
        canonical = ".".join(_pattern_nodes(statement.device))
        self._require(Privilege.WRITE_DATA, [f"{canonical}.{m}" for m in measurements])
        known = {s.measurement: s for s in self.schema.expand(statement.device.join(ast.Path(("*",))))}
        schemas = [known.get(m) for m in measurements]
        timestamps: list[int] = []
        rows: list[list[Any]] = []
        for row in statement.rows:
            if statement.time_index is None:
                timestamps.append(self.context.resolve(TimeExpr(Now())))
            else:
                timestamps.append(self._insert_time(row[statement.time_index]))
            values = [row[i] for i in range(len(row)) if i != statement.time_index]
            rows.append([_insert_value(v, s) for v, s in zip(values, schemas, strict=True)])
        written = self.engine.insert_records(
            [device] * len(rows), timestamps, [measurements] * len(rows), rows
        )
        if written.failures:
            first = written.failures[0]
            raise QueryError(
                METADATA_ERROR,
                f"INSERT INTO {device}: {len(written.failures)} value(s) not written "
                f"({written.points_written} written); {first.device}.{first.measurement} at {first.timestamp}: "
                f"{first.reason}",
            )
        return UpdateResult("INSERT", written.points_written)

    def _insert_time(self, value: ast.Literal | TimeExpr) -> int:
        if isinstance(value, TimeExpr):
            return self.context.resolve(value)
        if isinstance(value.value, int) and not isinstance(value.value, bool):
            return self.context.resolve(value.value)
        raise SemanticError(f"INSERT: {value.text} is not a time (write an integer, a date-time or now())")

    def _time_only(self, where: ast.Predicate | None, statement: str) -> IntervalSet:
        if where is None:
            return IntervalSet.everything()

        def refuse(path: ast.Path) -> list[SeriesSchema]:
            raise SemanticError(f"{statement} supports only time filters in WHERE, not a filter on {path}")

        return time_bound(compile_predicate(where, refuse, self.context))

    def _run_DeleteData(self, statement: ast.DeleteData) -> UpdateResult:
        patterns = [check_path(path, wildcards=True, min_levels=1) for path in statement.paths]
        times = self._time_only(statement.where, "DELETE")
        self._require_matched(Privilege.WRITE_DATA, statement.paths)
        if not isinstance(self.engine, SupportsDelete):
            raise SemanticError("DELETE FROM is not supported by this storage engine")
        matched: int | None = 0
        for pattern in patterns:
            counts = [
                _engine_call(
                    self.engine.delete, pattern, None if low == INT64_MIN else low, None if high == INT64_MAX else high)
                for low, high in times.intervals
            ]
            if matched is not None and all(isinstance(count, int) for count in counts):
                matched += max(counts, default=0)  # each call reports the series the pattern matched
            else:
                matched = None
        return UpdateResult("DELETE", matched)

    def _run_DeleteTimeseries(self, statement: ast.DeleteTimeseries) -> UpdateResult:
        patterns = [check_path(path, wildcards=True, min_levels=1) for path in statement.paths]
        matched = {s.path for path in statement.paths for s in self.schema.expand(path)}
        if not matched:
            raise QueryError(PATH_NOT_EXIST, f"Timeseries [{', '.join(patterns)}] does not exist")
        self._require_matched(Privilege.WRITE_SCHEMA, statement.paths)
        if not isinstance(self.engine, SupportsDelete):
            raise SemanticError("DELETE TIMESERIES is not supported by this storage engine")
        for pattern in patterns:
            _engine_call(self.engine.delete_timeseries, pattern)
        return UpdateResult("DELETE TIMESERIES", len(matched))

    def _run_SetTTL(self, statement: ast.SetTTL) -> UpdateResult:
        pattern = check_path(statement.path, wildcards=True, min_levels=1)
        if statement.ttl_ms is not None and statement.ttl_ms <= 0:
            raise SemanticError(f"TTL should be positive, got {statement.ttl_ms}")
        self._require_pattern(Privilege.WRITE_SCHEMA, statement.path)
        return self._set_ttl("SET TTL", pattern, statement.ttl_ms)

    def _run_UnsetTTL(self, statement: ast.UnsetTTL) -> UpdateResult:
        pattern = check_path(statement.path, wildcards=True, min_levels=1)
        self._require_pattern(Privilege.WRITE_SCHEMA, statement.path)
        return self._set_ttl("UNSET TTL", pattern, None)

    def _set_ttl(self, name: str, pattern: str, ttl: int | None) -> UpdateResult:
        if not isinstance(self.engine, SupportsTTL):
            raise SemanticError(f"{name} is not supported by this storage engine")
        _engine_call(self.engine.set_ttl, pattern, ttl)
        return UpdateResult(name)


def _ttl_of(database: str, rules: list[tuple[str, int]]) -> int | None:
    """The TTL (ms) of the most specific rule covering all of ``database`` (rules are ``<pattern>.**``)."""
    nodes = split_path(database)
    best: tuple[int, int] | None = None
    for text, ttl in rules:
        base = split_path(text, allow_wildcards=True)
        if base[-1] == "**":
            base = base[:-1]
        if len(base) <= len(nodes) and matches(base, nodes[: len(base)]) and (best is None or len(base) > best[0]):
            best = (len(base), ttl)
    return None if best is None else best[1]


def _engine_call(method: Any, *args: Any) -> Any:
    """Call an engine method that validates its arguments; its ValueError/TypeError become 701."""
    try:
        return method(*args)
    except PathError:
        raise
    except (ValueError, TypeError) as exc:
        raise SemanticError(str(exc)) from None


def _enum(kind: type[Enum], name: str | None, what: str, path: str) -> Any:
    if name is None:
        return None
    try:
        return kind(name)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise SemanticError(f"CREATE TIMESERIES {path}: unknown {what} {name}; expected one of {known}") from None


def _insert_value(value: ast.Literal | TimeExpr, schema: SeriesSchema | None) -> Any:
    """An INSERT literal as the value to write: converted to the series' type where IoTDB would convert it."""
    if isinstance(value, TimeExpr):
        raise SemanticError(f"INSERT: {value} is a time, not a value")
    raw = value.value
    if raw is None or schema is None:
        return raw
    data_type = schema.data_type
    if data_type is TSDataType.TEXT:
        if isinstance(raw, str):
            return raw
        return ("true" if raw else "false") if isinstance(raw, bool) else value.text
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE) and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw

