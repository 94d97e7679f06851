"""The engine's public API: writes, schema, type rules, partial inserts, reads and hooks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iotdb_core import hookimpl
from iotdb_core.config import Settings, default_settings
from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
from iotdb_core.formatter import Row
from iotdb_core.hookspecs import FlushInfo
from iotdb_core.plugin_manager import create_plugin_manager
from iotdb_core.storage import Engine, EngineClosedError, SchemaError, WriteRejectedError
from iotdb_core.storage.results import WriteResult


def open_engine(path: Path, **changes: Any) -> Engine:
    return Engine.open(path, default_settings().replace(**changes))


def test_insert_record_query_and_last(iotdb_engine: Engine) -> None:
    engine = iotdb_engine
    result = engine.insert_record("root.sg.d1", 10, ["temp", "on", "name", "count"], [21.5, True, "a", 7])
    assert result == WriteResult(4, [])
    engine.insert_record("root.sg.d1", 5, ["temp"], [19.0])
    engine.insert_record("root.sg.d1", 10, ["temp"], [22.0])
    series = engine.query("root.sg.d1.temp")
    assert series.timestamps.tolist() == [5, 10]
    assert series.values.tolist() == [19.0, 22.0]
    assert series.data_type is TSDataType.DOUBLE
    assert engine.last("root.sg.d1.temp") == (10, 22.0)
    assert engine.last("root.sg.d1.name") == (10, "a")
    assert engine.last("root.sg.nothing.s") is None
    types = {s.measurement: s.data_type for s in engine.list_series()}
    assert types == {
        "temp": TSDataType.DOUBLE,
        "on": TSDataType.BOOLEAN,
        "name": TSDataType.TEXT,
        "count": TSDataType.DOUBLE,
    }
    assert engine.list_databases() == ["root.sg"]
    assert engine.list_devices() == ["root.sg.d1"]


def test_query_bounds_are_inclusive(iotdb_engine: Engine) -> None:
    iotdb_engine.insert_tablet("root.sg.d", np.arange(0, 100, 10), ["s"], [np.arange(10, dtype=np.int64)])
    assert iotdb_engine.query("root.sg.d.s", 20, 50).timestamps.tolist() == [20, 30, 40, 50]
    assert iotdb_engine.query("root.sg.d.s", None, 10).timestamps.tolist() == [0, 10]
    assert iotdb_engine.query("root.sg.d.s", 95).timestamps.tolist() == []
    assert len(iotdb_engine.query("root.sg.d.s", 50, 20)) == 0
    missing = iotdb_engine.query("root.sg.d.nope")
    assert missing.data_type is None and len(missing) == 0


def test_inference_follows_settings(tmp_path: Path) -> None:
    with open_engine(
        tmp_path,
        integer_string_infer_type="INT64",
        floating_string_infer_type="FLOAT",
        nan_string_infer_type="TEXT",
        boolean_string_infer_type="TEXT",
    ) as engine:
        engine.insert_record("root.sg.d", 1, ["i", "f", "n", "b"], [3, 1.5, math.nan, True])
        types = {s.measurement: s.data_type for s in engine.list_series()}
        assert types == {"i": TSDataType.INT64, "f": TSDataType.FLOAT, "n": TSDataType.TEXT, "b": TSDataType.TEXT}
        assert engine.last("root.sg.d.b") == (1, "true")
        assert engine.last("root.sg.d.n") == (1, "NaN")
        assert engine.query("root.sg.d.f").values.dtype == np.float32


def test_explicit_type_wins_and_widening(iotdb_engine: Engine) -> None:
    engine = iotdb_engine
    result = engine.insert_record("root.sg.d", 1, ["a", "b"], [5, 6], [TSDataType.INT32, None])
    assert result.ok
    assert {s.measurement: s.data_type for s in engine.list_series()} == {"a": TSDataType.INT32, "b": TSDataType.DOUBLE}
    engine.create_timeseries("root.sg.d.wide", TSDataType.INT64)
    assert engine.insert_record("root.sg.d", 2, ["wide"], [5], [TSDataType.INT32]).ok
    result = engine.insert_record("root.sg.d", 3, ["a", "wide"], [2**40, 1.5])
    assert result.points_written == 0
    reasons = {f.measurement: f.reason for f in result.failures}
    assert "out of the INT32 range" in reasons["a"]
    assert "floating-point" in reasons["wide"]
    result = engine.insert_record("root.sg.d", 4, ["a"], [1], [TSDataType.TEXT])
    assert "declared type TEXT cannot be written to a INT32 series" in result.failures[0].reason


def test_a_float_value_holds_float32_precision_in_every_series_and_in_the_last_point(iotdb_engine: Engine) -> None:
    engine = iotdb_engine
    engine.create_timeseries("root.sg.d.wide", TSDataType.DOUBLE)
    engine.create_timeseries("root.sg.d.narrow", TSDataType.FLOAT)
    rounded = float(np.float32(0.1))
    assert engine.insert_record("root.sg.d", 1, ["wide", "narrow"], [0.1, 0.1], [TSDataType.FLOAT, None]).ok
    assert engine.insert_tablet("root.sg.d", [2], ["wide"], [[16_777_217]], [TSDataType.FLOAT]).ok
    assert engine.query("root.sg.d.wide").values.tolist() == [rounded, 16_777_216.0]
    assert engine.query("root.sg.d.narrow").values.tolist() == [rounded]
    assert engine.last("root.sg.d.narrow") == (1, rounded)


def test_partial_insert_reports_each_failure(iotdb_engine: Engine) -> None:
    result = iotdb_engine.insert_record("root.sg.d", 1, ["x", "y"], [1.0, 2.0])
    result = iotdb_engine.insert_record("root.sg.d", 2, ["x", "y", "bad.name", "z"], [3.0, "oops", 1.0, None])
    assert result.points_written == 1
    failures = {(f.device, f.measurement): f for f in result.failures}
    assert set(failures) == {("root.sg.d", "y"), ("root.sg.d", "bad.name")}
    wrong = failures[("root.sg.d", "y")]
    assert (wrong.timestamp, wrong.value) == (2, "oops")
    assert "expected DOUBLE, got text 'oops'" in wrong.reason
    assert "must be a single node" in failures[("root.sg.d", "bad.name")].reason
    assert iotdb_engine.query("root.sg.d.x").values.tolist() == [1.0, 3.0]
    assert iotdb_engine.query("root.sg.d.y").values.tolist() == [2.0]


def test_partial_insert_disabled_rejects_the_row(tmp_path: Path) -> None:
    with open_engine(tmp_path, enable_partial_insert=False) as engine:
        engine.insert_record("root.sg.d", 1, ["x"], [1.0])
        result = engine.insert_record("root.sg.d", 2, ["x", "y"], [True, 2.0])
        assert result.points_written == 0
        assert [(f.measurement, "partial" in f.reason) for f in result.failures] == [("x", False), ("y", True)]
        assert engine.query("root.sg.d.x").timestamps.tolist() == [1]
        assert engine.list_series("root.sg.d.y") == []
        tablet = engine.insert_tablet("root.sg.d", [5, 6], ["x", "z"], [[1.0, "no"], [1, 2]])
        assert tablet.points_written == 2
        assert engine.query("root.sg.d.z").timestamps.tolist() == [5]


def test_bad_paths_and_timestamps(iotdb_engine: Engine) -> None:
    result = iotdb_engine.insert_record("root.sg.d-1", 1, ["s"], [1.0])
    assert result.points_written == 0 and "root.sg.d-1" in result.failures[0].reason
    result = iotdb_engine.insert_record("root.sg", 1, ["s"], [1.0])
    assert "no level below its database" in result.failures[0].reason
    result = iotdb_engine.insert_record("root.sg.d", 2**63, ["s"], [1.0])
    assert result.failures[0].reason == f"timestamp {2**63} is out of the int64 range"
    result = iotdb_engine.insert_record("root.sg.d", 1.5, ["s"], [1.0])  # type: ignore[arg-type]
    assert "not an integer" in result.failures[0].reason
    result = iotdb_engine.insert_records(["root.sg.d", "root.sg.e"], [1, -(2**63) - 1], [["s"], ["s"]], [[1.0], [2.0]])
    assert result.points_written == 1 and result.failures[0].device == "root.sg.e"
    result = iotdb_engine.insert_record("root.sg.d", 1, ["new"], [object()])
    assert "cannot store a value of type object" in result.failures[0].reason


def test_auto_create_disabled(tmp_path: Path) -> None:
    with open_engine(tmp_path, enable_auto_create_schema=False) as engine:
        result = engine.insert_record("root.sg.d", 1, ["s"], [1.0])
        assert "does not exist and enable_auto_create_schema is false" in result.failures[0].reason
        engine.create_database("root.sg")
        engine.create_timeseries("root.sg.d.s", "FLOAT", "GORILLA", "ZSTD")
        assert engine.insert_record("root.sg.d", 1, ["s"], [1]).ok
        with pytest.raises(SchemaError, match="belongs to no database"):
            engine.create_timeseries("root.other.d.s", TSDataType.DOUBLE)


def test_create_timeseries_checks(iotdb_engine: Engine) -> None:
    schema = iotdb_engine.create_timeseries("root.db.dev.s", TSDataType.DOUBLE, TSEncoding.CHIMP, Compressor.ZSTD)
    assert (schema.encoding, schema.compressor) == (TSEncoding.CHIMP, Compressor.ZSTD)
    with pytest.raises(SchemaError, match="already exists"):
        iotdb_engine.create_timeseries("root.db.dev.s", TSDataType.INT32)
    with pytest.raises(SchemaError, match="TS_2DIFF cannot store DOUBLE"):
        iotdb_engine.create_timeseries("root.db.dev.t", TSDataType.DOUBLE, TSEncoding.TS_2DIFF)
    with pytest.raises(SchemaError, match="already exists"):
        iotdb_engine.create_database("root.db")
    assert iotdb_engine.create_database("root.`x y`") == "root.`x y`"


def test_list_series_patterns(iotdb_engine: Engine) -> None:
    for device in ["root.a.d1", "root.a.d2", "root.b.x.d3"]:
        iotdb_engine.insert_record(device, 1, ["s1", "s2"], [1.0, 2.0])
    paths = lambda pattern: [s.path for s in iotdb_engine.list_series(pattern)]  # noqa: E731
    assert paths("root.a.*.s1") == ["root.a.d1.s1", "root.a.d2.s1"]
    assert paths("root.**.s2") == ["root.a.d1.s2", "root.a.d2.s2", "root.b.x.d3.s2"]
    assert paths("root.b.**") == ["root.b.x.d3.s1", "root.b.x.d3.s2"]
    assert paths("root.a.`d1`.s1") == ["root.a.d1.s1"]
    assert paths("root.*.s1") == []


def test_tablets_numpy_lists_and_nones(iotdb_engine: Engine) -> None:
    ts = np.array([3, 1, 2, 2], dtype=np.int64)
    result = iotdb_engine.insert_tablet(
        "root.sg.t",
        ts,
        ["f", "i", "txt", "b", "empty"],
        [
            np.array([0.3, 0.1, 0.2, 0.25]),
            [30, None, 20, None],
            ["c", "a", None, "bb"],
            np.array([True, False, True, True]),
            [None, None, None, None],
        ],
        [None, TSDataType.INT64, None, None, None],
    )
    assert result == WriteResult(13, [])
    assert iotdb_engine.query("root.sg.t.f").values.tolist() == [0.1, 0.25, 0.3]
    assert iotdb_engine.query("root.sg.t.i").values.tolist() == [20, 30]
    assert iotdb_engine.query("root.sg.t.i").values.dtype == np.int64
    assert iotdb_engine.query("root.sg.t.txt").values.tolist() == ["a", "bb", "c"]
    assert iotdb_engine.last("root.sg.t.f") == (3, 0.3)
    assert iotdb_engine.last("root.sg.t.b") == (3, True)
    assert iotdb_engine.list_series("root.sg.t.empty") == []
    bad = iotdb_engine.insert_tablet("root.sg.t", [10, 11, 2**64], ["i", "f"], [[1, 2.5, 3], [1.0, 2.0, 3.0]])
    assert bad.points_written == 3
    assert sorted((f.measurement, f.timestamp) for f in bad.failures) == [("f", 2**64), ("i", 11), ("i", 2**64)]
    with pytest.raises(ValueError, match="has 1 values for 2 timestamps"):
        iotdb_engine.insert_tablet("root.sg.t", [1, 2], ["f"], [[1.0]])


def test_write_rows_is_one_wal_record(iotdb_engine: Engine) -> None:
    rows = [Row(f"root.sg.d{i % 5}", i, ("a", "b"), (float(i), i % 2 == 0)) for i in range(100)]
    before = iotdb_engine.state.wal.stats()
    result = iotdb_engine.write_rows(rows)
    after = iotdb_engine.state.wal.stats()
    assert result.points_written == 200
    assert (after.records - before.records, after.writes - before.writes, after.fsyncs - before.fsyncs) == (1, 1, 1)
    assert len(iotdb_engine.query("root.sg.d3.a")) == 20


def test_memory_budget_stall_rejects(tmp_path: Path) -> None:
    mib = 1024 * 1024
    with open_engine(
        tmp_path,
        memtable_memory_budget_in_byte=2 * mib,
        memtable_size_threshold=64 * mib,
        write_stall_timeout_in_ms=0,
        wal_mode="DISABLE",
    ) as engine:
        engine.insert_tablet("root.sg.d", np.arange(100_000), ["s"], [np.zeros(100_000)])
        with pytest.raises(WriteRejectedError, match=r"write rejected: memory budget exceeded \(memtable_memory_"):
            engine.insert_tablet("root.sg.d", np.arange(100_000, 200_000), ["s"], [np.zeros(100_000)])


def test_memory_budget_stall_waits_for_flush(tmp_path: Path) -> None:
    mib = 1024 * 1024
    with open_engine(
        tmp_path,
        memtable_memory_budget_in_byte=2 * mib,
        memtable_size_threshold=mib,
        write_stall_timeout_in_ms=30_000,
    ) as engine:
        for i in range(20):
            stamps = np.arange(i * 50_000, (i + 1) * 50_000)
            assert engine.insert_tablet("root.sg.d", stamps, ["s"], [stamps.astype(np.float64)]).ok
        assert len(engine.query("root.sg.d.s")) == 1_000_000
        assert len(engine.file_levels()) >= 2


def test_closed_engine_refuses(tmp_path: Path) -> None:
    engine = open_engine(tmp_path)
    engine.close()
    engine.close()
    with pytest.raises(EngineClosedError, match="is closed"):
        engine.insert_record("root.sg.d", 1, ["s"], [1.0])
    with pytest.raises(EngineClosedError):
        engine.query("root.sg.d.s")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def iotdb_startup(self, engine: Engine, settings: Settings) -> None:
        self.events.append(("startup", engine.list_devices()))

    @hookimpl
    def iotdb_before_write(self, rows: list[Row]) -> None:
        rows[:] = [row for row in rows if row.device != "root.sg.drop"]
        self.events.append(("before", len(rows)))

    @hookimpl
    def iotdb_after_write(self, rows: list[Row], result: WriteResult) -> None:
        self.events.append(("after", (len(rows), result.points_written)))

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.events.append(("flush", (info.path.name, info.series_count, info.point_count, info.file_size > 0)))

    @hookimpl
    def iotdb_shutdown(self, engine: Engine) -> None:
        self.events.append(("shutdown", engine.closed))


def test_hooks(tmp_path: Path) -> None:
    recorder = Recorder()
    manager = create_plugin_manager(load_entry_points=False, plugins=[recorder])
    with Engine.open(tmp_path, default_settings(), manager) as engine:
        engine.insert_records(["root.sg.keep", "root.sg.drop"], [1, 1], [["s"], ["s"]], [[1.0], [2.0]])
        engine.insert_tablet("root.sg.keep", np.array([2, 3]), ["s", "t"], [np.array([1.0, 2.0]), [None, "x"]])
        engine.flush()
        assert engine.list_devices() == ["root.sg.keep"]
    assert recorder.events == [
        ("startup", []),
        ("before", 1),
        ("after", (1, 1)),
        ("before", 2),
        ("after", (2, 3)),
        ("flush", ("000000000001-L0.tsfile", 2, 4, True)),
        ("shutdown", False),
    ]


def test_after_write_only_hook_sees_tablet_rows(tmp_path: Path) -> None:
    seen: list[Row] = []

    class After:
        @hookimpl
        def iotdb_after_write(self, rows: list[Row], result: WriteResult) -> None:
            seen.extend(rows)

    manager = create_plugin_manager(load_entry_points=False, plugins=[After()])
    with Engine.open(tmp_path, default_settings(), manager) as engine:
        engine.insert_tablet("root.sg.d", np.array([1, 2]), ["s"], [np.array([1.5, 2.5])])
    assert seen == [Row("root.sg.d", 1, ("s",), (1.5,), None), Row("root.sg.d", 2, ("s",), (2.5,), None)]


def test_tablet_rows_a_before_write_hook_changes_are_written_as_changed(tmp_path: Path) -> None:
    class HalveTwo:
        @hookimpl
        def iotdb_before_write(self, rows: list[Row]) -> None:
            rows[:] = [row._replace(values=(row.values[0] / 2,)) if row.timestamp == 2 else row for row in rows]

    manager = create_plugin_manager(load_entry_points=False, plugins=[HalveTwo()])
    with Engine.open(tmp_path, default_settings(), manager) as engine:
        result = engine.insert_tablet("root.sg.d", np.array([1, 2, 3]), ["s"], [np.array([1.0, 2.0, 3.0])])
        assert result.points_written == 3
        assert engine.query("root.sg.d.s").values.tolist() == [1.0, 1.0, 3.0]


def test_a_tablet_before_write_hooks_leave_alone_is_written_whole(tmp_path: Path) -> None:
    seen: list[Row] = []
    written: list[Row] = []

    class Observer:
        @hookimpl
        def iotdb_before_write(self, rows: list[Row]) -> None:
            seen.extend(rows)
            rows[:] = list(rows)  # the same rows in a new list: nothing changed

        @hookimpl
        def iotdb_after_write(self, rows: list[Row], result: WriteResult) -> None:
            written.extend(rows)

    manager = create_plugin_manager(load_entry_points=False, plugins=[Observer()])
    timestamps = np.array([3, 1, 2])
    columns = [np.array([3.5, 1.5, 2.5]), [None, "b", "c"], np.array([True, False, True])]
    with Engine.open(tmp_path, default_settings(), manager) as engine:
        result = engine.insert_tablet("root.sg.d", timestamps, ["x", "t", "flag"], columns)
        assert (result.points_written, result.failures) == (8, [])
        assert engine.query("root.sg.d.x").values.tolist() == [1.5, 2.5, 3.5]
        assert engine.query("root.sg.d.t").timestamps.tolist() == [1, 2]
        assert engine.query("root.sg.d.flag").values.tolist() == [False, True, True]
    expected = [
        Row("root.sg.d", 3, ("x", "t", "flag"), (3.5, None, True), None),
        Row("root.sg.d", 1, ("x", "t", "flag"), (1.5, "b", False), None),
        Row("root.sg.d", 2, ("x", "t", "flag"), (2.5, "c", True), None),
    ]
    assert seen == expected
    assert written == expected


def test_text_with_an_unpaired_surrogate_is_rejected_and_the_rest_written(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "data") as engine:
        result = engine.insert_record("root.sg.d1", 1, ["bad", "ok", "accent"], ["\udc00", "fine", "héllo"])
        assert [(failure.measurement, failure.reason) for failure in result.failures] == [
            ("bad", "text holds an unpaired surrogate, which is not valid Unicode")
        ]
        assert engine.query("root.sg.d1.ok").values.tolist() == ["fine"]
        assert engine.query("root.sg.d1.accent").values.tolist() == ["héllo"]
        tablet = engine.insert_tablet("root.sg.d2", [1, 2], ["t"], [["a", "\ud800"]])
        assert [failure.timestamp for failure in tablet.failures] == [2]
        assert engine.query("root.sg.d2.t").values.tolist() == ["a"]
