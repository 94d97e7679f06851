"""scan(): file statistics where they are exact, points elsewhere; always the same totals as query()."""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine, PointsSegment, Segment, StatsSegment


def open_engine(path: Path, **changes: Any) -> Engine:
    base = {"enable_compaction": False, "compaction_files_per_level": 2, "wal_sync_mode_fsync_delay_in_ms": 0.0}
    return Engine.open(path, default_settings().replace(**{**base, **changes}))


def totals_of_points(timestamps: np.ndarray, values: np.ndarray, data_type: TSDataType) -> dict[str, Any]:
    if len(timestamps) == 0:
        return {"count": 0}
    if data_type is TSDataType.TEXT:
        first, last = (int(timestamps[0]), values[0]), (int(timestamps[-1]), values[-1])
        return {"count": len(timestamps), "first": first, "last": last}
    numbers = values.astype(np.float64)
    totals: dict[str, Any] = {
        "count": len(timestamps),
        "sum": float(np.sum(numbers)),
        "first": (int(timestamps[0]), values[0].item()),
        "last": (int(timestamps[-1]), values[-1].item()),
    }
    if data_type is not TSDataType.BOOLEAN:
        totals["min"] = float(np.min(numbers))
        totals["max"] = float(np.max(numbers))
    return totals


def totals_of_segments(segments: list[Segment], data_type: TSDataType) -> dict[str, Any]:
    parts = []
    for segment in segments:
        if isinstance(segment, PointsSegment):
            assert len(segment.timestamps) > 0
            parts.append(totals_of_points(segment.timestamps, segment.values, data_type))
        else:
            part = {
                "count": segment.count,
                "sum": segment.sum,
                "first": (segment.start_time, segment.first_value),
                "last": (segment.end_time, segment.last_value),
            }
            if data_type is not TSDataType.BOOLEAN:
                part["min"], part["max"] = segment.min_value, segment.max_value
            parts.append(part)
    if not parts:
        return {"count": 0}
    if data_type is TSDataType.TEXT:
        return {"count": sum(part["count"] for part in parts), "first": parts[0]["first"], "last": parts[-1]["last"]}
    totals: dict[str, Any] = {
        "count": sum(part["count"] for part in parts),
        "sum": math.fsum(part["sum"] for part in parts) if all(math.isfinite(p["sum"]) for p in parts)
        else float(np.sum([part["sum"] for part in parts])),
        "first": parts[0]["first"],
        "last": parts[-1]["last"],
    }
    if data_type is not TSDataType.BOOLEAN:
        totals["min"] = float(np.min([part["min"] for part in parts]))
        totals["max"] = float(np.max([part["max"] for part in parts]))
    return totals


def same(value: Any, other: Any) -> bool:
    if isinstance(value, float) and isinstance(other, float):
        if math.isnan(value) or math.isnan(other):
            return math.isnan(value) and math.isnan(other)
        return math.isclose(value, other, rel_tol=1e-6, abs_tol=1e-6)
    return bool(value == other)


def check_scan(engine: Engine, path: str, start: int | None = None, end: int | None = None) -> list[Segment]:
    result = engine.query(path, start, end)
    segments = engine.scan(path, start, end)
    for earlier, later in itertools.pairwise(segments):
        assert earlier.end_time < later.start_time, "segments overlap or are out of order"
    if result.data_type is None:
        assert segments == []
        return segments
    expected = totals_of_points(result.timestamps, result.values, result.data_type)
    actual = totals_of_segments(segments, result.data_type)
    assert expected.keys() == actual.keys(), (path, start, end)
    for name, value in expected.items():
        if isinstance(value, tuple):
            assert value[0] == actual[name][0], (name, path)
            if isinstance(value[1], str):
                assert value[1] == actual[name][1], (name, path)
            else:
                assert same(float(value[1]), float(actual[name][1])), (name, path)
        else:
            assert same(value, actual[name]), (name, path, start, end, value, actual[name])
    return segments


def flushed(engine: Engine, device: str, start: int, stop: int, value: float = 1.0) -> None:
    stamps = np.arange(start, stop, dtype=np.int64)
    assert engine.insert_tablet(device, stamps, ["s"], [stamps * value]).ok
    engine.flush()


def kinds(segments: list[Segment]) -> list[str]:
    return ["S" if isinstance(segment, StatsSegment) else "P" for segment in segments]


def test_whole_files_become_statistics(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        for index in range(3):
            flushed(engine, "root.sg.d", index * 100, index * 100 + 100)
        segments = check_scan(engine, "root.sg.d.s")
        assert kinds(segments) == ["S", "S", "S"]
        first = segments[0]
        assert isinstance(first, StatsSegment)
        assert (first.start_time, first.end_time, first.count, first.sum) == (0, 99, 100, 4950.0)
        assert (first.min_value, first.max_value, first.first_value, first.last_value) == (0.0, 99.0, 0.0, 99.0)
        assert kinds(check_scan(engine, "root.sg.d.s", 50, 250)) == ["P", "S", "P"]  # partly covered files
        assert kinds(check_scan(engine, "root.sg.d.s", 0, 199)) == ["S", "S"]
        assert check_scan(engine, "root.sg.d.s", 1000, 2000) == []

        engine.insert_record("root.sg.d", 250, ["s"], [-1.0])  # the memtable overlaps the last file
        assert kinds(check_scan(engine, "root.sg.d.s")) == ["S", "S", "P"]
        engine.insert_record("root.sg.d", 300, ["s"], [-1.0])
        assert kinds(check_scan(engine, "root.sg.d.s")) == ["S", "S", "P"]
        engine.delete("root.sg.d.s", 120, 120)  # a tombstone touches the middle file
        assert kinds(check_scan(engine, "root.sg.d.s")) == ["S", "P"]
        engine.flush()
        engine.compact()  # 4 files -> L1 + L1 -> one L2 file, rewritten without the tombstone
        assert engine.file_levels()[0][1] == 2
        assert kinds(check_scan(engine, "root.sg.d.s")) == ["S"]


def test_overlapping_files_are_read_as_points(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        flushed(engine, "root.sg.d", 0, 100)
        flushed(engine, "root.sg.d", 50, 60, value=-2.0)  # a newer file within the first one's range
        flushed(engine, "root.sg.d", 200, 300)
        flushed(engine, "root.sg.d", 400, 500)
        assert kinds(check_scan(engine, "root.sg.d.s")) == ["P", "S", "S"]
        assert engine.query("root.sg.d.s", 55, 55).values.tolist() == [-110.0]


def test_untrustworthy_statistics_are_not_used(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        stamps = np.arange(10, dtype=np.int64)
        values = np.arange(10, dtype=np.float64)
        values[3] = np.nan
        engine.insert_tablet("root.sg.d", stamps, ["nan", "text", "flag", "i"], [
            values, [f"v{i}" for i in range(10)], stamps % 2 == 0, stamps * 3
        ])
        engine.flush()
        assert kinds(check_scan(engine, "root.sg.d.nan")) == ["P"]
        assert kinds(check_scan(engine, "root.sg.d.text")) == ["P"]
        flag = check_scan(engine, "root.sg.d.flag")
        assert kinds(flag) == ["S"] and isinstance(flag[0], StatsSegment) and flag[0].sum == 5.0
        integer = check_scan(engine, "root.sg.d.i")
        assert isinstance(integer[0], StatsSegment) and (integer[0].min_value, integer[0].max_value) == (0, 27)
        assert engine.scan("root.sg.d.unknown") == []


def test_ttl_keeps_expired_parts_out_of_statistics(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    with open_engine(tmp_path) as engine:
        hour = 3_600_000
        for first in (10, 5):
            stamps = np.array([now - (first - i) * hour for i in range(5)], dtype=np.int64)
            assert engine.insert_tablet("root.sg.d", stamps, ["s"], [np.ones(5)]).ok
            engine.flush()
        engine.set_ttl("root.sg", 7 * hour + 60_000)  # cuts into the first file
        segments = check_scan(engine, "root.sg.d.s")
        assert kinds(segments) == ["P", "S"] and sum(s.count for s in segments) == 7


TYPES = {
    "d": (TSDataType.DOUBLE, st.one_of(st.floats(-1e9, 1e9), st.just(math.nan))),
    "f": (TSDataType.FLOAT, st.floats(allow_nan=False, width=32, min_value=-1e6, max_value=1e6)),
    "i": (TSDataType.INT64, st.integers(-(10**12), 10**12)),
    "n": (TSDataType.INT32, st.integers(-(2**31), 2**31 - 1)),
    "b": (TSDataType.BOOLEAN, st.booleans()),
}
DEVICES = ("root.sg.d1", "root.sg.d2")
PATTERNS = ["root.sg.d1.d", "root.sg.*.i", "root.sg.d2.*", "root.sg.**", "root.**.b"]


@st.composite
def operation(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["write", "write", "write", "flush", "compact", "delete"]))
    if kind == "write":
        device = draw(st.sampled_from(DEVICES))
        low = draw(st.integers(0, 300))
        stamps = draw(st.lists(st.integers(low, low + 60), min_size=1, max_size=40))
        columns = {name: [draw(strategy) for _ in stamps] for name, (_, strategy) in TYPES.items()}
        return ("write", device, stamps, columns)
    if kind == "delete":
        start = draw(st.one_of(st.none(), st.integers(0, 360)))
        end = draw(st.one_of(st.none(), st.integers(0, 360)))
        return ("delete", draw(st.sampled_from(PATTERNS)), start, end)
    return (kind,)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations=st.lists(operation(), min_size=1, max_size=14),
    ranges=st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 360)), st.one_of(st.none(), st.integers(0, 360))),
                    max_size=3),
)
def test_scan_totals_equal_query_totals(operations: list[tuple[Any, ...]], ranges: list[tuple[Any, Any]]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="scan-model-"))
    try:
        with open_engine(directory) as engine:
            for device in DEVICES:
                for name, (data_type, _) in TYPES.items():
                    engine.create_timeseries(f"{device}.{name}", data_type)
            for op in operations:
                if op[0] == "write":
                    _, device, stamps, columns = op
                    result = engine.insert_tablet(device, stamps, list(columns), list(columns.values()))
                    assert result.ok, result.failures
                elif op[0] == "flush":
                    engine.flush()
                elif op[0] == "compact":
                    engine.compact()
                else:
                    engine.delete(op[1], op[2], op[3])
            for device in DEVICES:
                for name in TYPES:
                    for start, end in [(None, None), *ranges]:
                        check_scan(engine, f"{device}.{name}", start, end)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("points", [100_000])
def test_statistics_answer_without_reading_points(tmp_path: Path, points: int) -> None:
    with open_engine(tmp_path) as engine:
        for start in range(0, points, points // 4):
            flushed(engine, "root.sg.d", start, start + points // 4, value=0.5)
        segments = check_scan(engine, "root.sg.d.s")
        assert kinds(segments) == ["S"] * 4
        assert sum(s.count for s in segments) == points
