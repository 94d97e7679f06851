"""TTL: rules on prefixes, immediate invisibility, reclamation by compaction and file removal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.paths import PathError
from iotdb_core.storage import Engine
from iotdb_core.storage.manifest import read_manifest
from iotdb_core.storage.tsfile_io import TsFileSource
from iotdb_core.testing.waiting import wait_until

HOUR = 3_600_000


def open_engine(path: Path, **changes: Any) -> Engine:
    base = {"enable_compaction": False, "compaction_files_per_level": 2, "wal_sync_mode_fsync_delay_in_ms": 0.0}
    return Engine.open(path, default_settings().replace(**{**base, **changes}))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def write_hours(engine: Engine, device: str, now: int, hours: range, measurements: tuple[str, ...] = ("s",)) -> None:
    """One point per hour ago in ``hours`` (e.g. range(10, 0, -1) writes 10h ago .. 1h ago)."""
    stamps = np.array([now - h * HOUR for h in hours], dtype=np.int64)
    assert engine.insert_tablet(device, stamps, list(measurements), [stamps * 0.0 + 1 for _ in measurements]).ok


def hours_of(engine: Engine, path: str, now: int) -> list[int]:
    return [round((now - t) / HOUR) for t in engine.query(path).timestamps.tolist()]


def test_expired_points_are_invisible_at_once_and_rules_persist(tmp_path: Path) -> None:
    now = now_ms()
    with open_engine(tmp_path) as engine:
        write_hours(engine, "root.sg.d1", now, range(10, -1, -1))
        engine.flush()
        write_hours(engine, "root.sg.d1", now, range(20, 14, -1), ("t",))  # memtable only
        engine.set_ttl("root.sg", 5 * HOUR + 60_000)
        assert engine.list_ttl() == {"root.sg.**": 5 * HOUR + 60_000}
        assert hours_of(engine, "root.sg.d1.s", now) == [5, 4, 3, 2, 1, 0]
        assert engine.query("root.sg.d1.s", None, now - 3 * HOUR).timestamps.tolist() == [
            now - 5 * HOUR,
            now - 4 * HOUR,
            now - 3 * HOUR,
        ]
        assert engine.query("root.sg.d1.t").timestamps.tolist() == []
        assert engine.last("root.sg.d1.t") is None  # every point of it expired
        assert engine.last("root.sg.d1.s") == (now, 1.0)
        engine.set_ttl("root.sg", None)  # nothing reclaimed yet: the points come back
        assert engine.list_ttl() == {}
        assert hours_of(engine, "root.sg.d1.t", now) == [20, 19, 18, 17, 16, 15]
        assert engine.last("root.sg.d1.t") == (now - 15 * HOUR, 1.0)
        engine.set_ttl("root.sg.**", 2 * HOUR + 60_000)
    with open_engine(tmp_path) as engine:
        assert engine.list_ttl() == {"root.sg.**": 2 * HOUR + 60_000}
        assert hours_of(engine, "root.sg.d1.s", now) == [2, 1, 0]
        engine.set_ttl("root.sg.**", None)
        # The final flush left expired points of the memtable out, and they stay gone.
        assert engine.query("root.sg.d1.t").timestamps.tolist() == []
        assert engine.last("root.sg.d1.t") is None


def test_most_specific_rule_wins(tmp_path: Path) -> None:
    now = now_ms()
    with open_engine(tmp_path) as engine:
        for device in ("root.sg.d1", "root.sg.d2", "root.other.d1"):
            write_hours(engine, device, now, range(10, -1, -1), ("s", "t"))
        engine.set_ttl("root.**", HOUR + 60_000)
        engine.set_ttl("root.sg.d1", 5 * HOUR + 60_000)
        engine.set_ttl("root.sg.*.s", 3 * HOUR + 60_000)
        assert engine.list_ttl() == {
            "root.**": HOUR + 60_000,
            "root.sg.*.s.**": 3 * HOUR + 60_000,
            "root.sg.d1.**": 5 * HOUR + 60_000,
        }
        assert hours_of(engine, "root.sg.d1.s", now) == [3, 2, 1, 0]  # the deeper rule, wildcard or not
        assert hours_of(engine, "root.sg.d1.t", now) == [5, 4, 3, 2, 1, 0]
        assert hours_of(engine, "root.sg.d2.s", now) == [3, 2, 1, 0]
        assert hours_of(engine, "root.sg.d2.t", now) == [1, 0]
        assert hours_of(engine, "root.other.d1.s", now) == [1, 0]


def test_files_whose_points_all_expired_are_removed(tmp_path: Path) -> None:
    now = now_ms()
    with open_engine(tmp_path) as engine:
        write_hours(engine, "root.sg.d1", now, range(10, 5, -1))
        engine.flush()
        write_hours(engine, "root.sg.d1", now, range(3, -1, -1))
        engine.flush()
        old, recent = (name for name, _ in engine.file_levels())
        engine.set_ttl("root.sg.d1", 4 * HOUR)
        assert engine.compact() == 0
        assert engine.file_levels() == [(recent, 0)]
        assert [entry.name for entry in read_manifest(tmp_path).files] == [recent]
        assert not (tmp_path / "sequence" / old).exists()
        assert hours_of(engine, "root.sg.d1.s", now) == [3, 2, 1, 0]


def test_background_timer_removes_expired_files(tmp_path: Path) -> None:
    now = now_ms()
    with open_engine(tmp_path) as engine:
        write_hours(engine, "root.sg.d1", now, range(10, 5, -1))
        engine.flush()
        write_hours(engine, "root.other.d1", now, range(10, 5, -1))  # no rule covers it
        engine.flush()
        engine.set_ttl("root.sg", HOUR)
        assert wait_until(lambda: len(engine.file_levels()) <= 1, 10), "the expired file was not removed"
        assert len(engine.query("root.other.d1.s")) == 5


def test_compaction_drops_expired_points(tmp_path: Path) -> None:
    now = now_ms()
    with open_engine(tmp_path) as engine:
        write_hours(engine, "root.sg.d1", now, range(10, 4, -1))
        write_hours(engine, "root.sg.d2", now, range(10, 4, -1))
        engine.flush()
        write_hours(engine, "root.sg.d1", now, range(4, -1, -1))
        engine.flush()
        engine.set_ttl("root.sg.d1", 7 * HOUR + 60_000)
        assert engine.compact() == 1
        (name, _), = engine.file_levels()
        with TsFileSource(tmp_path / "sequence" / name) as source:
            assert len(source.read("root.sg.d1", "s")[0]) == 8  # 7h ago .. now
            assert len(source.read("root.sg.d2", "s")[0]) == 6  # no rule covers d2
        assert hours_of(engine, "root.sg.d1.s", now) == [7, 6, 5, 4, 3, 2, 1, 0]


def test_microsecond_precision(tmp_path: Path) -> None:
    now_us = time.time_ns() // 1000
    with open_engine(tmp_path, timestamp_precision="us") as engine:
        stamps = np.array([now_us - 10_000_000, now_us - 2_000_000, now_us], dtype=np.int64)
        assert engine.insert_tablet("root.sg.d", stamps, ["s"], [np.ones(3)]).ok
        engine.set_ttl("root.sg", 5_000)  # 5 s = 5,000,000 us
        assert engine.query("root.sg.d.s").timestamps.tolist() == stamps[1:].tolist()


def test_invalid_rules_are_refused(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        for bad in (0, -5):
            with pytest.raises(ValueError):
                engine.set_ttl("root.sg", bad)
        for wrong in (1.5, True, "10"):
            with pytest.raises(TypeError):
                engine.set_ttl("root.sg", wrong)  # type: ignore[arg-type]
        with pytest.raises(PathError):
            engine.set_ttl("sg.d1", 10)
        engine.set_ttl("root.sg", None)  # unsetting what is not set is fine
        assert engine.list_ttl() == {}
