"""A stateful property test: random writes, deletions, flushes, compactions, reopenings and crashes against a dict
model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.formatter import Row
from iotdb_core.storage import Engine

SERIES: dict[tuple[str, str], TSDataType] = {
    ("root.sg.d1", "i"): TSDataType.INT64,
    ("root.sg.d1", "f"): TSDataType.DOUBLE,
    ("root.sg.d1", "t"): TSDataType.TEXT,
    ("root.sg.d2", "b"): TSDataType.BOOLEAN,
    ("root.sg.d2", "x"): TSDataType.INT32,
    ("root.sg.d2", "y"): TSDataType.FLOAT,
}
DEVICES = sorted({device for device, _ in SERIES})
VALUES = {
    TSDataType.INT64: st.integers(-(2**63), 2**63 - 1),
    TSDataType.DOUBLE: st.floats(allow_nan=False),
    TSDataType.TEXT: st.text(max_size=4),
    TSDataType.BOOLEAN: st.booleans(),
    TSDataType.INT32: st.integers(-(2**31), 2**31 - 1),
    TSDataType.FLOAT: st.floats(allow_nan=False, width=32),
}
TIMESTAMPS = st.integers(-20, 60)
DELETE_PATTERNS: dict[str, list[tuple[str, str]]] = {
    "root.sg.d1.i": [("root.sg.d1", "i")],
    "root.sg.*.x": [("root.sg.d2", "x")],
    "root.sg.d1.*": [key for key in SERIES if key[0] == "root.sg.d1"],
    "root.sg.**": list(SERIES),
    "root.**.t": [("root.sg.d1", "t")],
    "root.sg.*.*": list(SERIES),
    "root.other.**": [],
}
ENGINE_SETTINGS = default_settings().replace(
    enable_compaction=False, compaction_files_per_level=2, wal_sync_mode_fsync_delay_in_ms=0.0
)


@st.composite
def record(draw: st.DrawFn) -> tuple[str, int, list[str], list[Any]]:
    device = draw(st.sampled_from(DEVICES))
    names = [m for d, m in SERIES if d == device]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    values = [draw(VALUES[SERIES[(device, m)]]) for m in chosen]
    return device, draw(TIMESTAMPS), chosen, values


@st.composite
def tablet(draw: st.DrawFn) -> tuple[str, list[int], list[str], list[list[Any]]]:
    device = draw(st.sampled_from(DEVICES))
    names = [m for d, m in SERIES if d == device]
    stamps = draw(st.lists(TIMESTAMPS, min_size=1, max_size=12))
    columns = [
        draw(st.lists(st.one_of(st.none(), VALUES[SERIES[(device, m)]]), min_size=len(stamps), max_size=len(stamps)))
        for m in names
    ]
    return device, stamps, names, columns


class EngineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="engine-model-"))
        self.generation = 0
        self.model: dict[tuple[str, str], dict[int, Any]] = {key: {} for key in SERIES}
        self.engine = Engine.open(self.directory(), ENGINE_SETTINGS)
        for (device, measurement), data_type in SERIES.items():
            self.engine.create_timeseries(f"{device}.{measurement}", data_type)

    def directory(self) -> Path:
        return self.root / str(self.generation)

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def stored(self, device: str, measurement: str, value: Any) -> Any:
        if SERIES[(device, measurement)] is TSDataType.FLOAT:
            return float(np.float32(value))
        return value

    @rule(data=record())
    def insert_record(self, data: tuple[str, int, list[str], list[Any]]) -> None:
        device, timestamp, measurements, values = data
        result = self.engine.insert_record(device, timestamp, measurements, values)
        assert result.ok and result.points_written == len(values)
        for measurement, value in zip(measurements, values, strict=True):
            self.model[(device, measurement)][timestamp] = self.stored(device, measurement, value)

    @rule(rows=st.lists(record(), min_size=1, max_size=6))
    def write_rows(self, rows: list[tuple[str, int, list[str], list[Any]]]) -> None:
        result = self.engine.write_rows([Row(d, t, tuple(m), tuple(v)) for d, t, m, v in rows])
        assert result.ok
        for device, timestamp, measurements, values in rows:
            for measurement, value in zip(measurements, values, strict=True):
                self.model[(device, measurement)][timestamp] = self.stored(device, measurement, value)

    @rule(data=tablet(), as_numpy=st.booleans())
    def insert_tablet(self, data: tuple[str, list[int], list[str], list[list[Any]]], as_numpy: bool) -> None:
        device, stamps, names, columns = data
        given: list[Any] = columns
        if as_numpy:
            given = [
                np.array(column, dtype=object if None in column or SERIES[(device, name)] is TSDataType.TEXT else None)
                for name, column in zip(names, columns, strict=True)
            ]
        result = self.engine.insert_tablet(device, np.array(stamps) if as_numpy else stamps, names, given)
        assert result.ok, result.failures
        for name, column in zip(names, columns, strict=True):
            for timestamp, value in zip(stamps, column, strict=True):
                if value is not None:
                    self.model[(device, name)][timestamp] = self.stored(device, name, value)

    @rule(
        pattern=st.sampled_from(sorted(DELETE_PATTERNS)),
        start=st.one_of(st.none(), TIMESTAMPS),
        end=st.one_of(st.none(), TIMESTAMPS),
    )
    def delete(self, pattern: str, start: int | None, end: int | None) -> None:
        assert self.engine.delete(pattern, start, end) == len(DELETE_PATTERNS[pattern])
        low = -(2**63) if start is None else start
        high = 2**63 - 1 if end is None else end
        for key in DELETE_PATTERNS[pattern]:
            self.model[key] = {t: v for t, v in self.model[key].items() if not low <= t <= high}

    @rule(key=st.sampled_from(sorted(SERIES)))
    def delete_timeseries(self, key: tuple[str, str]) -> None:
        path = f"{key[0]}.{key[1]}"
        assert self.engine.delete_timeseries(path) == 1
        assert path not in {s.path for s in self.engine.list_series()}
        self.engine.create_timeseries(path, SERIES[key])
        self.model[key] = {}

    @rule()
    def flush(self) -> None:
        self.engine.flush()

    @rule()
    def compact(self) -> None:
        self.engine.compact()
        levels: dict[int, int] = {}
        for _, level in self.engine.file_levels():
            levels[level] = levels.get(level, 0) + 1
        assert all(count < 2 for count in levels.values())

    @rule()
    def reopen(self) -> None:
        self.engine.close()
        self.engine = Engine.open(self.directory(), ENGINE_SETTINGS)

    @precondition(lambda self: self.generation < 3)
    @rule()
    def crash(self) -> None:
        """Recover from a copy of the directory taken while the engine is open (what SIGKILL leaves)."""
        source = self.directory()
        self.generation += 1
        with self.engine.hold_background():  # a deletion may have woken the flusher
            shutil.copytree(source, self.directory())
        self.engine.close()
        self.engine = Engine.open(self.directory(), ENGINE_SETTINGS)

    @invariant()
    def matches_model(self) -> None:
        for (device, measurement), points in self.model.items():
            path = f"{device}.{measurement}"
            result = self.engine.query(path)
            expected = sorted(points.items())
            assert result.timestamps.tolist() == [t for t, _ in expected], path
            assert result.values.tolist() == [v for _, v in expected], path
            assert self.engine.last(path) == (expected[-1] if expected else None), path
            assert sum(segment.count for segment in self.engine.scan(path)) == len(expected), path
            if len(expected) > 2:
                low, high = expected[1][0], expected[-2][0]
                ranged = self.engine.query(path, low, high)
                assert ranged.timestamps.tolist() == [t for t, _ in expected[1:-1]], path


EngineModel.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEngineModel = EngineModel.TestCase
