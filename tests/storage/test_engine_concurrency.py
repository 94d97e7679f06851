"""Several writer threads and readers at once, with flushes and compactions running."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from iotdb_core.config import default_settings
from iotdb_core.formatter import Row
from iotdb_core.storage import Engine

WRITERS = 4
RECORDS = 1500


def test_writers_and_readers(tmp_path: Path) -> None:
    settings = default_settings().replace(
        memtable_size_threshold=1024 * 1024,
        compaction_files_per_level=2,
        wal_sync_mode_fsync_delay_in_ms=0.5,
    )
    errors: list[BaseException] = []
    stop = threading.Event()
    with Engine.open(tmp_path, settings) as engine:

        def writer(index: int) -> None:
            device = f"root.sg.w{index}"
            try:
                for i in range(RECORDS):
                    if i % 100 == 0:
                        stamps = np.arange(1_000_000 + i * 100, 1_000_000 + (i + 1) * 100)
                        assert engine.insert_tablet(device, stamps, ["bulk"], [stamps * 1.0]).ok
                    if i % 3 == 0:
                        rows = [
                            Row(device, i, ("a", "b"), (float(i), i)),
                            Row("root.sg.shared", i * WRITERS + index, ("v",), (float(index),)),
                        ]
                        assert engine.write_rows(rows).ok
                    else:
                        assert engine.insert_record(device, i, ["a", "b"], [float(i), i]).ok
                        assert engine.insert_record("root.sg.shared", i * WRITERS + index, ["v"], [float(index)]).ok
                    if index == 0 and i % 500 == 499:
                        engine.flush()
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            seen = 0
            try:
                while not stop.is_set():
                    result = engine.query("root.sg.shared.v")
                    stamps = result.timestamps
                    assert bool(np.all(stamps[1:] > stamps[:-1]))
                    assert len(stamps) >= seen
                    seen = len(stamps)
                    for index in range(WRITERS):
                        last = engine.last(f"root.sg.w{index}.a")
                        if last is not None:
                            assert last[1] == float(last[0]) or last[0] >= 1_000_000
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for thread in threads + readers:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
        assert errors == []
        shared = engine.query("root.sg.shared.v")
        assert shared.timestamps.tolist() == list(range(RECORDS * WRITERS))
        assert shared.values.tolist() == [float(t % WRITERS) for t in range(RECORDS * WRITERS)]
        for index in range(WRITERS):
            assert engine.query(f"root.sg.w{index}.a").timestamps.tolist()[:RECORDS] == list(range(RECORDS))
            assert len(engine.query(f"root.sg.w{index}.bulk")) == 100 * (RECORDS // 100)
            newest = 1_000_000 + (RECORDS - 100) * 100 + 99
            assert engine.last(f"root.sg.w{index}.bulk") == (newest, float(newest))
    with Engine.open(tmp_path, settings) as engine:
        assert len(engine.query("root.sg.shared.v")) == RECORDS * WRITERS
