"""Large reads: several TsFiles decoded on several threads, pieces of one file on several native readers, and
the points joined without a merge; checked against the points written, on real files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine
from iotdb_core.storage.tsfile_io import MAX_NATIVE_READERS, SeriesData, TsFileSource, write_tsfile

SERIES = "root.big.d.v"


def open_engine(path: Path) -> Engine:
    return Engine.open(path, default_settings().replace(enable_compaction=False, wal_mode="DISABLE"))


@pytest.fixture
def written(tmp_path: Path) -> tuple[Engine, np.ndarray, np.ndarray]:
    """900,000 points in a TsFile of 600,000, two of 100,000 and a memtable of 100,000."""
    rng = np.random.default_rng(5)
    stamps = np.arange(900_000, dtype=np.int64) * 7
    values = np.round(rng.standard_normal(900_000).cumsum(), 2)
    engine = open_engine(tmp_path)
    for a, b in ((0, 600_000), (600_000, 700_000), (700_000, 800_000), (800_000, 900_000)):
        engine.insert_tablet("root.big.d", stamps[a:b], ["v"], [values[a:b]])
        if b < 900_000:
            engine.flush()
    yield engine, stamps, values
    engine.close()


def test_a_large_read_of_several_files_and_a_memtable_has_every_point_once(written: tuple) -> None:
    engine, stamps, values = written
    found = engine.query(SERIES)
    assert np.array_equal(found.timestamps, stamps) and np.array_equal(found.values, values)
    assert found.timestamps.flags.writeable and found.values.flags.writeable
    low, high = 123_457, 5_876_543  # cut inside the first file and inside the memtable
    found = engine.query(SERIES, low, high)
    inside = (stamps >= low) & (stamps <= high)
    assert np.array_equal(found.timestamps, stamps[inside]) and np.array_equal(found.values, values[inside])


def test_deleted_ranges_are_left_out_of_a_large_read(written: tuple) -> None:
    engine, stamps, values = written
    engine.delete(SERIES, 700_000, 1_400_000)  # inside the first file
    engine.delete(SERIES, 4_199_993, 4_900_006)  # across the second and third files
    found = engine.query(SERIES)
    kept = ~(((stamps >= 700_000) & (stamps <= 1_400_000)) | ((stamps >= 4_199_993) & (stamps <= 4_900_006)))
    assert np.array_equal(found.timestamps, stamps[kept]) and np.array_equal(found.values, values[kept])


def test_overlapping_sources_are_still_merged_newest_wins(written: tuple) -> None:
    engine, stamps, values = written
    again = stamps[::1000]  # rewrite points of every source, newer values win
    engine.insert_tablet("root.big.d", again, ["v"], [np.full(len(again), -1.0)])
    engine.flush()
    expected = values.copy()
    expected[::1000] = -1.0
    found = engine.query(SERIES)
    assert np.array_equal(found.timestamps, stamps) and np.array_equal(found.values, expected)


def test_concurrent_reads_of_one_file_open_more_native_readers_and_agree(tmp_path: Path) -> None:
    stamps = np.arange(400_000, dtype=np.int64)
    values = np.sin(stamps / 1000.0)
    path = tmp_path / "one.tsfile"
    write_tsfile(path, [SeriesData.of("root.x.d", "s", TSDataType.DOUBLE, stamps, values)])
    results: list[tuple[np.ndarray, np.ndarray]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(MAX_NATIVE_READERS + 2)
    with TsFileSource(path) as source:

        def read(low: int) -> None:
            try:
                start.wait()
                for _ in range(3):
                    found = source.read("root.x.d", "s", low, low + 199_999)
                    assert isinstance(found[1], np.ndarray)
                    results.append((found[0], found[1]))
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=read, args=(i * 50_000,)) for i in range(MAX_NATIVE_READERS + 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        assert 1 <= len(source._natives) <= MAX_NATIVE_READERS  # the native readers it opened
    assert source.closed
    assert len(results) == 3 * (MAX_NATIVE_READERS + 2)
    for timestamps, found in results:
        assert len(timestamps) == 200_000 and np.array_equal(found, values[timestamps])
    with pytest.raises(ValueError, match="closed"):
        source.read("root.x.d", "s")
