"""Aggregate functions over windows of one series, vectorised.

A window is an index range ``[lo, hi)`` of the series' sorted points (from ``np.searchsorted`` of the
window bounds). Disjoint windows are reduced in one ``ufunc.reduceat`` over the interleaved bounds
``lo0, hi0, lo1, hi1, ...`` (every other result is a window). Overlapping windows (a sliding step
smaller than the interval) are cut into elementary segments at every window bound; segments are
reduced with ``reduceat``, then each window combines its run of segments — sums through a prefix
sum, minima and maxima through a sparse table — so no point is visited once per window.

Result types follow IoTDB: COUNT, MIN_TIME and MAX_TIME are INT64; SUM and AVG are DOUBLE; the other
functions keep the series' type. An empty window gives COUNT 0 and null for everything else.

:func:`aggregate_elements` is the same over *elements* (:mod:`~iotdb_core.query.pushdown`): a point, or a
whole file's statistics standing for many points; each window is an index range of elements.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.query.errors import SemanticError

NUMERIC_TYPES = frozenset({TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE})
#: Functions defined on numeric series only.
NUMERIC_ONLY = frozenset({"SUM", "AVG", "EXTREME", "MIN_VALUE", "MAX_VALUE"})


def result_type(function: str, data_type: TSDataType) -> TSDataType:
    """The type of ``function`` over a series of ``data_type``; SemanticError where it is not defined."""
    if function in NUMERIC_ONLY and data_type not in NUMERIC_TYPES:
        raise SemanticError(
            f"aggregate function {function} only supports numeric data types [INT32, INT64, FLOAT, DOUBLE], "
            f"not {data_type.value}"
        )
    if function in ("COUNT", "MIN_TIME", "MAX_TIME"):
        return TSDataType.INT64
    if function in ("SUM", "AVG"):
        return TSDataType.DOUBLE
    return data_type


def aggregate(
    function: str, timestamps: np.ndarray, values: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """``function`` over each window ``[lo[i], hi[i])`` of a series: (results, null mask or None)."""
    counts = hi - lo
    if function == "COUNT":
        return counts.astype(np.int64), None
    filled = counts > 0
    nulls = None if filled.all() else ~filled
    windows = len(lo)
    starts, stops = lo[filled], hi[filled]
    if function in ("FIRST_VALUE", "LAST_VALUE", "MIN_TIME", "MAX_TIME"):
        source = values if function.endswith("VALUE") else timestamps
        picked = source[starts] if function in ("FIRST_VALUE", "MIN_TIME") else source[stops - 1]
        return _spread(picked, filled, windows, source.dtype), nulls
    if function in ("SUM", "AVG"):
        sums = _window_sums(values.astype(np.float64, copy=False), starts, stops)
        if function == "AVG":
            sums = sums / (stops - starts)
        return _spread(sums, filled, windows, np.dtype(np.float64)), nulls
    if function == "MIN_VALUE":
        return _spread(_window_reduce(np.minimum, values, starts, stops), filled, windows, values.dtype), nulls
    if function == "MAX_VALUE":
        return _spread(_window_reduce(np.maximum, values, starts, stops), filled, windows, values.dtype), nulls
    if function == "EXTREME":
        highest = _window_reduce(np.maximum, values, starts, stops)
        lowest = _window_reduce(np.minimum, values, starts, stops)
        # The value of largest magnitude; the positive one when a positive and a negative tie.
        wider = highest.astype(np.float64) >= -lowest.astype(np.float64)
        return _spread(np.where(wider, highest, lowest), filled, windows, values.dtype), nulls
    raise SemanticError(f"unknown aggregate function {function}")


class ElementColumns(Protocol):
    """Time-ordered elements of a series, each standing for ``count`` points (1 for a single point).

    ``column(name)`` gives one array over the elements: ``start``/``end`` (int64 times of the first and last
    point), ``count`` (int64), ``sum`` (float64), ``min``/``max``/``first``/``last`` (the series' dtype).
    ``has_stats`` is False when every element is a single point (``first`` then holds the values).
    """

    has_stats: bool

    def column(self, name: str) -> np.ndarray: ...


def aggregate_elements(
    function: str, elements: ElementColumns, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """``function`` over each window ``[lo[i], hi[i])`` of elements: what :func:`aggregate` gives over their points.

    Every result is the one :func:`aggregate` computes over the points the elements stand for, except that
    SUM and AVG add a file's points in the file's own order (float rounding may differ in the last bits).
    """
    if not elements.has_stats:
        return aggregate(function, elements.column("start"), elements.column("first"), lo, hi)
    if function == "COUNT":
        return _window_counts(elements.column("count"), lo, hi), None
    filled = hi > lo  # every element holds at least one point
    nulls = None if filled.all() else ~filled
    windows = len(lo)
    starts, stops = lo[filled], hi[filled]
    if function in ("FIRST_VALUE", "MIN_TIME"):
        source = elements.column("first" if function == "FIRST_VALUE" else "start")
        return _spread(source[starts], filled, windows, source.dtype), nulls
    if function in ("LAST_VALUE", "MAX_TIME"):
        source = elements.column("last" if function == "LAST_VALUE" else "end")
        return _spread(source[stops - 1], filled, windows, source.dtype), nulls
    if function in ("SUM", "AVG"):
        sums = _window_sums(elements.column("sum"), starts, stops)
        if function == "AVG":
            sums = sums / _window_counts(elements.column("count"), starts, stops)
        return _spread(sums, filled, windows, np.dtype(np.float64)), nulls
    if function in ("MIN_VALUE", "MAX_VALUE", "EXTREME"):
        lowest = highest = None
        if function != "MAX_VALUE":
            lowest = _window_reduce(np.minimum, elements.column("min"), starts, stops)
        if function != "MIN_VALUE":
            highest = _window_reduce(np.maximum, elements.column("max"), starts, stops)
        if lowest is None:
            picked = highest
        elif highest is None:
            picked = lowest
        else:
            picked = np.where(highest.astype(np.float64) >= -lowest.astype(np.float64), highest, lowest)
        dtype = elements.column("first").dtype
        return _spread(picked, filled, windows, dtype), nulls  # type: ignore[arg-type]
    raise SemanticError(f"unknown aggregate function {function}")


def _window_counts(counts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The sum of ``counts`` over each window ``[lo[i], hi[i])`` (windows may overlap), as int64."""
    prefix = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=prefix[1:])
    return prefix[hi] - prefix[lo]


def _spread(picked: np.ndarray, filled: np.ndarray, windows: int, dtype: np.dtype) -> np.ndarray:
    if len(picked) == windows:
        return picked.astype(dtype, copy=False)
    out = np.empty(windows, dtype=dtype) if dtype != np.dtype(object) else np.full(windows, None, dtype=object)
    if dtype != np.dtype(object):
        out[:] = 0
    out[filled] = picked
    return out


def _disjoint(starts: np.ndarray, stops: np.ndarray) -> bool:
    return len(starts) < 2 or bool(np.all(starts[1:] >= stops[:-1]))


def _interleaved(starts: np.ndarray, stops: np.ndarray, size: int) -> np.ndarray:
    bounds = np.empty(2 * len(starts), dtype=np.intp)
    bounds[0::2] = starts
    bounds[1::2] = stops
    if bounds[-1] >= size:
        bounds = bounds[:-1]
    return bounds


def _window_reduce(ufunc: np.ufunc, values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``ufunc`` over each non-empty window (starts ascending, stops ascending)."""
    if len(starts) == 0:
        return np.empty(0, dtype=values.dtype)
    if _disjoint(starts, stops):
        return ufunc.reduceat(values, _interleaved(starts, stops, len(values)))[0::2]
    segments, first, last = _segments(starts, stops, len(values))
    per_segment = ufunc.reduceat(values, segments)
    return _range_query(ufunc, per_segment, first, last)


def _window_sums(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    if len(starts) == 0:
        return np.empty(0, dtype=np.float64)
    if _disjoint(starts, stops):
        return np.add.reduceat(values, _interleaved(starts, stops, len(values)))[0::2]
    segments, first, last = _segments(starts, stops, len(values))
    prefix = np.concatenate(([0.0], np.cumsum(np.add.reduceat(values, segments))))
    return prefix[last] - prefix[first]


def _segments(starts: np.ndarray, stops: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elementary segments at every window bound, and each window's segment range ``[first, last)``."""
    bounds = np.unique(np.concatenate((starts, stops)))
    segments = bounds[bounds < size]
    first = np.searchsorted(bounds, starts)
    last = np.searchsorted(bounds, stops)
    return segments, first, last


def _range_query(ufunc: np.ufunc, items: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """``ufunc`` over ``items[first[i]:last[i]]`` for each i (all non-empty), with a sparse table."""
    lengths = last - first
    top = int(lengths.max()).bit_length() - 1
    levels = [items]
    for level in range(1, top + 1):
        previous = levels[-1]
        half = 1 << (level - 1)
        levels.append(ufunc(previous[:-half], previous[half:]))
    power = np.zeros(len(lengths), dtype=np.int64)
    for level in range(1, top + 1):
        power[lengths >= (1 << level)] = level
    result = np.empty(len(lengths), dtype=items.dtype)
    for level in range(top + 1):
        chosen = power == level
        if chosen.any():
            table = levels[level]
            result[chosen] = ufunc(table[first[chosen]], table[last[chosen] - (1 << level)])
    return result
