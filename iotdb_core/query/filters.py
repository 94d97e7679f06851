"""WHERE clauses: time filters as interval sets, value filters as vectorised row masks.

A predicate is first rewritten without NOT (De Morgan, comparisons inverted). Under SQL's three-valued
logic a comparison with a null is unknown, and a row is kept only when the predicate is true; once no
NOT is left the predicate is monotone, so evaluating every leaf that touches a null as false gives
exactly the rows three-valued logic keeps. Each time leaf becomes an :class:`IntervalSet`; AND and OR
of time leaves are intersection and union, so a time-only predicate is one exact interval set that is
pushed down to the storage engine. A predicate with value leaves gets a bounding interval set (value
leaves count as "any time") for the read, and is evaluated row by row on the aligned columns.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.datatypes import FLOAT_MAX, INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.query import ast
from iotdb_core.query.errors import SemanticError
from iotdb_core.query.timeexpr import TimeContext, TimeExpr
from iotdb_core.storage.schema import SeriesSchema

_NUMERIC = frozenset({TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE})
_INVERSE = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# ------------------------------------------------------------------------------------------ intervals


class IntervalSet:
    """A set of int64 timestamps as sorted, disjoint, non-adjacent inclusive intervals."""

    __slots__ = ("intervals",)

    def __init__(self, intervals: Sequence[tuple[int, int]] = ()) -> None:
        self.intervals: tuple[tuple[int, int], ...] = _normalise(intervals)

    @classmethod
    def everything(cls) -> IntervalSet:
        return cls(((INT64_MIN, INT64_MAX),))

    @classmethod
    def between(cls, low: int, high: int) -> IntervalSet:
        """``[low, high]`` clipped to the int64 range (empty when ``low > high``)."""
        return cls(((low, high),))

    @classmethod
    def compare(cls, op: str, value: int) -> IntervalSet:
        """The timestamps ``t`` with ``t op value``."""
        if op == "=":
            return cls(((value, value),))
        if op == "!=":
            return cls(((INT64_MIN, value - 1), (value + 1, INT64_MAX)))
        if op == "<":
            return cls(((INT64_MIN, value - 1),))
        if op == "<=":
            return cls(((INT64_MIN, value),))
        if op == ">":
            return cls(((value + 1, INT64_MAX),))
        return cls(((value, INT64_MAX),))

    @property
    def empty(self) -> bool:
        return not self.intervals

    @property
    def is_everything(self) -> bool:
        return self.intervals == ((INT64_MIN, INT64_MAX),)

    @property
    def hull(self) -> tuple[int, int] | None:
        """The smallest single interval holding the set, or None when empty."""
        if not self.intervals:
            return None
        return self.intervals[0][0], self.intervals[-1][1]

    def __and__(self, other: IntervalSet) -> IntervalSet:
        out: list[tuple[int, int]] = []
        mine, theirs = self.intervals, other.intervals
        i = j = 0
        while i < len(mine) and j < len(theirs):
            low = max(mine[i][0], theirs[j][0])
            high = min(mine[i][1], theirs[j][1])
            if low <= high:
                out.append((low, high))
            if mine[i][1] < theirs[j][1]:
                i += 1
            else:
                j += 1
        return IntervalSet(out)

    def __or__(self, other: IntervalSet) -> IntervalSet:
        return IntervalSet(self.intervals + other.intervals)

    def __invert__(self) -> IntervalSet:
        out: list[tuple[int, int]] = []
        cursor = INT64_MIN
        for low, high in self.intervals:
            if low > cursor:
                out.append((cursor, low - 1))
            cursor = high + 1
        if cursor <= INT64_MAX:
            out.append((cursor, INT64_MAX))
        return IntervalSet(out)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSet) and self.intervals == other.intervals

    def __hash__(self) -> int:
        return hash(self.intervals)

    def __repr__(self) -> str:
        return f"IntervalSet({list(self.intervals)})"

    def contains(self, timestamp: int) -> bool:
        return any(low <= timestamp <= high for low, high in self.intervals)

    def mask(self, timestamps: np.ndarray) -> np.ndarray:
        """A boolean array: which of ``timestamps`` (int64) lie in the set."""
        if self.is_everything:
            return np.ones(len(timestamps), dtype=bool)
        if not self.intervals:
            return np.zeros(len(timestamps), dtype=bool)
        lows = np.array([low for low, _ in self.intervals], dtype=np.int64)
        highs = np.array([high for _, high in self.intervals], dtype=np.int64)
        index = np.searchsorted(lows, timestamps, side="right") - 1
        inside = index >= 0
        result = np.zeros(len(timestamps), dtype=bool)
        result[inside] = timestamps[inside] <= highs[index[inside]]
        return result


def _normalise(intervals: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    clipped = sorted(
        (max(low, INT64_MIN), min(high, INT64_MAX))
        for low, high in intervals
        if max(low, INT64_MIN) <= min(high, INT64_MAX)
    )
    merged: list[tuple[int, int]] = []
    for low, high in clipped:
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return tuple(merged)


# -------------------------------------------------------------------------------------- NOT push-down


def push_not(predicate: ast.Predicate, negate: bool = False) -> ast.Predicate:
    """``predicate`` (negated if asked) rewritten without NOT nodes."""
    if isinstance(predicate, ast.Not):
        return push_not(predicate.operand, not negate)
    if isinstance(predicate, ast.And):
        parts = tuple(push_not(p, negate) for p in predicate.operands)
        return ast.Or(parts) if negate else ast.And(parts)
    if isinstance(predicate, ast.Or):
        parts = tuple(push_not(p, negate) for p in predicate.operands)
        return ast.And(parts) if negate else ast.Or(parts)
    if not negate:
        return predicate
    if isinstance(predicate, ast.Compare):
        return ast.Compare(predicate.left, _INVERSE[predicate.op], predicate.right)
    if isinstance(predicate, ast.Between):
        return ast.Between(predicate.operand, predicate.low, predicate.high, not predicate.negated)
    if isinstance(predicate, ast.InList):
        return ast.InList(predicate.operand, predicate.values, not predicate.negated)
    if isinstance(predicate, ast.IsNull):
        return ast.IsNull(predicate.path, not predicate.negated)
    raise TypeError(f"not a predicate: {predicate!r}")  # pragma: no cover


# ------------------------------------------------------------------------------------ compiled forms


@dataclass(frozen=True, slots=True)
class Const:
    """Always true or always false (a leaf on a series that does not exist)."""

    value: bool


@dataclass(frozen=True, slots=True)
class TimeLeaf:
    times: IntervalSet


@dataclass(frozen=True, slots=True)
class ValueLeaf:
    """``series op constant``; the constant is already in the type the column is compared in."""

    series: SeriesSchema
    op: str
    constant: Any
    as_float: bool = False


@dataclass(frozen=True, slots=True)
class PairLeaf:
    """``series op series``."""

    left: SeriesSchema
    op: str
    right: SeriesSchema


@dataclass(frozen=True, slots=True)
class InLeaf:
    series: SeriesSchema
    constants: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class NullLeaf:
    series: SeriesSchema
    negated: bool  # IS NOT NULL


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Compiled, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Compiled, ...]


Compiled = Const | TimeLeaf | ValueLeaf | PairLeaf | InLeaf | NullLeaf | AllOf | AnyOf

#: Resolves a path written in WHERE to the series it stands for (none when it matches nothing).
Resolver = Callable[[ast.Path], list[SeriesSchema]]


def compile_predicate(predicate: ast.Predicate, resolve: Resolver, context: TimeContext) -> Compiled:
    """Compile a WHERE clause: NOT pushed down, paths resolved, constants typed, time leaves as intervals.

    A leaf whose path stands for several series holds for a row only when it holds for each of them
    (IoTDB joins the expansions of a WHERE expression with AND). Raises SemanticError.
    """
    return _simplify(_compile(push_not(predicate), resolve, context))


def _compile(predicate: ast.Predicate, resolve: Resolver, context: TimeContext) -> Compiled:
    if isinstance(predicate, ast.And):
        return AllOf(tuple(_compile(p, resolve, context) for p in predicate.operands))
    if isinstance(predicate, ast.Or):
        return AnyOf(tuple(_compile(p, resolve, context) for p in predicate.operands))
    if isinstance(predicate, ast.IsNull):
        series = resolve(predicate.path)
        if not series:
            return Const(not predicate.negated)  # a series that does not exist is null everywhere
        return AllOf(tuple(NullLeaf(s, predicate.negated) for s in series))
    if isinstance(predicate, ast.Compare):
        return _compile_compare(predicate, resolve, context)
    if isinstance(predicate, ast.Between):
        if isinstance(predicate.operand, ast.TimeColumn):
            low = _time_of(predicate.low, context, predicate)
            high = _time_of(predicate.high, context, predicate)
            times = IntervalSet.between(low, high)
            return TimeLeaf(~times if predicate.negated else times)
        operand = predicate.operand
        if predicate.negated:
            parts: tuple[ast.Predicate, ...] = (
                ast.Compare(operand, "<", predicate.low),
                ast.Compare(operand, ">", predicate.high),
            )
            return _compile(ast.Or(parts), resolve, context)
        parts = (ast.Compare(operand, ">=", predicate.low), ast.Compare(operand, "<=", predicate.high))
        return _compile(ast.And(parts), resolve, context)
    if isinstance(predicate, ast.InList):
        if isinstance(predicate.operand, ast.TimeColumn):
            times = IntervalSet([(t, t) for t in (_time_of(v, context, predicate) for v in predicate.values)])
            return TimeLeaf(~times if predicate.negated else times)
        series = resolve(predicate.operand)
        if not series:
            return Const(False)
        return AllOf(
            tuple(
                InLeaf(s, tuple(_typed_constant(s, v, predicate)[0] for v in predicate.values), predicate.negated)
                for s in series
            )
        )
    raise SemanticError(f"unsupported predicate {predicate}")  # pragma: no cover


def _compile_compare(predicate: ast.Compare, resolve: Resolver, context: TimeContext) -> Compiled:
    left, op, right = predicate.left, predicate.op, predicate.right
    if isinstance(left, ast.TimeColumn):
        if isinstance(right, ast.Path):
            raise SemanticError(f"time cannot be compared with series {right}: {predicate}")
        return TimeLeaf(IntervalSet.compare(op, _time_of(right, context, predicate)))
    series = resolve(left)
    if isinstance(right, ast.Path):
        others = resolve(right)
        if not series or not others:
            return Const(False)
        leaves: list[Compiled] = []
        for a in series:
            for b in others:
                _check_pair(a, b, predicate)
                leaves.append(PairLeaf(a, op, b))
        return AllOf(tuple(leaves))
    if not series:
        return Const(False)
    leaves = []
    for schema in series:
        constant, as_float = _typed_constant(schema, right, predicate)
        leaves.append(ValueLeaf(schema, op, constant, as_float))
    return AllOf(tuple(leaves))


def _time_of(value: ast.Literal | TimeExpr, context: TimeContext, predicate: object) -> int:
    if isinstance(value, TimeExpr):
        return context.resolve(value)
    if isinstance(value.value, int) and not isinstance(value.value, bool):
        return context.resolve(value.value)
    raise SemanticError(f"time can only be compared with a time value, not {value.text}: {predicate}")


def _typed_constant(schema: SeriesSchema, value: ast.Literal | TimeExpr, predicate: object) -> tuple[Any, bool]:
    """The constant to compare ``schema``'s values with, and whether the comparison is in float64."""
    data_type = schema.data_type
    if isinstance(value, TimeExpr):
        raise SemanticError(f"{schema.path} ({data_type.value}) cannot be compared with time {value}: {predicate}")
    constant = value.value
    if data_type in _NUMERIC:
        if isinstance(constant, bool) or not isinstance(constant, (int, float)):
            raise SemanticError(
                f"{schema.path} is {data_type.value}; it cannot be compared with {value.text}: {predicate}"
            )
        if data_type in (TSDataType.INT32, TSDataType.INT64):
            if isinstance(constant, int) and INT64_MIN <= constant <= INT64_MAX:
                return constant, False
            return float(constant), True
        if data_type is TSDataType.FLOAT and abs(float(constant)) <= FLOAT_MAX:
            return np.float32(constant), False
        return float(constant), True
    if data_type is TSDataType.BOOLEAN:
        if not isinstance(constant, bool):
            raise SemanticError(f"{schema.path} is BOOLEAN; it cannot be compared with {value.text}: {predicate}")
        return constant, False
    if not isinstance(constant, str):
        raise SemanticError(
            f"{schema.path} is TEXT; compare it with a quoted string, not {value.text}: {predicate}"
        )
    return constant, False


def _check_pair(a: SeriesSchema, b: SeriesSchema, predicate: object) -> None:
    kinds = {a.data_type in _NUMERIC, b.data_type in _NUMERIC}
    if kinds == {True}:
        return
    if a.data_type is b.data_type:
        return
    raise SemanticError(
        f"{a.path} ({a.data_type.value}) and {b.path} ({b.data_type.value}) cannot be compared: {predicate}"
    )


def _simplify(node: Compiled) -> Compiled:
    """Fold constants and merge the time leaves of each AND/OR into one."""
    if isinstance(node, AllOf | AnyOf):
        is_and = isinstance(node, AllOf)
        parts: list[Compiled] = []
        times: IntervalSet | None = None
        for part in (_simplify(p) for p in node.parts):
            if isinstance(part, Const):
                if part.value is not is_and:
                    return part  # false in an AND, true in an OR
                continue
            if isinstance(part, TimeLeaf):
                times = part.times if times is None else (times & part.times if is_and else times | part.times)
                continue
            if type(part) is type(node) and isinstance(part, AllOf | AnyOf):
                parts.extend(part.parts)
            else:
                parts.append(part)
        if times is not None:
            if is_and and times.empty:
                return Const(False)
            if not is_and and times.is_everything:
                return Const(True)
            if not (is_and and times.is_everything) and not (not is_and and times.empty):
                parts.insert(0, TimeLeaf(times))
        if not parts:
            return Const(is_and)
        if len(parts) == 1:
            return parts[0]
        return AllOf(tuple(parts)) if is_and else AnyOf(tuple(parts))
    if isinstance(node, TimeLeaf):
        if node.times.empty:
            return Const(False)
        if node.times.is_everything:
            return Const(True)
    return node


# -------------------------------------------------------------------------------------- using a filter


def time_bound(node: Compiled) -> IntervalSet:
    """A superset of the timestamps at which ``node`` can hold (exact when it has no value leaves)."""
    if isinstance(node, Const):
        return IntervalSet.everything() if node.value else IntervalSet()
    if isinstance(node, TimeLeaf):
        return node.times
    if isinstance(node, AllOf):
        bound = IntervalSet.everything()
        for part in node.parts:
            bound = bound & time_bound(part)
        return bound
    if isinstance(node, AnyOf):
        bound = IntervalSet()
        for part in node.parts:
            bound = bound | time_bound(part)
        return bound
    return IntervalSet.everything()


def is_time_only(node: Compiled) -> bool:
    """True when ``node`` refers to no series (its :func:`time_bound` is then exact)."""
    if isinstance(node, AllOf | AnyOf):
        return all(is_time_only(p) for p in node.parts)
    return isinstance(node, Const | TimeLeaf)


def series_of(node: Compiled) -> list[SeriesSchema]:
    """The series a filter reads, each once, in first-use order."""
    found: dict[str, SeriesSchema] = {}

    def visit(part: Compiled) -> None:
        if isinstance(part, AllOf | AnyOf):
            for child in part.parts:
                visit(child)
        elif isinstance(part, ValueLeaf | InLeaf | NullLeaf):
            found.setdefault(part.series.path, part.series)
        elif isinstance(part, PairLeaf):
            found.setdefault(part.left.path, part.left)
            found.setdefault(part.right.path, part.right)

    visit(node)
    return list(found.values())


#: An aligned column: values (length of the row timestamps) and a null mask (None: no nulls).
Column = tuple[np.ndarray, np.ndarray | None]


def evaluate(node: Compiled, timestamps: np.ndarray, columns: dict[str, Column]) -> np.ndarray:
    """The rows (boolean mask over ``timestamps``) where ``node`` holds; a leaf on a null is false."""
    size = len(timestamps)
    if isinstance(node, Const):
        return np.full(size, node.value, dtype=bool)
    if isinstance(node, TimeLeaf):
        return node.times.mask(timestamps)
    if isinstance(node, AllOf):
        result = np.ones(size, dtype=bool)
        for part in node.parts:
            result &= evaluate(part, timestamps, columns)
        return result
    if isinstance(node, AnyOf):
        result = np.zeros(size, dtype=bool)
        for part in node.parts:
            result |= evaluate(part, timestamps, columns)
        return result
    if isinstance(node, NullLeaf):
        _, nulls = columns[node.series.path]
        is_null = np.zeros(size, dtype=bool) if nulls is None else nulls
        return ~is_null if node.negated else is_null.copy()
    if isinstance(node, ValueLeaf):
        values, nulls = columns[node.series.path]
        compare = _OPS[node.op]
        as_float, constant = node.as_float, node.constant
        return _apply(values, nulls, lambda v: compare(v.astype(np.float64) if as_float else v, constant))
    if isinstance(node, InLeaf):
        values, nulls = columns[node.series.path]
        wanted = set(node.constants)
        negated = node.negated

        def member(v: np.ndarray) -> np.ndarray:
            found = np.fromiter((item in wanted for item in v.tolist()), dtype=bool, count=len(v))
            return ~found if negated else found

        return _apply(values, nulls, member)
    if isinstance(node, PairLeaf):
        left, left_nulls = columns[node.left.path]
        right, right_nulls = columns[node.right.path]
        valid = np.ones(size, dtype=bool)
        if left_nulls is not None:
            valid &= ~left_nulls
        if right_nulls is not None:
            valid &= ~right_nulls
        result = np.zeros(size, dtype=bool)
        a, b = left[valid], right[valid]
        if node.left.data_type in _NUMERIC and node.left.data_type is not node.right.data_type:
            a, b = a.astype(np.float64), b.astype(np.float64)
        result[valid] = np.asarray(_OPS[node.op](a, b), dtype=bool)
        return result
    raise TypeError(f"not a compiled predicate: {node!r}")  # pragma: no cover


def _apply(values: np.ndarray, nulls: np.ndarray | None, test: Callable[[np.ndarray], Any]) -> np.ndarray:
    if nulls is None:
        return np.asarray(test(values), dtype=bool)
    result = np.zeros(len(values), dtype=bool)
    valid = ~nulls
    result[valid] = np.asarray(test(values[valid]), dtype=bool)
    return result
