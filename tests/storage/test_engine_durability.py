"""Durable state: reopening, WAL replay, the manifest, orphan files, the directory lock, TsFile contents."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tsfile

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import CorruptionError, DataDirLockedError, Engine
from iotdb_core.storage.manifest import read_manifest
from iotdb_core.storage.wal_format import HEADER_SIZE
from iotdb_core.testing.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def open_engine(path: Path, **changes: Any) -> Engine:
    return Engine.open(path, default_settings().replace(**changes))


def write_sample(engine: Engine) -> None:
    engine.insert_tablet("root.sg.d1", np.arange(1000), ["s1", "s2"], [np.arange(1000) * 0.5, np.arange(1000) % 7])
    engine.insert_record("root.sg.d1", 500, ["s1", "txt"], [-1.0, "five hundred"])
    engine.insert_record("root.sg.d2", -5, ["flag", "n"], [True, 42], [None, TSDataType.INT32])


def check_sample(engine: Engine) -> None:
    s1 = engine.query("root.sg.d1.s1")
    assert s1.timestamps.tolist() == list(range(1000))
    assert s1.values[500] == -1.0 and s1.values[501] == 250.5
    assert engine.query("root.sg.d1.txt").values.tolist() == ["five hundred"]
    assert engine.query("root.sg.d2.n").values.dtype == np.int32
    assert engine.last("root.sg.d1.s1") == (999, 499.5)
    assert engine.last("root.sg.d1.s2") == (999, 999 % 7)
    assert engine.last("root.sg.d2.flag") == (-5, True)
    assert engine.last("root.sg.d2.n") == (-5, 42)
    assert engine.last("root.sg.d1.txt") == (500, "five hundred")


def test_reopen_after_close_reads_files_and_rebuilds_last(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        write_sample(engine)
    manifest = read_manifest(tmp_path)
    assert [entry.name for entry in manifest.files] == ["000000000001-L0.tsfile"]
    with open_engine(tmp_path) as engine:
        check_sample(engine)
        assert engine.list_series("root.sg.d2.n")[0].data_type is TSDataType.INT32


@pytest.mark.parametrize("mode", ["SYNC", "ASYNC"])
def test_replay_of_an_unflushed_wal(tmp_path: Path, mode: str) -> None:
    """A copy of the directory taken while the engine is open is what a crash leaves behind."""
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with open_engine(live, wal_mode=mode) as engine:
        engine.insert_record("root.sg.d1", 1, ["s1"], [1.0])
        engine.flush()
        write_sample(engine)
        shutil.copytree(live, crashed)
    with open_engine(crashed) as engine:
        check_sample(engine)
        assert engine.query("root.sg.d1.s1").values[1] == 0.5  # the flushed write was overwritten later


def test_replay_skips_flushed_records_so_newer_files_still_win(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with open_engine(live) as engine:
        engine.insert_record("root.sg.d", 1, ["s"], [1.0])
        engine.flush()
        engine.insert_record("root.sg.d", 1, ["s"], [2.0])
        engine.flush()
        engine.insert_record("root.sg.d", 2, ["s"], [3.0])
        shutil.copytree(live, crashed)
    with open_engine(crashed) as engine:
        assert engine.query("root.sg.d.s").values.tolist() == [2.0, 3.0]
        assert engine.last("root.sg.d.s") == (2, 3.0)


def test_wal_segments_are_released_after_flush(tmp_path: Path) -> None:
    with open_engine(tmp_path, wal_file_size_threshold_in_byte=1024 * 1024) as engine:
        for i in range(40):
            stamps = np.arange(i * 10_000, (i + 1) * 10_000)
            engine.insert_tablet("root.sg.d", stamps, ["s"], [stamps * 1.0])
        segments = sorted((tmp_path / "wal").glob("*.wal"))
        assert len(segments) >= 3
        engine.flush()
        assert len(sorted((tmp_path / "wal").glob("*.wal"))) == 1
        assert read_manifest(tmp_path).wal_replay_from > 40


def test_orphans_are_removed_on_open(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.insert_record("root.sg.d", 1, ["s"], [1.0])
    sequence = tmp_path / "sequence"
    (sequence / "000000000077-L0.tsfile.tmp").write_bytes(b"partial")
    shutil.copy(sequence / "000000000001-L0.tsfile", sequence / "000000000005-L1.tsfile")
    (tmp_path / "MANIFEST.tmp").write_text("{")
    with open_engine(tmp_path) as engine:
        assert sorted(p.name for p in sequence.iterdir()) == ["000000000001-L0.tsfile"]
        assert not (tmp_path / "MANIFEST.tmp").exists()
        assert engine.query("root.sg.d.s").values.tolist() == [1.0]


def test_tsfile_is_readable_by_the_tsfile_package(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.insert_tablet("root.sg.d1", np.array([3, 1, 2, 1]), ["s1"], [np.array([3.0, 1.0, 2.0, 1.5])])
        engine.insert_record("root.sg.d1", 4, ["label", "count"], ["four", 4], [None, TSDataType.INT64])
        engine.insert_record("root.sg.`d.2`", 9, ["on"], [False])
        engine.flush()
        [name] = [n for n, _ in engine.file_levels()]
    reader = tsfile.TsFileReader(str(tmp_path / "sequence" / name))
    try:
        schemas = reader.get_all_timeseries_schemas()
        assert sorted(schemas) == ["root.sg.`d.2`", "root.sg.d1"]
        declared = {s.get_timeseries_name(): s.get_data_type() for s in schemas["root.sg.d1"].get_timeseries_list()}
        assert declared == {"s1": tsfile.TSDataType.DOUBLE, "label": tsfile.TSDataType.TEXT,
                            "count": tsfile.TSDataType.INT64}
        with reader.query_timeseries("root.sg.d1", ["s1"], 0, 100) as result:
            frame = result.read_data_frame(100)
        assert frame.iloc[:, 0].tolist() == [1, 2, 3]
        assert frame.iloc[:, 1].tolist() == [1.5, 2.0, 3.0]
        with reader.query_timeseries("root.sg.d1", ["label"], 0, 100) as result:
            frame = result.read_data_frame(100)
        assert frame.iloc[:, 1].tolist() == ["four"]
    finally:
        reader.close()


def test_second_open_is_refused(tmp_path: Path) -> None:
    with open_engine(tmp_path):
        with pytest.raises(DataDirLockedError, match=str(tmp_path)):
            open_engine(tmp_path)
        code = (
            "import sys\nfrom iotdb_core.storage import Engine, DataDirLockedError\n"
            "try:\n    Engine.open(sys.argv[1])\nexcept DataDirLockedError as exc:\n    print(exc)\n    sys.exit(3)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, done.stderr
        assert f"data directory {tmp_path} is in use" in done.stdout
    with open_engine(tmp_path):
        pass


def test_timer_flush(tmp_path: Path) -> None:
    with open_engine(tmp_path, memtable_flush_interval_in_ms=1000) as engine:
        engine.insert_record("root.sg.d", 1, ["s"], [1.0])
        assert wait_until(engine.file_levels, 10), "the memtable was not flushed by its timer"
        assert engine.query("root.sg.d.s").values.tolist() == [1.0]


def test_size_threshold_flush_in_background(tmp_path: Path) -> None:
    # Each round writes past the 1 MiB threshold, then waits for the flush thread to write a file on its
    # own: waiting per round keeps a slow flush thread from sealing several rounds into one file.
    with open_engine(tmp_path, memtable_size_threshold=1024 * 1024, enable_compaction=False) as engine:
        for round_ in range(3):
            for i in range(round_ * 3, round_ * 3 + 3):
                stamps = np.arange(i * 50_000, (i + 1) * 50_000)
                engine.insert_tablet("root.sg.d", stamps, ["s"], [stamps * 2.0])
            assert wait_until(lambda: len(engine.file_levels()) >= round_ + 1, 30), (  # noqa: B023
                f"no background flush after round {round_}"
            )
        result = engine.query("root.sg.d.s")
        assert len(result) == 450_000 and bool(np.all(result.values == result.timestamps * 2.0))


def test_disabled_wal_still_flushes_on_close(tmp_path: Path) -> None:
    with open_engine(tmp_path, wal_mode="DISABLE") as engine:
        write_sample(engine)
        assert not list((tmp_path / "wal").glob("*.wal"))
    with open_engine(tmp_path) as engine:
        check_sample(engine)


def test_corrupt_wal_record_stops_open_unless_skipped(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with open_engine(live) as engine:
        for t in range(3):
            engine.insert_record("root.sg.d", t, ["s"], [float(t)])
        shutil.copytree(live, crashed)
    [segment] = [p for p in (crashed / "wal").glob("*.wal") if p.stat().st_size]
    data = bytearray(segment.read_bytes())  # a live segment: the records, then space allocated ahead
    record = HEADER_SIZE + int.from_bytes(data[:4], "little")  # three records of this size
    data[record + 20] ^= 0xFF  # inside the second record
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="wal_skip_corrupt_records=true"):
        open_engine(crashed)
    with open_engine(crashed, wal_skip_corrupt_records=True) as engine:
        assert engine.query("root.sg.d.s").timestamps.tolist() == [0, 2]
