"""Deletion: tombstones over memtables and files, patterns, ordering, durability, compaction, last()."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.paths import PathError
from iotdb_core.storage import Engine
from iotdb_core.storage.manifest import read_manifest
from iotdb_core.storage.tsfile_io import TsFileSource

ROOT = Path(__file__).resolve().parents[2]


def open_engine(path: Path, **changes: Any) -> Engine:
    base = {"enable_compaction": False, "compaction_files_per_level": 2, "wal_sync_mode_fsync_delay_in_ms": 0.0}
    return Engine.open(path, default_settings().replace(**{**base, **changes}))


def crash_copy(engine: Engine, target: Path) -> None:
    """Copy the directory of an open engine as a SIGKILL would leave it (no flush or compaction midway)."""
    with engine.hold_background():
        shutil.copytree(engine.data_dir, target)


def stamps_of(engine: Engine, path: str, start: int | None = None, end: int | None = None) -> list[int]:
    return engine.query(path, start, end).timestamps.tolist()


def write(engine: Engine, device: str, start: int, stop: int, measurements: tuple[str, ...] = ("s1", "s2")) -> None:
    stamps = np.arange(start, stop, dtype=np.int64)
    result = engine.insert_tablet(device, stamps, list(measurements), [stamps * 1.0 for _ in measurements])
    assert result.ok


def test_partial_ranges_over_files_and_memtable(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 100)
        engine.flush()
        write(engine, "root.sg.d1", 100, 200)
        engine.flush()
        write(engine, "root.sg.d1", 150, 250)  # memtable, overlapping the second file
        assert engine.delete("root.sg.d1.s1", 10, 19) == 1
        assert engine.delete("root.sg.d1.s1", 95, 160) == 1  # across both files and the memtable
        assert engine.delete("root.sg.d1.s1", 240, None) == 1  # open end
        assert engine.delete("root.sg.d1.s1", None, 2) == 1  # open start
        expected = [t for t in range(250) if not (t <= 2 or 10 <= t <= 19 or 95 <= t <= 160 or t >= 240)]
        assert stamps_of(engine, "root.sg.d1.s1") == expected
        assert stamps_of(engine, "root.sg.d1.s1", 90, 170) == [t for t in expected if 90 <= t <= 170]
        assert stamps_of(engine, "root.sg.d1.s2") == list(range(250))  # another series is untouched
        assert engine.delete("root.sg.d1.s1", 50, 40) == 1  # an empty range matches but deletes nothing
        assert stamps_of(engine, "root.sg.d1.s1") == expected


def test_wildcard_patterns_and_counts(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        for device in ("root.sg.d1", "root.sg.d2", "root.sg.g.d3", "root.other.d1"):
            write(engine, device, 0, 10)
        engine.flush()
        assert engine.delete("root.sg.*.s1", 0, 0) == 2
        assert engine.delete("root.sg.**", 9, 9) == 6
        assert engine.delete("root.**.s2", 8, 8) == 4
        assert engine.delete("root.nothing.**", 0, 100) == 0
        assert engine.delete("root.sg.`d1`.s2", 1, 1) == 1  # quoted nodes are canonical
        assert stamps_of(engine, "root.sg.d1.s1") == list(range(1, 9))
        assert stamps_of(engine, "root.sg.d1.s2") == [0, *range(2, 8)]
        assert stamps_of(engine, "root.sg.g.d3.s1") == list(range(9))  # * is one level only
        assert stamps_of(engine, "root.sg.g.d3.s2") == list(range(8))
        assert stamps_of(engine, "root.other.d1.s1") == list(range(10))
        assert stamps_of(engine, "root.other.d1.s2") == [*range(8), 9]


def test_points_written_after_the_delete_stay_visible(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 10)
        engine.flush()
        write(engine, "root.sg.d1", 10, 20)  # in the memtable
        engine.delete("root.sg.d1.s1", 0, 100)
        engine.insert_record("root.sg.d1", 5, ["s1"], [50.0])  # same range, written afterwards
        engine.insert_record("root.sg.d1", 15, ["s1"], [150.0])
        assert engine.query("root.sg.d1.s1").values.tolist() == [50.0, 150.0]
        assert engine.last("root.sg.d1.s1") == (15, 150.0)
        engine.delete("root.sg.d1.s1", 15, 15)
        engine.insert_record("root.sg.d1", 7, ["s1"], [70.0])  # the mutable memtable now holds a newer point
        assert engine.query("root.sg.d1.s1").values.tolist() == [50.0, 70.0]
        engine.flush()
        engine.compact()
        assert engine.query("root.sg.d1.s1").values.tolist() == [50.0, 70.0]
    with open_engine(tmp_path) as engine:
        assert engine.query("root.sg.d1.s1").values.tolist() == [50.0, 70.0]
        assert engine.last("root.sg.d1.s1") == (7, 70.0)


def test_deletes_survive_reopen_and_crash_copies(tmp_path: Path) -> None:
    live = tmp_path / "live"
    with open_engine(live) as engine:
        write(engine, "root.sg.d1", 0, 50)
        engine.flush()
        write(engine, "root.sg.d1", 50, 100)  # only in the WAL
        engine.delete("root.sg.d1.*", 40, 59)
        write(engine, "root.sg.d1", 45, 47)  # after the delete, in the WAL
        expected = [*range(40), 45, 46, *range(60, 100)]
        assert stamps_of(engine, "root.sg.d1.s1") == expected
        crash_copy(engine, tmp_path / "crashed")  # what a SIGKILL would leave
    with open_engine(tmp_path / "crashed") as engine:
        assert stamps_of(engine, "root.sg.d1.s1") == expected
        assert stamps_of(engine, "root.sg.d1.s2") == expected
        assert engine.last("root.sg.d1.s2") == (99, 99.0)
    with open_engine(live) as engine:
        assert stamps_of(engine, "root.sg.d1.s1") == expected


def test_delete_on_replayed_memtable_sealed_by_size(tmp_path: Path) -> None:
    """Replay seals memtables by size: the tombstone must still sit between the right records."""
    engine = open_engine(tmp_path / "live", memtable_flush_interval_in_ms=3_600_000)
    try:
        with engine.hold_background():  # everything stays in the WAL
            for start in range(0, 20_000, 1000):
                write(engine, "root.sg.d", start, start + 1000, ("s",))
            engine.delete("root.sg.d.s", 500, 15_500)
            for start in range(1000, 3000, 1000):
                write(engine, "root.sg.d", start, start + 10, ("s",))
            expected = stamps_of(engine, "root.sg.d.s")
            shutil.copytree(tmp_path / "live", tmp_path / "crashed")
    finally:
        engine.close()
    assert expected == [*range(500), *range(1000, 1010), *range(2000, 2010), *range(15_501, 20_000)]
    state = read_manifest(tmp_path / "crashed")
    assert state.files == () and state.tombstones[0].seq > state.wal_replay_from
    with open_engine(tmp_path / "crashed", memtable_size_threshold=64 * 1024) as engine:
        assert len(engine.state.versions.current.memtables) > 3  # replay sealed memtables before and after it
        assert stamps_of(engine, "root.sg.d.s") == expected
        engine.flush()
        assert stamps_of(engine, "root.sg.d.s") == expected
    with open_engine(tmp_path / "crashed") as engine:
        assert stamps_of(engine, "root.sg.d.s") == expected


KILLED = r"""
import sys, time
import numpy as np
from iotdb_core.config import default_settings
from iotdb_core.paths import PathError
from iotdb_core.storage import Engine

settings = default_settings().replace(enable_compaction=False)
engine = Engine.open(sys.argv[1], settings)
stamps = np.arange(0, 1000, dtype=np.int64)
engine.insert_tablet("root.sg.d", stamps, ["a", "b"], [stamps * 1.0, stamps * 2.0])
engine.flush()
stamps = np.arange(1000, 2000, dtype=np.int64)
engine.insert_tablet("root.sg.d", stamps, ["a", "b"], [stamps * 1.0, stamps * 2.0])
print("deleted", engine.delete("root.sg.d.*", 500, 1499), flush=True)
engine.insert_record("root.sg.d", 700, ["a"], [-1.0])
print("rewritten", flush=True)
time.sleep(60)
"""


def test_delete_survives_sigkill(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == [b"deleted", b"2"], proc.stderr.read() if proc.stderr else b""
    assert proc.stdout.readline().strip() == b"rewritten"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open_engine(tmp_path) as engine:
        a = engine.query("root.sg.d.a")
        assert a.timestamps.tolist() == [*range(500), 700, *range(1500, 2000)]
        assert a.values[500] == -1.0
        assert stamps_of(engine, "root.sg.d.b") == [*range(500), *range(1500, 2000)]
        assert engine.last("root.sg.d.a") == (1999, 1999.0)


def test_compaction_drops_deleted_points_and_the_tombstone(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 100)
        engine.flush()
        write(engine, "root.sg.d1", 100, 200)
        engine.flush()
        engine.delete("root.sg.d1.s1", 50, 149)
        assert [t.pattern for t in read_manifest(tmp_path).tombstones] == ["root.sg.d1.s1"]
        assert engine.compact() == 1
        (name, level), = engine.file_levels()
        assert level == 1
        with TsFileSource(tmp_path / "sequence" / name) as source:
            timestamps, _ = source.read("root.sg.d1", "s1")
            assert timestamps.tolist() == [*range(50), *range(150, 200)]
            assert source.read("root.sg.d1", "s2")[0].tolist() == list(range(200))
        state = read_manifest(tmp_path)
        assert state.tombstones == ()  # every file it could touch was written through it
        assert state.files[0].tombstone_mark == 1
        assert stamps_of(engine, "root.sg.d1.s1") == [*range(50), *range(150, 200)]


def test_tombstone_is_kept_until_older_files_are_compacted(tmp_path: Path) -> None:
    with open_engine(tmp_path, compaction_files_per_level=3) as engine:
        write(engine, "root.sg.d1", 0, 100)
        engine.flush()
        engine.delete("root.sg.d1.s1", 10, 20)
        write(engine, "root.sg.d1", 15, 16)
        engine.flush()  # a newer file: the tombstone does not apply to it
        assert len(read_manifest(tmp_path).tombstones) == 1
        assert engine.compact() == 0
        write(engine, "root.sg.d1", 200, 210)
        engine.flush()
        assert engine.compact() == 1
        assert read_manifest(tmp_path).tombstones == ()
        assert stamps_of(engine, "root.sg.d1.s1") == [*range(10), 15, *range(21, 100), *range(200, 210)]


def test_flush_drops_points_of_sealed_memtables(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 100)
        engine.delete("root.sg.d1.s1", 0, 49)  # seals the memtable, which the flush writes without them
        engine.flush()
        (name, _), = engine.file_levels()
        with TsFileSource(tmp_path / "sequence" / name) as source:
            assert source.read("root.sg.d1", "s1")[0].tolist() == list(range(50, 100))
        assert read_manifest(tmp_path).tombstones == ()
        engine.delete("root.sg.d1.**")
        engine.flush()
        assert engine.file_levels() == [(name, 0)]  # nothing new to write
        engine.compact()
        assert stamps_of(engine, "root.sg.d1.s1") == []


def test_last_is_corrected_after_deletes(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 100_000, ("s",))  # a long series: the backward search widens
        engine.flush()
        write(engine, "root.sg.d1", 100_000, 100_010, ("s",))
        assert engine.last("root.sg.d1.s") == (100_009, 100_009.0)
        engine.delete("root.sg.d1.s", 100_005, None)
        assert engine.last("root.sg.d1.s") == (100_004, 100_004.0)
        engine.delete("root.sg.d1.s", 3, 100_004)
        assert engine.last("root.sg.d1.s") == (2, 2.0)
        engine.delete("root.sg.d1.s", 50, 60)  # below the last point: unchanged
        assert engine.last("root.sg.d1.s") == (2, 2.0)
    with open_engine(tmp_path) as engine:
        assert engine.last("root.sg.d1.s") == (2, 2.0)
        engine.delete("root.sg.d1.s")
        assert engine.last("root.sg.d1.s") is None
        engine.insert_record("root.sg.d1", 1, ["s"], [9.0])
        assert engine.last("root.sg.d1.s") == (1, 9.0)


def test_last_rebuilt_on_open_honours_tombstones(tmp_path: Path) -> None:
    with open_engine(tmp_path / "data") as engine:
        write(engine, "root.sg.d1", 0, 10)
        engine.flush()
        write(engine, "root.sg.d1", 10, 20)
        engine.flush()
        engine.delete("root.sg.d1.s1", 15, None)  # hides the newest file's last point
        crash_copy(engine, tmp_path / "copy")
    with open_engine(tmp_path / "copy") as engine:
        assert engine.last("root.sg.d1.s1") == (14, 14.0)
        assert engine.last("root.sg.d1.s2") == (19, 19.0)


def test_delete_timeseries_removes_schema_and_data(tmp_path: Path) -> None:
    with open_engine(tmp_path / "data") as engine:
        write(engine, "root.sg.d1", 0, 10)
        engine.flush()
        write(engine, "root.sg.d1", 10, 20)
        assert engine.delete_timeseries("root.sg.*.s1") == 1
        assert engine.delete_timeseries("root.sg.*.s1") == 0
        assert [s.path for s in engine.list_series()] == ["root.sg.d1.s2"]
        assert engine.query("root.sg.d1.s1").data_type is None
        assert engine.last("root.sg.d1.s1") is None
        assert engine.insert_record("root.sg.d1", 3, ["s1"], ["now text"]).ok  # re-created with another type
        assert engine.query("root.sg.d1.s1").values.tolist() == ["now text"]
        crash_copy(engine, tmp_path / "crashed")
    for directory in (tmp_path / "data", tmp_path / "crashed"):
        with open_engine(directory) as engine:
            assert [(s.path, s.data_type.value) for s in engine.list_series()] == [
                ("root.sg.d1.s1", "TEXT"),
                ("root.sg.d1.s2", "DOUBLE"),
            ]
            assert engine.query("root.sg.d1.s1").values.tolist() == ["now text"]
            assert engine.last("root.sg.d1.s1") == (3, "now text")
            assert stamps_of(engine, "root.sg.d1.s2") == list(range(20))
            engine.compact()
            engine.flush()
            engine.compact()
            assert engine.query("root.sg.d1.s1").values.tolist() == ["now text"]


def test_delete_timeseries_without_recreation_survives_replay(tmp_path: Path) -> None:
    with open_engine(tmp_path / "data") as engine:
        write(engine, "root.sg.d1", 0, 10)
        engine.delete_timeseries("root.sg.d1.**")
        assert engine.list_series() == []
        crash_copy(engine, tmp_path / "crashed")
    with open_engine(tmp_path / "crashed") as engine:
        assert engine.list_series() == []  # the WAL's records do not bring the series back
        assert engine.query("root.sg.d1.s1").data_type is None


def test_deletes_and_writes_concurrently(tmp_path: Path) -> None:
    """A writer keeps writing and a reader reading while deletions remove older points; what is left is a
    contiguous tail, and nothing deadlocks."""
    with open_engine(tmp_path, memtable_size_threshold=32 * 1024, enable_compaction=True) as engine:
        stop = threading.Event()
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                t = 0
                while not stop.is_set():
                    write(engine, "root.sg.d", t, t + 100, ("s",))
                    t += 100
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader() -> None:
            try:
                while not stop.is_set():
                    result = engine.query("root.sg.d.s")
                    assert bool(np.all(np.diff(result.timestamps) > 0))
                    segments = engine.scan("root.sg.d.s")
                    assert all(a.end_time < b.start_time for a, b in itertools.pairwise(segments))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(30):
                newest = engine.last("root.sg.d.s")
                if newest is not None:
                    engine.delete("root.sg.d.s", None, newest[0] // 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors
        newest = engine.last("root.sg.d.s")
        assert newest is not None
        result = engine.query("root.sg.d.s")
        assert result.timestamps[-1] == newest[0]
        assert bool(np.all(np.diff(result.timestamps) == 1))  # only a prefix was deleted
        engine.delete("root.sg.d.s", None, int(result.timestamps[0]) + 10)
        engine.flush()
        engine.compact()
        assert stamps_of(engine, "root.sg.d.s") == result.timestamps[11:].tolist()


def test_invalid_patterns_are_refused(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        with pytest.raises(PathError):
            engine.delete("sg.d1.s1")
        with pytest.raises(PathError):
            engine.delete_timeseries("root..s1")


def test_format_1_manifest_is_read_and_upgraded(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write(engine, "root.sg.d1", 0, 10)
    document = json.loads((tmp_path / "MANIFEST").read_text())
    state = document["state"]
    old = {
        "files": [{k: v for k, v in entry.items() if k != "tombstone_mark"} for entry in state["files"]],
        "next_version": state["next_version"],
        "wal_replay_from": state["wal_replay_from"],
    }
    body = json.dumps(old, sort_keys=True, separators=(",", ":"))
    (tmp_path / "MANIFEST").write_text(f'{{"format":1,"crc32":{zlib.crc32(body.encode())},"state":{body}}}\n')
    with open_engine(tmp_path) as engine:
        assert stamps_of(engine, "root.sg.d1.s1") == list(range(10))
        engine.delete("root.sg.d1.s1", 0, 4)
        assert json.loads((tmp_path / "MANIFEST").read_text())["format"] == 2
    with open_engine(tmp_path) as engine:
        assert stamps_of(engine, "root.sg.d1.s1") == list(range(5, 10))


def test_tombstones_with_the_wal_disabled(tmp_path: Path) -> None:
    with open_engine(tmp_path, wal_mode="DISABLE") as engine:
        write(engine, "root.sg.d1", 0, 10)
        engine.flush()
        engine.delete("root.sg.d1.s1", 0, 4)
    with open_engine(tmp_path, wal_mode="DISABLE") as engine:
        assert stamps_of(engine, "root.sg.d1.s1") == list(range(5, 10))
        write(engine, "root.sg.d1", 0, 3)
        engine.flush()
        assert stamps_of(engine, "root.sg.d1.s1") == [0, 1, 2, *range(5, 10)]
        engine.compact()
        assert read_manifest(tmp_path).tombstones == ()
        assert stamps_of(engine, "root.sg.d1.s1") == [0, 1, 2, *range(5, 10)]
