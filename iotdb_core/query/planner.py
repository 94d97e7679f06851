"""SELECT statements → plans: select expressions expanded against the schema, WHERE compiled, time
bounds and GROUP BY windows resolved, semantic rules checked.

Path expansion follows IoTDB: each select expression (a suffix path) is joined with each FROM prefix —
for each expression in order, for each prefix in order — and the joined pattern is matched against the
series (``*`` one level, ``**`` one or more); a pattern's matches come in path order. A pattern that
matches nothing contributes no column (IoTDB returns an empty result for a series that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iotdb_core.backend import StorageBackend
from iotdb_core.datatypes import TSDataType
from iotdb_core.paths import PathError, canonical_node, split_path
from iotdb_core.query import ast
from iotdb_core.query.aggregates import result_type
from iotdb_core.query.errors import ILLEGAL_PATH, QueryError, SemanticError
from iotdb_core.query.filters import (
    Compiled,
    IntervalSet,
    compile_predicate,
    is_time_only,
    time_bound,
)
from iotdb_core.query.groupby import MAX_WINDOWS, make_windows
from iotdb_core.query.timeexpr import Duration, TimeContext
from iotdb_core.storage.schema import SeriesSchema


class SchemaView:
    """Pattern lookups against the engine's schema, cached for the duration of one statement.

    A pattern with wildcards goes to ``Engine.list_series(pattern)``; concrete paths are looked up in one
    path → schema map built from ``Engine.list_series()`` the first time one is needed, so a statement
    naming many series scans the schema once.
    """

    def __init__(self, engine: StorageBackend) -> None:
        self._engine = engine
        self._cache: dict[str, list[SeriesSchema]] = {}
        self._by_path: dict[str, SeriesSchema] | None = None

    def expand(self, pattern: ast.Path) -> list[SeriesSchema]:
        """The series matching ``pattern`` in path order. Raises QueryError 509 for an illegal pattern."""
        text = str(pattern)
        found = self._cache.get(text)
        if found is None:
            check_path(pattern, wildcards=True)
            try:
                if pattern.has_wildcard:
                    found = list(self._engine.list_series(text))
                else:
                    if self._by_path is None:
                        everything = self._engine.list_series()
                        self._by_path = {series.path: series for series in everything}
                    canonical = ".".join(canonical_node(node) for node in pattern.nodes)
                    match = self._by_path.get(canonical)
                    found = [] if match is None else [match]
            except PathError as exc:
                raise QueryError(ILLEGAL_PATH, str(exc)) from None
            self._cache[text] = found
        return found


def check_path(path: ast.Path, *, wildcards: bool, min_levels: int = 1) -> str:
    """Validate a written path (IoTDB's rules, :func:`iotdb_core.paths.split_path`); return it as text."""
    text = str(path)
    try:
        nodes = split_path(text, allow_wildcards=wildcards)
    except PathError as exc:
        raise QueryError(ILLEGAL_PATH, str(exc)) from None
    if len(nodes) < min_levels + 1:
        raise QueryError(ILLEGAL_PATH, f"path {text!r} needs at least {min_levels} level(s) under root")
    return text


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One output column of one row source: a series (None: all nulls), an aggregate function or None."""

    series: SeriesSchema | None
    function: str | None
    data_type: TSDataType | None


@dataclass(slots=True)
class RowSource:
    """Rows computed together: one device (ALIGN BY DEVICE) or the whole query.

    ``bound`` holds every timestamp the rows may have (the time filter, exact when ``filter`` is None,
    and the GROUP BY range); ``filter`` is the row filter still to evaluate on the aligned columns.
    """

    columns: list[ColumnSpec]
    filter: Compiled | None
    device: str | None = None
    bound: IntervalSet = field(default_factory=IntervalSet.everything)


@dataclass(slots=True)
class SelectPlan:
    """A checked SELECT: result column names and types, row sources, GROUP BY windows."""

    statement: ast.Select
    names: list[str]
    types: list[TSDataType | None]
    sources: list[RowSource]
    aggregate: bool
    windows: tuple[np.ndarray, np.ndarray] | None = None


def _ticks(value: Duration | int, context: TimeContext) -> int:
    return value.units(context.precision) if isinstance(value, Duration) else value


def plan_select(statement: ast.Select, schema: SchemaView, context: TimeContext) -> SelectPlan:
    """Check and plan a SELECT (not SELECT LAST). Raises QueryError."""
    aggregate = statement.is_aggregate
    if aggregate and not all(isinstance(item, ast.AggregateItem) for item in statement.items):
        raise SemanticError("raw data and aggregation cannot be selected together (hybrid query is not supported)")
    if statement.group_by is not None and not aggregate:
        raise SemanticError("GROUP BY time windows needs aggregate functions in SELECT")
    for prefix in statement.from_paths:
        check_path(prefix, wildcards=True, min_levels=0)
    for item in statement.items:
        check_suffix(item.path)

    bound = IntervalSet.everything()
    windows = None
    if statement.group_by is not None:
        group = statement.group_by
        start = _time(group.start, context)
        end = _time(group.end, context)
        interval = _ticks(group.interval, context)
        step = None if group.step is None else _ticks(group.step, context)
        windows = make_windows(start, end, interval, step, MAX_WINDOWS)
        bound = IntervalSet.between(start, end - 1)

    if statement.align_by_device:
        names, types, sources = _plan_by_device(statement, schema, context)
    else:
        names, types, sources = _plan_aligned(statement, schema, context)
    for source in sources:
        source.bound = bound
        if source.filter is not None:
            source.bound = bound & time_bound(source.filter)
            if is_time_only(source.filter):
                source.filter = None  # applied exactly through the bound
    return SelectPlan(statement, names, types, sources, aggregate, windows)


def _time(value: ast.Literal | object, context: TimeContext) -> int:
    if isinstance(value, ast.Literal):
        if isinstance(value.value, bool) or not isinstance(value.value, int):
            raise SemanticError(f"{value.text} is not a time")
        return context.resolve(value.value)
    return context.resolve(value)  # type: ignore[arg-type]


def check_suffix(path: ast.Path) -> None:
    """A select expression's path: valid nodes, and not a full path (it is joined with FROM)."""
    try:
        split_path("root." + str(path), allow_wildcards=True)
    except PathError as exc:
        raise QueryError(ILLEGAL_PATH, str(exc).replace("'root.", "'")) from None


def _column_name(item: ast.SelectItem, name: str) -> str:
    if isinstance(item, ast.AggregateItem):
        return f"{item.function.lower()}({name})"
    return name


def _spec(item: ast.SelectItem, series: SeriesSchema) -> ColumnSpec:
    if isinstance(item, ast.AggregateItem):
        return ColumnSpec(series, item.function, result_type(item.function, series.data_type))
    return ColumnSpec(series, None, series.data_type)


def _plan_aligned(
    statement: ast.Select, schema: SchemaView, context: TimeContext
) -> tuple[list[str], list[TSDataType | None], list[RowSource]]:
    names: list[str] = []
    specs: list[ColumnSpec] = []
    for item in statement.items:
        matched = [s for prefix in statement.from_paths for s in schema.expand(prefix.join(item.path))]
        if item.alias is not None and len(matched) > 1:
            raise SemanticError(f"alias {item.alias} is given to {item.path}, which matches {len(matched)} series")
        for series in matched:
            names.append(item.alias or _column_name(item, series.path))
            specs.append(_spec(item, series))
    window = slice(statement.soffset, None if statement.slimit is None else statement.soffset + statement.slimit)
    names, specs = names[window], specs[window]

    def resolve(path: ast.Path) -> list[SeriesSchema]:
        found: dict[str, SeriesSchema] = {}
        for prefix in statement.from_paths:
            for series in schema.expand(prefix.join(path)):
                found.setdefault(series.path, series)
        return list(found.values())

    compiled = None
    if statement.where is not None:
        compiled = compile_predicate(statement.where, resolve, context)
    return names, [spec.data_type for spec in specs], [RowSource(specs, compiled)]


def _plan_by_device(
    statement: ast.Select, schema: SchemaView, context: TimeContext
) -> tuple[list[str], list[TSDataType | None], list[RowSource]]:
    # Result columns are measurement names (or function(measurement)) in first-seen order; each device
    # fills the columns it has.
    names: list[str] = []
    types: dict[str, TSDataType | None] = {}
    per_device: dict[str, dict[str, ColumnSpec]] = {}
    for item in statement.items:
        matched = [s for prefix in statement.from_paths for s in schema.expand(prefix.join(item.path))]
        measurements = {s.measurement for s in matched}
        if item.alias is not None and len(measurements) > 1:
            raise SemanticError(
                f"alias {item.alias} is given to {item.path}, which matches {len(measurements)} measurements"
            )
        for series in matched:
            name = item.alias or _column_name(item, series.measurement)
            spec = _spec(item, series)
            if name not in types:
                names.append(name)
                types[name] = spec.data_type
            elif types[name] is not spec.data_type:
                kinds = sorted(str(t.value) for t in (types[name], spec.data_type) if t is not None)
                raise SemanticError(
                    f"column {name} has different data types across devices ({' and '.join(kinds)}); "
                    "ALIGN BY DEVICE needs one type per column"
                )
            per_device.setdefault(series.device, {}).setdefault(name, spec)
    window = slice(statement.soffset, None if statement.slimit is None else statement.soffset + statement.slimit)
    names = names[window]
    sources: list[RowSource] = []
    for device in sorted(per_device):
        columns = per_device[device]
        if not any(name in columns for name in names):
            continue
        specs = [columns.get(name) or ColumnSpec(None, None, types[name]) for name in names]
        compiled = None
        if statement.where is not None:
            device_path = ast.Path(split_path(device))

            def resolve(path: ast.Path, device_path: ast.Path = device_path) -> list[SeriesSchema]:
                return schema.expand(device_path.join(path))

            compiled = compile_predicate(statement.where, resolve, context)
        sources.append(RowSource(specs, compiled, device))
    return names, [types[name] for name in names], sources


def plan_last(
    statement: ast.Select, schema: SchemaView, context: TimeContext
) -> tuple[list[SeriesSchema], IntervalSet]:
    """The series of a SELECT LAST (path order, each once, SLIMIT/SOFFSET applied) and its time filter."""
    if statement.is_aggregate:
        raise SemanticError("SELECT LAST takes series, not aggregate functions")
    for clause, present in (
        ("GROUP BY", statement.group_by is not None),
        ("FILL", statement.fill is not None),
        ("ALIGN BY DEVICE", statement.align_by_device),
    ):
        if present:
            raise SemanticError(f"SELECT LAST does not support {clause}")
    for prefix in statement.from_paths:
        check_path(prefix, wildcards=True, min_levels=0)
    for item in statement.items:
        check_suffix(item.path)
        if item.alias is not None:
            raise SemanticError("SELECT LAST does not support aliases")
    found: dict[str, SeriesSchema] = {}
    for item in statement.items:
        for prefix in statement.from_paths:
            for series in schema.expand(prefix.join(item.path)):
                found.setdefault(series.path, series)
    chosen = [found[path] for path in sorted(found)]
    end = None if statement.slimit is None else statement.soffset + statement.slimit
    chosen = chosen[statement.soffset : end]
    bound = IntervalSet.everything()
    if statement.where is not None:

        def no_series(path: ast.Path) -> list[SeriesSchema]:
            raise SemanticError(f"SELECT LAST supports only time filters in WHERE, not a filter on {path}")

        compiled = compile_predicate(statement.where, no_series, context)
        bound = time_bound(compiled)
    return chosen, bound

