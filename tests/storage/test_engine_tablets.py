"""``Engine.write_tablets``: tablets of many devices as one WAL record, typed, with null masks; wrong shapes
refuse the whole call; the record is replayed after the writing process is killed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core import Tablet
from iotdb_core.backend import SupportsTabletWrites
from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine, InvalidArgumentError, StorageError, WriteResult, codec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "data", default_settings()) as opened:
        yield opened


def test_the_engine_offers_tablet_writes(engine: Engine) -> None:
    assert isinstance(engine, SupportsTabletWrites)


def test_tablets_of_every_type_are_written_and_read_back(engine: Engine) -> None:
    stamps = np.arange(4, dtype=np.int64)
    tablets = [
        Tablet("root.tt.d1", stamps, ["b", "i", "l", "f", "d", "t"],
               [np.array([True, False, True, False]), np.array([1, -2, 3, -4], dtype=np.int32),
                np.array([2**40, 0, -1, 7], dtype=np.int64), np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float32),
                np.array([0.25, math.inf, -0.0, 1e300]), ["a", "", "ü", "x y"]],
               [TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE,
                TSDataType.TEXT]),
        Tablet("root.tt.d2", [10, 20], ["v"], [[1.0, 2.0]], ["DOUBLE"]),
    ]
    result = engine.write_tablets(tablets)
    assert result.ok and result.points_written == 26
    assert [s.data_type for s in engine.list_series("root.tt.d1.*")] == [
        TSDataType.BOOLEAN, TSDataType.DOUBLE, TSDataType.FLOAT, TSDataType.INT32, TSDataType.INT64, TSDataType.TEXT
    ]
    assert engine.query("root.tt.d1.b").values.tolist() == [True, False, True, False]
    assert engine.query("root.tt.d1.i").values.tolist() == [1, -2, 3, -4]
    assert engine.query("root.tt.d1.l").values.tolist() == [2**40, 0, -1, 7]
    assert engine.query("root.tt.d1.f").values.tolist() == [0.5, 1.5, 2.5, 3.5]
    assert engine.query("root.tt.d1.d").values.tolist() == [0.25, math.inf, -0.0, 1e300]
    assert engine.query("root.tt.d1.t").values.tolist() == ["a", "", "ü", "x y"]
    assert engine.query("root.tt.d2.v").timestamps.tolist() == [10, 20]
    assert engine.last("root.tt.d2.v") == (20, 2.0)


def test_the_call_is_one_wal_record(engine: Engine) -> None:
    before = engine.state.wal.stats().records
    tablets = [Tablet(f"root.one.d{i}", [1, 2, 3], ["a", "b"], [[1.0, 2.0, 3.0], [4, 5, 6]]) for i in range(50)]
    assert engine.write_tablets(tablets).points_written == 300
    assert engine.state.wal.stats().records == before + 1


def test_null_masks_and_none_values_leave_rows_out(engine: Engine) -> None:
    nulls = [np.array([False, True, False, True]), None, np.array([True, True, True, True])]
    result = engine.write_tablets([
        Tablet("root.nn.d", [1, 2, 3, 4], ["a", "b", "c"],
               [np.array([1.0, 999.0, 3.0, 999.0]), [None, "x", None, "y"], np.array([5, 6, 7, 8])], None, nulls),
    ])
    assert result.ok and result.points_written == 4
    a = engine.query("root.nn.d.a")
    assert a.timestamps.tolist() == [1, 3] and a.values.tolist() == [1.0, 3.0]
    assert engine.query("root.nn.d.b").timestamps.tolist() == [2, 4]
    assert engine.list_series("root.nn.d.c") == []  # every row null: no series is created


def test_values_that_cannot_be_stored_are_failures_of_the_result(engine: Engine) -> None:
    engine.create_timeseries("root.fail.d.n", TSDataType.INT32)
    result = engine.write_tablets([
        Tablet("root.fail.d", [1, 2], ["n"], [[1, "no"]]),
        Tablet("root.fail.e", [1], ["m"], [[2.5]]),
    ])
    assert result.points_written == 1 + 1
    assert [(f.device, f.measurement, f.timestamp, f.value) for f in result.failures] == [("root.fail.d", "n", 2, "no")]
    assert all(f.reason for f in result.failures)


@pytest.mark.parametrize(("tablet", "message"), [
    (Tablet("root.w.d", [1, 2], ["a"], [[1.0]]), "tablets[1].columns[0]: 1 values for 2 timestamps"),
    (Tablet("root.w.d", [1], ["a", "b"], [[1.0]]), "tablets[1].columns: 1 columns for 2 measurements"),
    (Tablet("root.w.d", [1], ["a"], [[1.0]], ["DOUBLE", "INT32"]), "tablets[1].types: 2 data types for 1"),
    (Tablet("root.w.d", [1], ["a"], [[1.0]], ["NOPE"]), "tablets[1].types[0]"),
    (Tablet("root.w.d", [1], ["a"], [[1.0]], None, [None, None]), "tablets[1].nulls: 2 null masks for 1 columns"),
    (Tablet("root.w.d", [1], ["a"], [[1.0]], None, [np.array([0, 1])]), "tablets[1].nulls[0]: expected a boolean"),
    (Tablet("root.w.d", [1], ["a"], [[1.0]], None, [[False, True]]), "tablets[1].nulls[0]: 2 entries for 1"),
    (Tablet(7, [1], ["a"], [[1.0]]), "tablets[1].device: expected a string"),  # type: ignore[arg-type]
    (Tablet("root.w.d", 5, ["a"], [[1.0]]), "tablets[1].timestamps: expected a list"),  # type: ignore[arg-type]
    (Tablet("root.w.d", [1], "a", [[1.0]]), "tablets[1].measurements: expected a list"),
    ("not a tablet", "tablets[1]: expected a Tablet"),
])
def test_a_wrong_shaped_tablet_refuses_the_whole_call(engine: Engine, tablet: Any, message: str) -> None:
    good = Tablet("root.w.ok", [1], ["a"], [[1.0]])
    with pytest.raises(InvalidArgumentError) as raised:
        engine.write_tablets([good, tablet])
    assert str(raised.value).startswith("write_tablets: ") and message in str(raised.value)
    assert engine.list_series("root.w.**") == []
    assert engine.write_tablets([]).points_written == 0


def test_deferred_write_is_visible_before_its_wait(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "data", default_settings().replace(wal_mode="SYNC")) as engine:
        pending = engine.write_tablets_deferred([Tablet("root.df.d", [1, 2], ["a"], [[1.0, 2.0]])])
        assert engine.query("root.df.d.a").values.tolist() == [1.0, 2.0]
        assert isinstance(pending.wait(), WriteResult) and pending.result.points_written == 2


def test_later_tablets_of_one_timestamp_win(engine: Engine) -> None:
    engine.write_tablets([Tablet("root.lw.d", [1, 2], ["a"], [[1.0, 2.0]]),
                          Tablet("root.lw.d", [2, 3], ["a"], [[20.0, 3.0]])])
    assert engine.query("root.lw.d.a").values.tolist() == [1.0, 20.0, 3.0]


def test_the_tablets_record_round_trips_through_the_codec() -> None:
    stamps = np.array([5, 6, 7], dtype=np.int64)
    columns = [codec.TabletColumn("a", TSDataType.DOUBLE, None, np.array([1.0, 2.0, 3.0])),
               codec.TabletColumn("t", TSDataType.TEXT, np.array([True, False, True]), np.array(["x", "z"], object))]
    single = [codec.TabletColumn("a", TSDataType.DOUBLE, None, np.array([9.0]))]
    payload = codec.encode_tablets([("root.c.d1", stamps, columns), ("root.c.d2", stamps[:1], single)])
    assert payload[0] == codec.KIND_TABLETS
    chunks = list(codec.decode(payload))
    assert [(c.device, c.measurement, list(c.timestamps)) for c in chunks] == [
        ("root.c.d1", "a", [5, 6, 7]), ("root.c.d1", "t", [5, 7]), ("root.c.d2", "a", [5]),
    ]
    assert list(chunks[1].values) == ["x", "z"]
    with pytest.raises(StorageError):
        list(codec.decode(payload[:-3]))


# ------------------------------------------------------------------------------------ crash recovery

WRITER = r"""
import sys
import numpy as np
from iotdb_core import Tablet
from iotdb_core.config import default_settings
from iotdb_core.storage import Engine

directory = sys.argv[1]
engine = Engine.open(directory, default_settings().replace(wal_mode="SYNC"))
t = 0
while True:
    stamps = np.arange(t, t + 10, dtype=np.int64)
    tablets = [Tablet(f"root.crash.d{i}", stamps, ["a", "b"], [stamps * 0.5, [f"v{s}" for s in stamps.tolist()]],
                      None, [None, stamps % 3 == 0]) for i in range(20)]
    assert engine.write_tablets(tablets).ok
    sys.stdout.write(f"{t}\n")
    sys.stdout.flush()
    t += 10
"""


def test_acknowledged_tablets_are_replayed_after_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, proc.stderr.read().decode() if proc.stderr else ""
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    lines = [line for line in (first + rest).decode().splitlines() if line.isdigit()]
    acked_end = int(lines[-1]) + 10
    assert not list((directory / "sequence").glob("*.tsfile")), "a flush ran: the test would not replay the WAL"
    with Engine.open(directory, default_settings()) as engine:
        for i in (0, 7, 19):
            a = engine.query(f"root.crash.d{i}.a")
            b = engine.query(f"root.crash.d{i}.b")
            assert a.timestamps[:acked_end].tolist() == list(range(acked_end))
            assert bool(np.all(a.values == a.timestamps * 0.5))
            assert len(a.timestamps) % 10 == 0  # a call is logged whole or not at all
            kept = [s for s in range(acked_end) if s % 3 != 0]
            assert b.timestamps[: len(kept)].tolist() == kept
            assert b.values[: len(kept)].tolist() == [f"v{s}" for s in kept]


# ------------------------------------------------------------------------------------ bad input sweep

_junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.just(""), st.just("root.sg.d"),
    st.just([]), st.just([1, 2]), st.just(np.array([1.0, math.nan])), st.just(np.array([[1]])),
    st.just(np.array([True, False])), st.just(TSDataType.DOUBLE), st.just(object()),
)
_lists = st.one_of(_junk, st.lists(_junk, max_size=3))
_tablets = st.builds(
    Tablet,
    st.one_of(_junk, st.sampled_from(["root.hy.d", "root.hy.`x y`", "root", "root.hy.d.*"])),
    st.one_of(_lists, st.lists(st.integers(min_value=-(2**64), max_value=2**64), max_size=3)),
    st.one_of(_lists, st.lists(st.sampled_from(["s", "", "a.b", "t"]), max_size=3)),
    st.one_of(_lists, st.lists(_lists, max_size=3)),
    st.one_of(st.none(), _lists, st.lists(st.sampled_from([None, "DOUBLE", "text", "nope", TSDataType.INT32]),
                                          max_size=3)),
    st.one_of(st.none(), _lists, st.lists(st.one_of(st.none(), _lists), max_size=3)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(tablets=st.one_of(_junk, st.lists(st.one_of(_tablets, _junk), max_size=3)))
def test_bad_tablets_get_the_engines_own_errors(engine: Engine, tablets: Any) -> None:
    for call in (engine.write_tablets, lambda given: engine.write_tablets_deferred(given).wait()):
        try:
            result = call(tablets)
        except StorageError as exc:
            assert str(exc).startswith("write_tablets"), str(exc)
            continue
        assert isinstance(result, WriteResult)
        assert all(failure.reason for failure in result.failures)
