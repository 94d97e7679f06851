"""Compaction: size-tiered merging, newest-wins, atomic swap and deferred deletion of inputs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from iotdb_core.config import default_settings
from iotdb_core.storage import Engine
from iotdb_core.storage.manifest import read_manifest
from iotdb_core.testing.waiting import wait_until


def open_engine(path: Path, **changes: Any) -> Engine:
    return Engine.open(path, default_settings().replace(**changes))


def flush_round(engine: Engine, round_no: int) -> None:
    """Each round overwrites the even timestamps 0..98 and adds 100 new ones."""
    engine.insert_tablet("root.sg.d", np.arange(0, 100, 2), ["s"], [np.full(50, float(round_no))])
    stamps = np.arange(1000 * (round_no + 1), 1000 * (round_no + 1) + 100)
    engine.insert_tablet("root.sg.d", stamps, ["s", "k"], [np.full(100, float(round_no)), [f"r{round_no}"] * 100])
    engine.flush()


def test_levels_merge_newest_wins(tmp_path: Path) -> None:
    with open_engine(tmp_path, enable_compaction=False, compaction_files_per_level=2) as engine:
        for round_no in range(5):
            flush_round(engine, round_no)
        assert [level for _, level in engine.file_levels()] == [0] * 5
        assert engine.compact() == 3  # 4 L0 -> 2 L1 -> 1 L2
        assert engine.file_levels() == [("000000000004-L2.tsfile", 2), ("000000000005-L0.tsfile", 0)]
        assert sorted(p.name for p in (tmp_path / "sequence").iterdir()) == [
            "000000000004-L2.tsfile",
            "000000000005-L0.tsfile",
        ]
        result = engine.query("root.sg.d.s")
        assert len(result) == 50 + 500
        assert set(result.values[:50].tolist()) == {4.0}
        assert engine.query("root.sg.d.k", 3000, 3099).values.tolist() == ["r2"] * 100
        entries = {e.name: e for e in read_manifest(tmp_path).files}
        assert entries["000000000004-L2.tsfile"].min_version == 1
        assert entries["000000000004-L2.tsfile"].points == 50 + 400 + 400
    with open_engine(tmp_path) as engine:
        assert len(engine.query("root.sg.d.s")) == 550
        assert engine.last("root.sg.d.s") == (5099, 4.0)


def test_inputs_outlive_readers(tmp_path: Path) -> None:
    with open_engine(tmp_path, enable_compaction=False, compaction_files_per_level=2) as engine:
        flush_round(engine, 0)
        flush_round(engine, 1)
        with engine.state.versions.pinned() as version:
            engine.compact()
            names = sorted(p.name for p in (tmp_path / "sequence").iterdir())
            assert names == ["000000000001-L0.tsfile", "000000000002-L0.tsfile", "000000000002-L1.tsfile"]
            data_type = engine.query("root.sg.d.s").data_type
            old = [table.read(("root.sg.d", "s"), data_type, 0, 99) for table in version.files]
            assert all(run is not None for run in old)
        assert sorted(p.name for p in (tmp_path / "sequence").iterdir()) == ["000000000002-L1.tsfile"]


def test_background_compaction_with_concurrent_reads(tmp_path: Path) -> None:
    with open_engine(tmp_path, compaction_files_per_level=2) as engine:
        expected_rounds = 8
        stop = threading.Event()
        errors: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                result = engine.query("root.sg.d.s")
                stamps = result.timestamps
                if len(stamps) and not bool(np.all(stamps[1:] > stamps[:-1])):
                    errors.append("duplicate or unordered timestamps")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for round_no in range(expected_rounds):
                flush_round(engine, round_no)
            assert wait_until(lambda: len(engine.file_levels()) <= 1, 20), engine.file_levels()
        finally:
            stop.set()
            thread.join()
        assert errors == []
        assert engine.file_levels() == [("000000000008-L3.tsfile", 3)]
        result = engine.query("root.sg.d.s")
        assert len(result) == 50 + 100 * expected_rounds
        assert set(result.values[:50].tolist()) == {7.0}
