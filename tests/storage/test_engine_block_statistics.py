"""Block statistics: a sidecar per TsFile, written at flush and compaction, removed with its file, used by scan()."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_statistics import kinds, open_engine, same, totals_of_points, totals_of_segments

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine, Segment, StatsSegment, blockstats
from iotdb_core.storage.manifest import SEQUENCE_DIR


@pytest.fixture(autouse=True)
def small_blocks() -> Iterator[None]:
    """Blocks of 10 points on average, so that small files get several 1 s blocks."""
    saved = blockstats.MIN_BLOCK_POINTS
    blockstats.MIN_BLOCK_POINTS = 10
    yield
    blockstats.MIN_BLOCK_POINTS = saved


def sequence_files(root: Path) -> tuple[set[str], set[str]]:
    names = {path.name for path in (root / SEQUENCE_DIR).iterdir()}
    sidecars = {name[: -len(blockstats.SUFFIX)] for name in names if name.endswith(blockstats.SUFFIX)}
    return names - {n + blockstats.SUFFIX for n in sidecars}, sidecars


def check(
    engine: Engine, path: str, start: int | None = None, end: int | None = None, bounds: Any = None
) -> list[Segment]:
    result = engine.query(path, start, end)
    segments = engine.scan(path, start, end, bounds=bounds)
    for earlier, later in itertools.pairwise(segments):
        assert earlier.end_time < later.start_time, "segments overlap or are out of order"
    if start is not None or end is not None:
        for segment in segments:
            assert (start is None or segment.start_time >= start) and (end is None or segment.end_time <= end)
    assert result.data_type is not None
    expected = totals_of_points(result.timestamps, result.values, result.data_type)
    actual = totals_of_segments(segments, result.data_type)
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        if isinstance(value, tuple):
            assert value[0] == actual[name][0], name
            assert same(float(value[1]), float(actual[name][1])), name
        else:
            assert same(value, actual[name]), (name, value, actual[name])
    return segments


def write(engine: Engine, path: str, stamps: np.ndarray, values: np.ndarray, data_type: TSDataType) -> None:
    device, measurement = path.rsplit(".", 1)
    assert engine.insert_tablet(device, stamps, [measurement], [values], [data_type]).ok
    engine.flush()


def test_compute_aligns_blocks_to_the_ladder() -> None:
    stamps = np.arange(500, 10_500, 10, dtype=np.int64)  # 100 points a second
    found = blockstats.compute(stamps, stamps.astype(np.float64), TSDataType.DOUBLE)
    assert found is not None and found.duration == 1_000
    assert found.start_time.tolist()[:2] == [500, 1_000] and found.count.tolist()[:2] == [50, 100]
    assert int(found.count.sum()) == len(stamps) and found.usable.all()
    coarse = blockstats.compute(stamps * 1_000, stamps, TSDataType.INT64, "us")
    assert coarse is not None and coarse.duration == 1_000_000
    assert blockstats.compute(stamps[:5], stamps[:5], TSDataType.INT64) is None  # too few points
    assert blockstats.compute(stamps, stamps.astype(str), TSDataType.TEXT) is None


def test_sidecar_written_at_flush_and_compaction_and_removed_with_its_file(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        stamps = np.arange(0, 5_000, 10, dtype=np.int64)
        write(engine, "root.sg.d.s", stamps, stamps * 0.5, TSDataType.DOUBLE)
        write(engine, "root.sg.d.s", stamps + 5_000, stamps * 0.5, TSDataType.DOUBLE)
        files, sidecars = sequence_files(tmp_path)
        assert len(files) == 2 and sidecars == files
        assert engine.compact() == 1
        files, sidecars = sequence_files(tmp_path)
        assert len(files) == 1 and sidecars == files
        check(engine, "root.sg.d.s", 1_234, 8_765, bounds=[3_000, 6_000])
    with open_engine(tmp_path) as engine:  # recovery keeps the sidecars of live files
        assert sequence_files(tmp_path)[1] == sequence_files(tmp_path)[0]
        engine.set_ttl("root.sg.**", 1)  # every point expired: the file and its sidecar go
        engine.compact()
        assert sequence_files(tmp_path) == (set(), set())


def test_blocks_answer_files_that_bounds_cut(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        stamps = np.arange(0, 10_000, 10, dtype=np.int64)
        write(engine, "root.sg.d.s", stamps, np.sin(stamps / 300.0), TSDataType.DOUBLE)
        assert kinds(check(engine, "root.sg.d.s")) == ["S"]  # nothing cuts it: the file's statistics
        segments = check(engine, "root.sg.d.s", bounds=[0, 5_000, 10_000])
        assert kinds(segments) == ["S"] * 10 and [s.start_time for s in segments] == list(range(0, 10_000, 1_000))
        segments = check(engine, "root.sg.d.s", 250, 7_490)  # the range's ends cut blocks 0 and 7
        assert kinds(segments) == ["P"] + ["S"] * 6 + ["P"]
        check(engine, "root.sg.d.s", 250, 7_490, bounds=np.arange(0, 10_000, 700))


def test_nan_blocks_are_read_as_points(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        stamps = np.arange(0, 5_000, 10, dtype=np.int64)
        values = stamps * 1.0
        values[[120, 130, 410]] = np.nan  # blocks 1 and 4
        write(engine, "root.sg.d.s", stamps, values, TSDataType.DOUBLE)
        segments = engine.scan("root.sg.d.s")
        assert kinds(segments) == ["S", "P", "S", "S", "P"]
        assert np.isnan(segments[1].values).sum() == 2  # type: ignore[union-attr]
        assert sum(s.count for s in segments) == len(stamps)
        assert all(not np.isnan(s.sum) for s in segments if isinstance(s, StatsSegment))


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "wrong version"])
def test_missing_or_corrupt_sidecar_falls_back(tmp_path: Path, damage: str) -> None:
    with open_engine(tmp_path) as engine:
        stamps = np.arange(0, 5_000, 10, dtype=np.int64)
        write(engine, "root.sg.d.s", stamps, stamps * 2, TSDataType.INT64)
        assert kinds(check(engine, "root.sg.d.s", bounds=[2_500])) == ["S"] * 5
    (name,) = sequence_files(tmp_path)[0]
    sidecar = tmp_path / SEQUENCE_DIR / (name + blockstats.SUFFIX)
    data = sidecar.read_bytes()
    if damage == "missing":
        sidecar.unlink()
    elif damage == "garbage":
        sidecar.write_bytes(b"\x00garbage" * 50)
    elif damage == "truncated":
        sidecar.write_bytes(data[: len(data) // 2])
    else:
        sidecar.write_bytes(blockstats.MAGIC + b"\x63\x00\x00\x00" + data[12:])
    with open_engine(tmp_path) as engine:
        assert kinds(check(engine, "root.sg.d.s", bounds=[2_500])) == ["S"]  # the file's statistics
        assert kinds(check(engine, "root.sg.d.s", 100, 4_000)) == ["P"]


TYPES = [TSDataType.DOUBLE, TSDataType.FLOAT, TSDataType.INT64, TSDataType.INT32, TSDataType.BOOLEAN]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[TSDataType, list[tuple[np.ndarray, np.ndarray]], list[tuple[Any, ...]]]:
    data_type = draw(st.sampled_from(TYPES))
    files = []
    after = 0  # files mostly follow one another; some overlap
    for _ in range(draw(st.integers(1, 3))):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        count = draw(st.integers(1, 400))
        gaps = rng.integers(1, draw(st.integers(1, 60)) + 1, count)
        stamps = max(0, after + draw(st.integers(-2_000, 3_000))) + np.cumsum(gaps)
        after = int(stamps[-1])
        raw = rng.integers(-1000, 1000, count)
        if data_type is TSDataType.BOOLEAN:
            values: np.ndarray = raw > 0
        elif data_type in (TSDataType.FLOAT, TSDataType.DOUBLE):
            values = raw / 7.0
            values[rng.integers(0, count, draw(st.integers(0, 2)))] = np.nan
        else:
            values = raw
        files.append((stamps.astype(np.int64), values))
    edge = st.one_of(st.none(), st.integers(-100, 30_000))
    queries = draw(
        st.lists(
            st.tuples(edge, edge, st.one_of(st.none(), st.lists(st.integers(0, 30_000), max_size=8))),
            min_size=1,
            max_size=6,
        )
    )
    return data_type, files, queries


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(layouts())
def test_scan_with_blocks_equals_query(layout: tuple[TSDataType, list, list]) -> None:
    data_type, files, queries = layout
    directory = Path(tempfile.mkdtemp())
    try:
        with open_engine(directory) as engine:
            for stamps, values in files:
                write(engine, "root.sg.d.s", stamps, values, data_type)
            for start, end, bounds in queries:
                check(engine, "root.sg.d.s", start, end, bounds)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
