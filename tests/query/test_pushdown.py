"""Statistics pushdown: aggregates over Engine.scan segments give what aggregates over the points give.

Unit level: random points, cut into random segmentations of StatsSegments and PointsSegments, aggregated with
``build_elements`` + ``aggregate_elements`` against ``aggregate`` over the same points. Engine level: data
flushed into several files, each query run against the engine and against the same engine without ``scan``
(the point path), and ``ExecutionStats`` showing which statistics were used.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.query import ExecutionStats, ResultSet, execute
from iotdb_core.query.aggregates import aggregate, aggregate_elements
from iotdb_core.query.filters import IntervalSet
from iotdb_core.query.groupby import make_windows, window_bounds
from iotdb_core.query.pushdown import MAX_SCAN_RANGES, build_elements, element_windows
from iotdb_core.storage import Engine, PointsSegment, Segment, StatsSegment
from iotdb_core.storage.columns import NUMPY_DTYPE

ALL_FUNCTIONS = ("COUNT", "FIRST_VALUE", "LAST_VALUE", "MIN_TIME", "MAX_TIME")
NUMERIC_FUNCTIONS = ("SUM", "AVG", "MIN_VALUE", "MAX_VALUE", "EXTREME")
NUMERIC = (TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE)
APPROXIMATE = ("SUM", "AVG")  # a file's sum is added in the file's order


def functions_of(data_type: TSDataType) -> tuple[str, ...]:
    return ALL_FUNCTIONS + (NUMERIC_FUNCTIONS if data_type in NUMERIC else ())


def same_column(expected: np.ndarray, actual: np.ndarray, approximate: bool, tolerance: float = 1e-9) -> bool:
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return False
    if expected.dtype == np.dtype(object) or expected.dtype.kind in "biu":
        return bool(np.array_equal(expected, actual))
    if approximate:
        return bool(np.allclose(expected, actual, rtol=1e-9, atol=tolerance, equal_nan=True))
    return bool(np.array_equal(expected, actual, equal_nan=True))


def same_nulls(expected: np.ndarray | None, actual: np.ndarray | None) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    return bool(np.array_equal(expected, actual))


# ------------------------------------------------------------------------------------- unit level


def stats_of(timestamps: np.ndarray, values: np.ndarray, data_type: TSDataType) -> StatsSegment:
    """The statistics a TsFile holds for these points (as Engine.scan reports them)."""
    boolean = data_type is TSDataType.BOOLEAN
    return StatsSegment(
        int(timestamps[0]),
        int(timestamps[-1]),
        len(timestamps),
        float(np.sum(values.astype(np.float64))),
        None if boolean else values.min().item(),
        None if boolean else values.max().item(),
        values[0].item(),
        values[-1].item(),
    )


def values_for(data_type: TSDataType) -> st.SearchStrategy:
    if data_type is TSDataType.BOOLEAN:
        return st.booleans()
    if data_type is TSDataType.INT32:
        return st.integers(-20, 20) | st.integers(-(2**31), 2**31 - 1)
    if data_type is TSDataType.INT64:
        return st.integers(-20, 20) | st.integers(-(2**62), 2**62)
    if data_type is TSDataType.FLOAT:
        return st.integers(-8, 8).map(float) | st.floats(-1e6, 1e6, width=32)
    if data_type is TSDataType.DOUBLE:
        return st.integers(-8, 8).map(lambda x: x / 4) | st.floats(-1e9, 1e9)
    return st.text(alphabet="ab", max_size=2)


@st.composite
def series_data(draw: st.DrawFn) -> tuple[TSDataType, np.ndarray, np.ndarray]:
    data_type = draw(st.sampled_from(list(TSDataType)))
    size = draw(st.integers(0, 60), label="size")
    gaps = draw(st.lists(st.integers(1, 6), min_size=size, max_size=size), label="gaps")
    stamps = list(np.cumsum(gaps) + draw(st.integers(-12, 10), label="first") - 1) if gaps else []
    values = draw(st.lists(values_for(data_type), min_size=size, max_size=size), label="values")
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE) and values:
        for index in draw(st.lists(st.integers(0, size - 1), max_size=2), label="NaN at"):
            values[index] = math.nan
    dtype = NUMPY_DTYPE[data_type]
    array = np.array(values, dtype=dtype) if dtype != np.dtype(object) else np.array([*values, None], dtype=object)[:-1]
    return data_type, np.array(stamps, dtype=np.int64), array


def segmentation(
    draw: st.DrawFn, timestamps: np.ndarray, values: np.ndarray, data_type: TSDataType
) -> list[Segment]:
    """The points cut into consecutive runs, each a StatsSegment (where the engine could give one) or points."""
    size = len(timestamps)
    if size == 0:
        return []
    pieces = draw(st.integers(0, min(size - 1, 6)))
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), min_size=pieces, max_size=pieces)) if pieces else set())
    segments: list[Segment] = []
    for start, stop in zip([0, *cuts], [*cuts, size], strict=True):
        stamps, part = timestamps[start:stop], values[start:stop]
        trusted = data_type is not TSDataType.TEXT and not (part.dtype.kind == "f" and np.isnan(part).any())
        if trusted and draw(st.integers(0, 3)) > 0:
            segments.append(stats_of(stamps, part, data_type))
        else:
            segments.append(PointsSegment(stamps, part))
    return segments


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_segments_aggregate_as_points(data: st.DataObject) -> None:
    data_type, timestamps, values = data.draw(series_data(), label="series")
    windows = None
    bound = IntervalSet.everything()
    if data.draw(st.integers(0, 3), label="group by") > 0:
        start = data.draw(st.integers(-15, 30), label="start")
        end = start + data.draw(st.integers(1, 250), label="span")
        interval = data.draw(st.integers(1, 80), label="interval")
        step = data.draw(st.none() | st.integers(1, 80), label="step")
        windows = make_windows(start, end, interval, step)
        bound = IntervalSet.between(start, end - 1)
    if data.draw(st.integers(0, 2), label="time filter") == 0:
        pieces = data.draw(st.lists(st.tuples(st.integers(-12, 120), st.integers(0, 30)), max_size=4), label="filter")
        bound = bound & IntervalSet([(low, low + width) for low, width in pieces])

    reads: list[tuple[int, int]] = []

    def read(low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        reads.append((low, high))
        keep = (timestamps >= low) & (timestamps <= high)
        return timestamps[keep], values[keep]

    scans = []
    for low, high in bound.intervals:
        keep = (timestamps >= low) & (timestamps <= high)
        scans.append((low, high, segmentation(data.draw, timestamps[keep], values[keep], data_type)))
    stats = ExecutionStats()
    elements = build_elements(scans, windows, read, NUMPY_DTYPE[data_type], stats)
    lo, hi = element_windows(elements, windows)

    inside = bound.mask(timestamps)
    points, point_values = timestamps[inside], values[inside]
    if windows is None:
        expected_lo, expected_hi = np.zeros(1, dtype=np.intp), np.full(1, len(points))
    else:
        expected_lo, expected_hi = window_bounds(points, *windows)
    stats_total = sum(s.count for _, _, segments in scans for s in segments if isinstance(s, StatsSegment))
    assert stats.points + stats.stats_points == len(points)
    assert stats.stats_points + sum(b - a + 1 for a, b in reads) >= stats_total  # cut ones were read back
    assert stats.stats_segments + stats.expanded_segments == sum(
        isinstance(s, StatsSegment) for _, _, segments in scans for s in segments
    )
    if windows is None:
        assert stats.expanded_segments == 0  # one window over everything scanned: every file is inside it
    tolerance = 1e-9
    if data_type in NUMERIC:
        tolerance *= float(np.nansum(np.abs(point_values.astype(np.float64)))) + 1.0
    for function in functions_of(data_type):
        expected, expected_nulls = aggregate(function, points, point_values, expected_lo, expected_hi)
        actual, actual_nulls = aggregate_elements(function, elements, lo, hi)
        assert same_nulls(expected_nulls, actual_nulls), function
        assert same_column(expected, actual, function in APPROXIMATE, tolerance), (function, expected, actual)


def test_stats_inside_windows_are_used_and_cut_ones_read() -> None:
    stamps = np.arange(0, 40, dtype=np.int64)
    values = (stamps * 1.5 - 7.0).astype(np.float64)
    segments: list[Segment] = [
        stats_of(stamps[0:10], values[0:10], TSDataType.DOUBLE),  # [0, 9]: inside window [0, 10)
        PointsSegment(stamps[10:15], values[10:15]),
        stats_of(stamps[15:25], values[15:25], TSDataType.DOUBLE),  # [15, 24]: cut by 20
        stats_of(stamps[25:30], values[25:30], TSDataType.DOUBLE),  # [25, 29]: cut by nothing, but adjacent
        stats_of(stamps[30:40], values[30:40], TSDataType.DOUBLE),  # [30, 39]: inside [30, 40)
    ]
    reads: list[tuple[int, int]] = []

    def read(low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        reads.append((low, high))
        keep = (stamps >= low) & (stamps <= high)
        return stamps[keep], values[keep]

    windows = make_windows(0, 40, 10, None)
    stats = ExecutionStats()
    elements = build_elements([(0, 39, segments)], windows, read, np.dtype(np.float64), stats)
    assert reads == [(15, 24)]
    assert (stats.stats_segments, stats.stats_points, stats.expanded_segments, stats.points) == (3, 25, 1, 15)
    lo, hi = element_windows(elements, windows)
    for function in functions_of(TSDataType.DOUBLE):
        expected, _ = aggregate(function, stamps, values, *window_bounds(stamps, *windows))
        actual, nulls = aggregate_elements(function, elements, lo, hi)
        assert nulls is None and same_column(expected, actual, function in APPROXIMATE), function


def test_adjacent_cut_stats_are_read_in_one_call_and_outside_parts_dropped() -> None:
    stamps = np.arange(0, 30, dtype=np.int64)
    values = stamps.astype(np.int32) - 10
    segments: list[Segment] = [
        stats_of(stamps[0:10], values[0:10], TSDataType.INT32),
        stats_of(stamps[10:20], values[10:20], TSDataType.INT32),
        stats_of(stamps[20:30], values[20:30], TSDataType.INT32),  # reaches past the scanned range's end 24
    ]
    reads: list[tuple[int, int]] = []

    def read(low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        reads.append((low, high))
        keep = (stamps >= low) & (stamps <= high)
        return stamps[keep], values[keep]

    windows = make_windows(0, 25, 5, None)
    elements = build_elements([(0, 24, segments)], windows, read, np.dtype(np.int32))
    assert reads == [(0, 24)] and not elements.has_stats
    lo, hi = element_windows(elements, windows)
    expected, _ = aggregate("MAX_VALUE", stamps[:25], values[:25], *window_bounds(stamps[:25], *windows))
    actual, _ = aggregate_elements("MAX_VALUE", elements, lo, hi)
    assert actual.dtype == np.int32 and actual.tolist() == expected.tolist() == [-6, -1, 4, 9, 14]


def test_sliding_windows_use_a_file_in_every_window_holding_it() -> None:
    stamps = np.arange(10, 15, dtype=np.int64)
    values = np.array([True, False, False, True, True])
    segments: list[Segment] = [stats_of(stamps, values, TSDataType.BOOLEAN)]
    windows = make_windows(0, 30, 20, 5)  # [0,20) [5,25) [10,30) [15,30) [20,30) [25,30)

    def read(low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("nothing should be read back")

    stats = ExecutionStats()
    elements = build_elements([(0, 29, segments)], windows, read, np.dtype(np.bool_), stats)
    lo, hi = element_windows(elements, windows)
    assert stats.stats_segments == 1
    counts, _ = aggregate_elements("COUNT", elements, lo, hi)
    assert counts.tolist() == [5, 5, 5, 0, 0, 0]
    last, nulls = aggregate_elements("LAST_VALUE", elements, lo, hi)
    assert last.dtype == np.bool_ and last[:3].tolist() == [True] * 3 and nulls.tolist() == [False] * 3 + [True] * 3
    first_time, _ = aggregate_elements("MIN_TIME", elements, lo, hi)
    last_time, _ = aggregate_elements("MAX_TIME", elements, lo, hi)
    assert first_time[:3].tolist() == [10] * 3 and last_time[:3].tolist() == [14] * 3


# ----------------------------------------------------------------------------------- engine level


class PointsOnly:
    """The engine without ``scan`` and ``scan_columns``: the executor's point path."""

    scan = scan_columns = None

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def open_engine(path: Path | str) -> Engine:
    return Engine.open(path, default_settings().replace(enable_compaction=False, wal_mode="DISABLE"))


def check_same(engine: Engine, sql: str, tolerance: float = 1e-9) -> ExecutionStats:
    """Run ``sql`` with pushdown and on the point path; assert the same result; return the pushdown's stats."""
    stats = ExecutionStats()
    actual = execute(engine, sql, stats=stats)
    expected = execute(PointsOnly(engine), sql)
    assert isinstance(actual, ResultSet) and isinstance(expected, ResultSet)
    assert actual.header == expected.header and actual.data_types == expected.data_types, sql
    if expected.timestamps is None:
        assert actual.timestamps is None
    else:
        assert np.array_equal(actual.timestamps, expected.timestamps), sql
    for name, want, got, want_nulls, got_nulls in zip(
        expected.columns, expected.values, actual.values, expected.nulls, actual.nulls, strict=True
    ):
        approximate = name.startswith(("sum(", "avg("))
        assert same_nulls(want_nulls, got_nulls), (sql, name)
        assert same_column(want, got, approximate, tolerance), (sql, name, want, got)
    return stats


def write_files(engine: Engine, device: str, bounds: list[tuple[int, int]]) -> None:
    """One flushed file per ``[start, stop)`` with points every ms: s (DOUBLE), i (INT64), f (FLOAT), b (BOOLEAN)."""
    for start, stop in bounds:
        stamps = np.arange(start, stop, dtype=np.int64)
        outcome = engine.insert_tablet(
            device,
            stamps,
            ["s", "i", "f", "b"],
            [stamps * 0.25 - 30.0, stamps * 7 - 500, (stamps % 17).astype(np.float32) - 8, stamps % 3 == 0],
            [TSDataType.DOUBLE, TSDataType.INT64, TSDataType.FLOAT, TSDataType.BOOLEAN],
        )
        assert outcome.ok
        engine.flush()


EVERY_FUNCTION = (
    "count(s), sum(s), avg(s), min_value(s), max_value(s), first_value(s), last_value(s), min_time(s), "
    "max_time(s), extreme(s), count(i), sum(i), avg(i), extreme(i), min_value(i), last_value(i), "
    "extreme(f), min_value(f), max_value(f), first_value(f), sum(f), count(b), first_value(b), last_value(b), "
    "max_time(b)"
)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Engine]:
    with open_engine(tmp_path) as engine:
        write_files(engine, "root.p.d1", [(0, 100), (100, 200), (200, 300), (310, 390)])
        engine.insert_tablet("root.p.d1", np.arange(400, 420, dtype=np.int64), ["s"], [np.full(20, 2.5)])
        yield engine


def test_files_inside_windows_use_their_statistics(files: Engine) -> None:
    stats = check_same(files, f"SELECT {EVERY_FUNCTION} FROM root.p.d1 GROUP BY ([0, 500), 100ms)")
    assert stats.scans == 4 and stats.expanded_segments == 0
    assert stats.stats_segments == 16 and stats.stats_points == 4 * 380  # 4 files x 4 series
    assert stats.points == 20  # the memtable's points of s
    stats = check_same(files, f"SELECT {EVERY_FUNCTION} FROM root.p.d1")
    assert stats.stats_segments == 16 and stats.points == 20


def test_files_spanning_windows_are_read_as_points(files: Engine) -> None:
    stats = check_same(files, f"SELECT {EVERY_FUNCTION} FROM root.p.d1 GROUP BY ([0, 500), 30ms)")
    assert stats.stats_segments == 0 and stats.expanded_segments == 16 and stats.points == 4 * 380 + 20
    # [0, 99] reaches outside the range [50, 399] (scan gives its points); 150, 250 and 350 cut the others
    stats = check_same(files, "SELECT count(s), avg(s) FROM root.p.d1 GROUP BY ([50, 400), 100ms)")
    assert stats.stats_segments == 0 and stats.expanded_segments == 3 and stats.points == 50 + 100 + 100 + 80
    stats = check_same(files, "SELECT count(s), avg(s) FROM root.p.d1 GROUP BY ([0, 600), 200ms)")
    assert stats.stats_segments == 4 and stats.expanded_segments == 0 and stats.points == 20


def test_sliding_windows_and_gaps(files: Engine) -> None:
    stats = check_same(files, "SELECT count(s), sum(i), max_value(f) FROM root.p.d1 GROUP BY ([0, 500), 200ms, 100ms)")
    assert stats.stats_segments == 12 and stats.expanded_segments == 0
    stats = check_same(files, "SELECT count(s), min_time(i) FROM root.p.d1 GROUP BY ([0, 500), 50ms, 100ms)")
    assert stats.stats_segments == 0 and stats.expanded_segments == 8  # windows cover half of each file


def test_time_filters_become_scan_ranges(files: Engine) -> None:
    sql = "SELECT count(s), avg(s), first_value(i), last_value(b) FROM root.p.d1 WHERE time < 100 OR time >= 300"
    stats = check_same(files, sql)
    assert stats.scans == 6 and stats.stats_segments == 6  # 2 ranges x 3 series; files [0, 99] and [310, 389]
    stats = check_same(files, "SELECT count(s) FROM root.p.d1 WHERE time > 150 AND time <= 250")
    assert stats.scans == 1 and stats.stats_segments == 0 and stats.points == 100
    sql = "SELECT count(s), avg(s) FROM root.p.d1 WHERE time IN (5, 150, 405) GROUP BY ([0, 500), 10ms)"
    stats = check_same(files, sql)
    assert stats.scans == 3 and stats.points == 3
    stats = check_same(files, "SELECT count(s) FROM root.p.d1 WHERE time != 150 GROUP BY ([0, 500), 100ms)")
    assert stats.scans == 2 and stats.stats_segments == 3 and stats.expanded_segments == 0


def test_value_filters_and_many_ranges_read_points(files: Engine) -> None:
    stats = check_same(files, "SELECT count(s), avg(i) FROM root.p.d1 WHERE s > 0 GROUP BY ([0, 500), 100ms)")
    assert stats.scans == 0 and stats.point_reads == 2
    times = ", ".join(str(t) for t in range(0, 2 * MAX_SCAN_RANGES + 2, 2))
    stats = check_same(files, f"SELECT count(s), sum(s) FROM root.p.d1 WHERE time IN ({times})")
    assert stats.scans == 0 and stats.point_reads == 1


def test_align_by_device_uses_statistics(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write_files(engine, "root.p.d1", [(0, 50), (50, 100)])
        write_files(engine, "root.p.d2", [(0, 100)])
        sql = "SELECT count(s), extreme(i) FROM root.p.* GROUP BY ([0, 100), 50ms) ALIGN BY DEVICE"
        stats = check_same(engine, sql)
        assert stats.stats_segments == 4 and stats.expanded_segments == 2
        stats = check_same(engine, "SELECT count(s), last_value(b) FROM root.p.* ALIGN BY DEVICE")
        assert stats.stats_segments == 6 and stats.points == 0


def test_nan_and_text_series_are_read_as_points(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        for start in (0, 10):
            stamps = np.arange(start, start + 10, dtype=np.int64)
            values = stamps.astype(np.float64)
            if start == 0:
                values[4] = np.nan
            engine.insert_tablet("root.n.d", stamps, ["x", "t"], [values, [f"v{t}" for t in stamps]])
            engine.flush()
        for sql, points in (
            ("SELECT count(x), sum(x), min_value(x), max_value(x), extreme(x), avg(x) FROM root.n.d", 10),
            (
                "SELECT count(x), sum(x), min_value(x), extreme(x), first_value(t), last_value(t), count(t) "
                "FROM root.n.d GROUP BY ([0, 20), 10ms)",
                30,
            ),
        ):
            stats = check_same(engine, sql)
            assert stats.stats_segments == 1 and stats.points == points  # x's second file; x's first, t's both
        result = execute(engine, "SELECT sum(x), min_value(x) FROM root.n.d GROUP BY ([0, 20), 10ms)")
        assert math.isnan(result.values[0][0]) and result.values[0][1] == sum(range(10, 20))


def test_empty_windows_and_missing_series(files: Engine) -> None:
    stats = check_same(files, "SELECT count(s), avg(s), first_value(b) FROM root.p.d1 GROUP BY ([1000, 1300), 100ms)")
    assert stats.points == 0 and stats.stats_segments == 0
    result = execute(files, "SELECT count(s), avg(s), first_value(b) FROM root.p.d1 GROUP BY ([1000, 1300), 100ms)")
    assert result.rows() == [(1000, 0, None, None), (1100, 0, None, None), (1200, 0, None, None)]
    check_same(files, "SELECT count(s), avg(s) FROM root.p.d1 WHERE time > 5000")
    files.create_timeseries("root.p.d1.empty", TSDataType.INT32)
    check_same(files, "SELECT count(empty), extreme(empty), count(s) FROM root.p.d1 GROUP BY ([0, 500), 250ms)")


# ------------------------------------------------------------------------ engine level, randomised


@contextmanager
def random_files(data: st.DataObject, data_type: TSDataType) -> Iterator[tuple[Engine, int]]:
    """A series written in random batches, most flushed: files mostly disjoint, some overlapping; and its end."""
    with tempfile.TemporaryDirectory() as directory, open_engine(directory) as engine:
        engine.create_timeseries("root.r.d.v", data_type)
        cursor = 0
        for _ in range(data.draw(st.integers(2, 6), label="batches")):
            if data.draw(st.integers(0, 5), label="overlap") == 0:
                low = data.draw(st.integers(0, cursor), label="rewrite from")
            else:
                low = cursor + data.draw(st.integers(0, 15), label="gap")
            span = data.draw(st.integers(5, 60), label="span")
            step = data.draw(st.integers(1, 4), label="every")
            stamps = np.arange(low, low + span, step, dtype=np.int64)
            values = data.draw(st.lists(values_for(data_type), min_size=len(stamps), max_size=len(stamps)))
            if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE) and data.draw(st.integers(0, 4), label="NaN") == 0:
                values[data.draw(st.integers(0, len(values) - 1))] = math.nan
            column = values if data_type is TSDataType.TEXT else np.array(values, dtype=NUMPY_DTYPE[data_type])
            assert engine.insert_tablet("root.r.d", stamps, ["v"], [column], [data_type]).ok
            cursor = max(cursor, low + span)
            if data.draw(st.integers(0, 4), label="flush") > 0:
                engine.flush()
        yield engine, cursor


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_pushdown_matches_point_path_on_flushed_files(data: st.DataObject) -> None:
    data_type = data.draw(st.sampled_from(list(TSDataType)), label="type")
    with random_files(data, data_type) as (engine, extent):
        times = st.integers(-5, extent + 5)
        for _ in range(4):
            functions = data.draw(st.lists(st.sampled_from(functions_of(data_type)), min_size=1, max_size=4))
            sql = "SELECT " + ", ".join(f"{f}(v)" for f in functions) + " FROM root.r.d"
            time_filter = data.draw(
                st.sampled_from(
                    [None, None, "time < {a}", "time >= {a} AND time <= {b}", "time < {a} OR time > {b}", "time != {a}"]
                ),
                label="where",
            )
            if time_filter is not None:
                a, b = sorted(data.draw(st.tuples(times, times), label="times"))
                sql += " WHERE " + time_filter.format(a=a, b=b)
            if data.draw(st.integers(0, 3), label="group by") > 0:
                start = data.draw(st.integers(-10, 10), label="start")
                end = max(start + 1, extent - data.draw(st.integers(-20, 20), label="end"))
                sizes = st.sampled_from([end - start, (end - start) // 2 + 1, (end - start) // 3 + 1, 70, 35, 9, 2])
                interval = data.draw(sizes, label="interval")
                step = data.draw(st.none() | st.none() | sizes, label="step")
                sql += f" GROUP BY ([{start}, {end}), {interval}ms" + (f", {step}ms)" if step else ")")
            total = execute(PointsOnly(engine), "SELECT count(v) FROM root.r.d").values[0][0]
            scale = 2.0**62 if data_type is TSDataType.INT64 else 1e9
            stats = check_same(engine, sql, tolerance=1e-9 * scale * (int(total) + 1))
            assert stats.point_reads == 0 and stats.scans >= (0 if time_filter else 1)


def test_int64_min_and_max_bounds_reach_the_engine_as_open_ends(files: Engine) -> None:
    calls: list[tuple[Any, ...]] = []

    class Recording(PointsOnly):
        def scan(self, *args: Any) -> list[Segment]:  # type: ignore[override]
            calls.append(args)
            return self._engine.scan(*args)

    execute(Recording(files), "SELECT count(s) FROM root.p.d1 WHERE time < 100 OR time > 300")
    assert calls == [("root.p.d1.s", None, 99), ("root.p.d1.s", 301, None)]
