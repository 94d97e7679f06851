"""The vectorised building blocks against the model, without an engine: many cheap examples each."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotdb_core.datatypes import INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.query.aggregates import aggregate, result_type
from iotdb_core.query.ast import Literal
from iotdb_core.query.errors import SemanticError
from iotdb_core.query.fill import constant_for, fill_constant, fill_linear, fill_previous
from iotdb_core.query.filters import IntervalSet
from iotdb_core.query.groupby import make_windows, window_bounds

from . import model

MANY = settings(max_examples=300, deadline=None)
FUNCTIONS = ("COUNT", "SUM", "AVG", "MIN_VALUE", "MAX_VALUE", "EXTREME", "FIRST_VALUE", "LAST_VALUE", "MIN_TIME",
             "MAX_TIME")


@st.composite
def series_and_windows(draw: st.DrawFn) -> tuple[list[int], list[int], tuple[int, int, int, int | None]]:
    stamps = sorted(draw(st.sets(st.integers(0, 50), max_size=40)))
    values = draw(st.lists(st.integers(-6, 6), min_size=len(stamps), max_size=len(stamps)))
    start = draw(st.integers(-3, 45))
    end = start + draw(st.integers(1, 60))
    interval = draw(st.integers(1, 20))
    step = draw(st.none() | st.integers(1, 20))
    return stamps, values, (start, end, interval, step)


@MANY
@given(case=series_and_windows(), function=st.sampled_from(FUNCTIONS), dtype=st.sampled_from(["int64", "float64"]))
def test_window_aggregates_match_model(case: tuple, function: str, dtype: str) -> None:
    stamps, values, (start, end, interval, step) = case
    timestamps = np.array(stamps, dtype=np.int64)
    array = np.array(values, dtype=dtype)
    starts, ends = make_windows(start, end, interval, step)
    expected_windows = model.windows(start, end, interval, step)
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == expected_windows
    lo, hi = window_bounds(timestamps, starts, ends)
    got, nulls = aggregate(function, timestamps, array, lo, hi)
    cells = got.tolist()
    if nulls is not None:
        cells = [None if null else cell for cell, null in zip(cells, nulls.tolist(), strict=True)]
    points = list(zip(stamps, array.tolist(), strict=True))
    expected = [
        model.aggregate(function, [(t, v) for t, v in points if low <= t < high]) for low, high in expected_windows
    ]
    assert model.same_rows([tuple(cells)], [tuple(expected)], 1e-9), (cells, expected)


def test_extreme_prefers_the_positive_value_on_a_tie() -> None:
    timestamps = np.arange(4, dtype=np.int64)
    values = np.array([-5.0, 3.0, 5.0, -2.0])
    got, _ = aggregate("EXTREME", timestamps, values, np.array([0, 0, 3]), np.array([4, 2, 4]))
    assert got.tolist() == [5.0, -5.0, -2.0]


def test_sliding_windows_reduce_runs_of_segments() -> None:
    timestamps = np.arange(100, dtype=np.int64)
    values = np.arange(100, dtype=np.float64) % 7
    starts, ends = make_windows(0, 100, 30, 3)
    lo, hi = window_bounds(timestamps, starts, ends)
    for function in ("SUM", "MIN_VALUE", "MAX_VALUE"):
        got, _ = aggregate(function, timestamps, values, lo, hi)
        windows = zip(starts.tolist(), ends.tolist(), strict=True)
        expected = [model.aggregate(function, [(t, values[t]) for t in range(a, b)]) for a, b in windows]
        assert np.allclose(got, expected), function


def test_disjoint_windows_skip_points_in_gaps() -> None:
    timestamps = np.arange(20, dtype=np.int64)
    values = np.ones(20)
    starts, ends = make_windows(0, 20, 2, 5)
    lo, hi = window_bounds(timestamps, starts, ends)
    got, _ = aggregate("SUM", timestamps, values, lo, hi)
    assert got.tolist() == [2.0, 2.0, 2.0, 2.0]


def test_result_types_and_numeric_only_functions() -> None:
    assert result_type("COUNT", TSDataType.TEXT) is TSDataType.INT64
    assert result_type("AVG", TSDataType.INT32) is TSDataType.DOUBLE
    assert result_type("MAX_VALUE", TSDataType.FLOAT) is TSDataType.FLOAT
    assert result_type("LAST_VALUE", TSDataType.BOOLEAN) is TSDataType.BOOLEAN
    with pytest.raises(SemanticError, match="only supports numeric"):
        result_type("SUM", TSDataType.BOOLEAN)


def test_windows_at_the_ends_of_the_int64_range() -> None:
    starts, ends = make_windows(INT64_MIN, INT64_MAX, 2**62, None)
    assert starts.tolist() == [INT64_MIN, -(2**62), 0, 2**62]
    assert ends.tolist() == [-(2**62), 0, 2**62, INT64_MAX]
    with pytest.raises(SemanticError, match="at most"):
        make_windows(0, INT64_MAX, 1, None)
    with pytest.raises(SemanticError, match="smaller than the end"):
        make_windows(5, 5, 1, None)
    with pytest.raises(SemanticError, match="positive"):
        make_windows(0, 5, 0, None)


@st.composite
def columns(draw: st.DrawFn) -> tuple[list[int], list[float | None]]:
    size = draw(st.integers(0, 25))
    stamps = sorted(draw(st.sets(st.integers(-30, 30), min_size=size, max_size=size)))
    cells = draw(st.lists(st.none() | st.integers(-9, 9).map(float), min_size=size, max_size=size))
    return stamps, cells


def _as_column(cells: list, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    nulls = np.array([c is None for c in cells], dtype=bool)
    values = np.array([0 if c is None else c for c in cells], dtype=dtype)
    return values, (nulls if nulls.any() else None)


def _cells(values: np.ndarray, nulls: np.ndarray | None) -> list:
    items = values.tolist()
    if nulls is not None:
        items = [None if n else v for v, n in zip(items, nulls.tolist(), strict=True)]
    return items


@MANY
@given(case=columns(), kind=st.sampled_from(["DOUBLE", "FLOAT", "INT64", "INT32"]))
def test_fills_match_model(case: tuple, kind: str) -> None:
    stamps, cells = case
    dtype = {"DOUBLE": "float64", "FLOAT": "float32", "INT64": "int64", "INT32": "int32"}[kind]
    if kind in ("INT64", "INT32"):
        cells = [None if c is None else int(c) for c in cells]
    values, nulls = _as_column(cells, dtype)
    assert _cells(*fill_previous(values, nulls)) == model.apply_fill("PREVIOUS", stamps, cells, kind)
    timestamps = np.array(stamps, dtype=np.int64)
    linear = _cells(*fill_linear(timestamps, values, nulls, TSDataType(kind)))
    assert model.same_rows([tuple(linear)], [tuple(model.apply_fill("LINEAR", stamps, cells, kind))], 1e-6)
    for constant in (Literal(2, "2"), Literal(-1.5, "-1.5"), Literal(True, "true"), Literal("x", "'x'")):
        filled = _cells(*fill_constant(values, nulls, TSDataType(kind), constant))
        assert filled == model.apply_fill(("CONSTANT", constant.value), stamps, cells, kind)


def test_constant_fill_follows_iotdb_type_table() -> None:
    assert constant_for(TSDataType.TEXT, Literal(2.5, "2.50")) == "2.50"
    assert constant_for(TSDataType.TEXT, Literal(True, "TRUE")) == "true"
    assert constant_for(TSDataType.INT32, Literal(2**31, str(2**31))) is None
    assert constant_for(TSDataType.INT64, Literal(2**31, str(2**31))) == 2**31
    assert constant_for(TSDataType.INT64, Literal(1.5, "1.5")) is None
    assert constant_for(TSDataType.BOOLEAN, Literal(1, "1")) is None
    assert constant_for(TSDataType.DOUBLE, Literal("x", "'x'")) is None
    assert constant_for(TSDataType.FLOAT, Literal(1e39, "1e39")) is None


def test_linear_fill_leaves_text_and_edges() -> None:
    values = np.array(["a", None, "b"], dtype=object)
    nulls = np.array([False, True, False])
    assert fill_linear(np.arange(3), values, nulls, TSDataType.TEXT)[1] is nulls
    ints = np.array([0, 0, -5, 0], dtype=np.int64)
    filled, still = fill_linear(np.array([0, 1, 2, 3]), ints, np.array([True, False, True, True]), TSDataType.INT64)
    assert filled.tolist()[1:3] == [0, -5] and still.tolist() == [True, False, True, True]
    filled, _ = fill_linear(np.array([0, 1, 2]), np.array([-5, 0, 0]), np.array([False, True, False]), TSDataType.INT32)
    assert filled[1] == -2  # -2.5 truncated toward zero, as IoTDB's cast


# ---------------------------------------------------------------------------------------- interval sets

_DOMAIN = range(-8, 9)
_bounds = st.integers(-10, 10)
interval_sets = st.lists(st.tuples(_bounds, _bounds), max_size=4).map(IntervalSet)


def _members(intervals: IntervalSet) -> set[int]:
    return {t for t in _DOMAIN if intervals.contains(t)}


@MANY
@given(a=interval_sets, b=interval_sets)
def test_interval_set_algebra_matches_sets(a: IntervalSet, b: IntervalSet) -> None:
    assert _members(a & b) == _members(a) & _members(b)
    assert _members(a | b) == _members(a) | _members(b)
    assert _members(~a) == set(_DOMAIN) - _members(a)
    assert ~~a == a
    stamps = np.array(list(_DOMAIN), dtype=np.int64)
    assert set(stamps[a.mask(stamps)].tolist()) == _members(a)
    for low, high in a.intervals:
        assert low <= high


@given(op=st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), value=st.integers(-10, 10))
def test_interval_set_comparisons(op: str, value: int) -> None:
    expected = {t for t in _DOMAIN if model.evaluate(("time", op, value), t, {})}
    assert _members(IntervalSet.compare(op, value)) == expected


def test_interval_sets_clip_to_int64() -> None:
    assert IntervalSet.compare(">", INT64_MAX).empty
    assert IntervalSet.compare("<", INT64_MIN).empty
    assert IntervalSet.compare("!=", INT64_MAX).intervals == ((INT64_MIN, INT64_MAX - 1),)
    assert (~IntervalSet.everything()).empty
    assert IntervalSet.everything().hull == (INT64_MIN, INT64_MAX)
    assert IntervalSet().hull is None
