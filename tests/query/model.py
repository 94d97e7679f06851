"""A deliberately simple, pure-Python model of the query semantics, for checking the real executor.

Everything here is loops over dicts and lists — no numpy, no interval sets, no search — so a mistake in
the vectorised executor cannot be repeated here by construction. Predicates use SQL three-valued logic
directly (None is unknown).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

NUMERIC = ("INT32", "INT64", "FLOAT", "DOUBLE")


def as_float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


@dataclass
class Series:
    """One series of the model: its measurement name, type and points by timestamp."""

    measurement: str
    data_type: str
    points: dict[int, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- predicates
# A predicate is a tuple:
#   ("time", op, t)                 ("time_between", low, high, negated)     ("time_in", (t, ...), negated)
#   ("value", measurement, op, c)   ("between", measurement, low, high, negated)
#   ("in", measurement, (c, ...), negated)   ("null", measurement, negated)
#   ("and", p, q)   ("or", p, q)   ("not", p)

_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate(predicate: tuple, t: int, row: dict[str, Any]) -> bool | None:
    """Three-valued: True, False or None (unknown)."""
    kind = predicate[0]
    if kind == "time":
        return _COMPARE[predicate[1]](t, predicate[2])
    if kind == "time_between":
        inside = predicate[1] <= t <= predicate[2]
        return not inside if predicate[3] else inside
    if kind == "time_in":
        inside = t in predicate[1]
        return not inside if predicate[2] else inside
    if kind == "value":
        value = row.get(predicate[1])
        if value is None:
            return None
        return _COMPARE[predicate[2]](value, predicate[3])
    if kind == "between":
        value = row.get(predicate[1])
        if value is None:
            return None
        inside = predicate[2] <= value <= predicate[3]
        return not inside if predicate[4] else inside
    if kind == "in":
        value = row.get(predicate[1])
        if value is None:
            return None
        inside = value in predicate[2]
        return not inside if predicate[3] else inside
    if kind == "null":
        is_null = row.get(predicate[1]) is None
        return not is_null if predicate[2] else is_null
    if kind == "not":
        inner = evaluate(predicate[1], t, row)
        return None if inner is None else not inner
    left = evaluate(predicate[1], t, row)
    right = evaluate(predicate[2], t, row)
    if kind == "and":
        if left is False or right is False:
            return False
        if left is None or right is None:
            return None
        return True
    if left is True or right is True:
        return True
    if left is None or right is None:
        return None
    return False


def referenced(predicate: tuple) -> set[str]:
    """The measurements a predicate reads."""
    kind = predicate[0]
    if kind in ("and", "or"):
        return referenced(predicate[1]) | referenced(predicate[2])
    if kind == "not":
        return referenced(predicate[1])
    if kind in ("value", "between", "in", "null"):
        return {predicate[1]}
    return set()


def sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_sql(predicate: tuple) -> str:
    kind = predicate[0]
    if kind == "time":
        return f"time {predicate[1]} {predicate[2]}"
    if kind == "time_between":
        return f"time {'NOT ' if predicate[3] else ''}BETWEEN {predicate[1]} AND {predicate[2]}"
    if kind == "time_in":
        return f"time {'NOT ' if predicate[2] else ''}IN ({', '.join(str(t) for t in predicate[1])})"
    if kind == "value":
        return f"{predicate[1]} {predicate[2]} {sql_literal(predicate[3])}"
    if kind == "between":
        low, high = sql_literal(predicate[2]), sql_literal(predicate[3])
        return f"{predicate[1]} {'NOT ' if predicate[4] else ''}BETWEEN {low} AND {high}"
    if kind == "in":
        inside = ", ".join(sql_literal(v) for v in predicate[2])
        return f"{predicate[1]} {'NOT ' if predicate[3] else ''}IN ({inside})"
    if kind == "null":
        return f"{predicate[1]} IS {'NOT ' if predicate[2] else ''}NULL"
    if kind == "not":
        return f"NOT ({to_sql(predicate[1])})"
    return f"({to_sql(predicate[1])}) {kind.upper()} ({to_sql(predicate[2])})"


# ---------------------------------------------------------------------------------------------- fill


def fill_fits(data_type: str, constant: Any) -> Any:
    """The constant a FILL(constant) writes into a column of ``data_type``, or None."""
    if data_type == "TEXT":
        if isinstance(constant, bool):
            return "true" if constant else "false"
        return constant if isinstance(constant, str) else repr(constant) if isinstance(constant, float) else str(
            constant
        )
    if isinstance(constant, bool):
        return constant if data_type == "BOOLEAN" else None
    if isinstance(constant, str) or data_type == "BOOLEAN":
        return None
    if isinstance(constant, int):
        if data_type == "INT32":
            return constant if -(2**31) <= constant < 2**31 else None
        if data_type == "INT64":
            return constant
        return as_float32(float(constant)) if data_type == "FLOAT" else float(constant)
    if data_type in ("INT32", "INT64"):
        return None
    return as_float32(constant) if data_type == "FLOAT" else constant


def apply_fill(mode: Any, times: list[int], column: list[Any], data_type: str | None) -> list[Any]:
    """Fill one column in output order. ``mode`` is None, "PREVIOUS", "LINEAR" or ("CONSTANT", value)."""
    if mode is None or data_type is None:
        return column
    out = list(column)
    if mode == "PREVIOUS":
        previous = None
        for i, value in enumerate(out):
            if value is None:
                out[i] = previous
            else:
                previous = value
        return out
    if mode == "LINEAR":
        if data_type not in NUMERIC:
            return out
        for i, value in enumerate(column):
            if value is not None:
                continue
            before = next((j for j in range(i - 1, -1, -1) if column[j] is not None), None)
            after = next((j for j in range(i + 1, len(column)) if column[j] is not None), None)
            if before is None or after is None:
                continue
            t0, t1 = times[before], times[after]
            factor = 0.0 if t1 == t0 else (times[i] - t0) / (t1 - t0)
            v0, v1 = float(column[before]), float(column[after])
            guess = v0 + (v1 - v0) * factor
            if data_type in ("INT32", "INT64"):
                out[i] = math.trunc(guess)
            elif data_type == "FLOAT":
                out[i] = as_float32(guess)
            else:
                out[i] = guess
        return out
    constant = fill_fits(data_type, mode[1])
    if constant is None:
        return out
    return [constant if value is None else value for value in out]


# ------------------------------------------------------------------------------------------ queries


def raw_query(
    series: Sequence[Series],
    predicate: tuple | None,
    fill: Any = None,
    desc: bool = False,
    offset: int = 0,
    limit: int | None = None,
    context: Sequence[Series] = (),
) -> list[tuple[Any, ...]]:
    """Rows (time, value per selected series) at every time a selected series, or a series the predicate
    reads, has a point, and the predicate is true."""
    if not series:
        return []  # nothing selected: an empty result, whatever the filter reads
    everything = {s.measurement: s for s in [*context, *series]}
    joined = list(series)
    if predicate is not None:
        joined += [everything[name] for name in referenced(predicate) if name in everything]
    times = sorted({t for s in joined for t in s.points})
    rows = []
    for t in times:
        row = {name: s.points.get(t) for name, s in everything.items()}
        if predicate is None or evaluate(predicate, t, row) is True:
            rows.append((t, [s.points.get(t) for s in series]))
    if desc:
        rows.reverse()
    stamps = [t for t, _ in rows]
    columns = [[values[i] for _, values in rows] for i in range(len(series))]
    columns = [apply_fill(fill, stamps, column, s.data_type) for column, s in zip(columns, series, strict=True)]
    result = [(t, *(column[i] for column in columns)) for i, t in enumerate(stamps)]
    end = None if limit is None else offset + limit
    return result[offset:end]


def aggregate(function: str, points: list[tuple[int, Any]]) -> Any:
    """One aggregate over (time, value) pairs in time order."""
    if function == "COUNT":
        return len(points)
    if not points:
        return None
    values = [v for _, v in points]
    if function == "SUM":
        return math.fsum(float(v) for v in values)
    if function == "AVG":
        return math.fsum(float(v) for v in values) / len(values)
    if function == "MIN_VALUE":
        return min(values)
    if function == "MAX_VALUE":
        return max(values)
    if function == "EXTREME":
        top, bottom = max(values), min(values)
        return top if abs(top) >= abs(bottom) else bottom
    if function == "FIRST_VALUE":
        return values[0]
    if function == "LAST_VALUE":
        return values[-1]
    if function == "MIN_TIME":
        return points[0][0]
    if function == "MAX_TIME":
        return points[-1][0]
    raise ValueError(function)


def result_type(function: str, data_type: str) -> str:
    if function in ("COUNT", "MIN_TIME", "MAX_TIME"):
        return "INT64"
    if function in ("SUM", "AVG"):
        return "DOUBLE"
    return data_type


def windows(start: int, end: int, interval: int, step: int | None) -> list[tuple[int, int]]:
    step = interval if step is None else step
    out = []
    k = 0
    while start + k * step < end:
        low = start + k * step
        out.append((low, min(low + interval, end)))
        k += 1
    return out


def aggregate_query(
    items: Sequence[tuple[str, Series]],
    predicate: tuple | None,
    group_by: tuple[int, int, int, int | None] | None,
    fill: Any = None,
    desc: bool = False,
    offset: int = 0,
    limit: int | None = None,
    context: Sequence[Series] = (),
) -> list[tuple[Any, ...]]:
    """Rows of aggregates: one per GROUP BY window (time first), or a single row without GROUP BY."""
    aggregated = {s.measurement: s for _, s in items}
    everything = {s.measurement: s for s in [*context, *aggregated.values()]}
    candidate = sorted({t for s in aggregated.values() for t in s.points})
    passing = set()
    for t in candidate:
        row = {name: s.points.get(t) for name, s in everything.items()}
        if predicate is None or evaluate(predicate, t, row) is True:
            passing.add(t)
    kept = {
        name: sorted((t, v) for t, v in s.points.items() if t in passing) for name, s in aggregated.items()
    }
    if group_by is None:
        row = tuple(aggregate(function, kept[s.measurement]) for function, s in items)
        return [row][offset : None if limit is None else offset + limit]
    bounds = windows(*group_by)
    if desc:
        bounds.reverse()
    stamps = [low for low, _ in bounds]
    columns = []
    for function, s in items:
        points = kept[s.measurement]
        column = [aggregate(function, [(t, v) for t, v in points if low <= t < high]) for low, high in bounds]
        columns.append(apply_fill(fill, stamps, column, result_type(function, s.data_type)))
    result = [(t, *(column[i] for column in columns)) for i, t in enumerate(stamps)]
    return result[offset : None if limit is None else offset + limit]


def same(actual: Any, expected: Any, tolerance: float = 0.0) -> bool:
    """Equality of result cells, floats within ``tolerance`` (absolute) or a relative 1e-9."""
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=tolerance)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    return actual == expected


def same_rows(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], tolerance: float = 0.0) -> bool:
    return len(actual) == len(expected) and all(
        len(a) == len(e) and all(same(x, y, tolerance) for x, y in zip(a, e, strict=True))
        for a, e in zip(actual, expected, strict=True)
    )
