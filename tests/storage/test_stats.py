"""``Engine.stats()``: the snapshot of memtables, WAL, TsFiles per level, flushes and compactions, health and disk,
checked against the engine's own files and counters on a real data directory."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from iotdb_core import hookimpl
from iotdb_core.backend import SupportsStats
from iotdb_core.config import default_settings
from iotdb_core.hookspecs import FlushInfo
from iotdb_core.plugin_manager import create_plugin_manager
from iotdb_core.storage import Engine


def test_a_fresh_engine_reports_nothing_held(tmp_path: Path) -> None:
    with Engine.open(tmp_path) as engine:
        assert isinstance(engine, SupportsStats)
        stats = engine.stats()
    assert (stats.memtable_bytes, stats.memtable_points, stats.sealed_memtables) == (0, 0, 0)
    assert (stats.wal_bytes, stats.wal_segments, stats.levels, stats.tsfiles) == (0, 1, (), 0)
    assert stats.flushes.completed == stats.compactions.completed == 0
    assert stats.flushes.running == stats.compactions.running == 0
    assert stats.writable and stats.read_only_reason == ""
    assert stats.memtable_budget_bytes == default_settings().memtable_memory_budget_in_byte
    assert 0 < stats.disk_free_bytes <= stats.disk_total_bytes


def test_writes_flushes_and_compactions_move_the_figures(tmp_path: Path) -> None:
    with Engine.open(tmp_path, default_settings().replace(compaction_files_per_level=2)) as engine:
        with engine.hold_background():  # nothing flushes or merges behind the test's back
            engine.insert_records(["root.sg.d1"] * 3, [1, 2, 3], [["a", "b"]] * 3, [[1.0, 2]] * 3)
            held = engine.stats()
            assert held.memtable_points == 6 and held.memtable_bytes > 0
            assert held.wal_bytes == engine.state.wal.stats().bytes_written > 0  # what was logged, not allocated
        engine.flush()
        flushed = engine.stats()
        assert (flushed.memtable_points, flushed.memtable_bytes) == (0, 0)
        assert flushed.flushes.completed == 1 and flushed.flushes.durations.total > 0
        assert flushed.wal_bytes == 0  # the flushed records were released
        [level] = flushed.levels
        sequence = tmp_path / "sequence"
        assert (level.level, level.files, level.points) == (0, 1, 6)
        assert level.bytes == sum(path.stat().st_size for path in sequence.glob("*.tsfile"))

        engine.insert_records(["root.sg.d1"], [4], [["a"]], [[4.0]])
        engine.flush()
        assert engine.compact() == 1
        merged = engine.stats()
    assert merged.flushes.completed == 2
    assert merged.compactions.completed == 1 and merged.compactions.durations.count == 1
    assert merged.compactions.durations.buckets[-1] == (float("inf"), 1)
    assert [(level.level, level.files, level.points) for level in merged.levels] == [(1, 1, 7)]
    assert merged.tsfiles == 1 and merged.tsfile_bytes == merged.levels[0].bytes
    assert merged.flushes.failed == merged.compactions.failed == 0


class SlowFlush:
    """Holds every flush inside the engine (its ``iotdb_after_flush`` hook) until released."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.inside.set()
        assert self.release.wait(10)


def test_a_running_flush_is_reported_and_the_snapshot_does_not_wait_for_it(tmp_path: Path) -> None:
    slow = SlowFlush()
    manager = create_plugin_manager(load_entry_points=False, plugins=[slow])
    with Engine.open(tmp_path, default_settings(), manager) as engine:
        engine.insert_records(["root.sg.d1"], [1], [["a"]], [[1.0]])
        flusher = threading.Thread(target=engine.flush)
        flusher.start()
        try:
            assert slow.inside.wait(10)
            began = time.monotonic()
            running = engine.stats()
            assert time.monotonic() - began < 1.0
            assert running.flushes.running == 1 and running.flushes.completed == 0
            time.sleep(0.05)
        finally:
            slow.release.set()
            flusher.join(10)
        done = engine.stats()
    assert done.flushes.running == 0 and done.flushes.completed == 1
    assert done.flushes.durations.total >= 0.05
