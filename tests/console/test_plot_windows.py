"""The explorer's plot windows: an exact GROUP BY on a grid aligned to the TsFiles' block statistics, checked
against the points themselves on a real engine (TsFiles with block statistics and a memtable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iotdb_core.auth import UserStore
from iotdb_core.console.explorer import PlotRequest, plot, plot_grid
from iotdb_core.storage import Engine
from iotdb_core.storage.blockstats import ladder

SERIES = "root.ds.d.v"


@pytest.fixture
def walk(tmp_path: Path) -> tuple[Engine, UserStore, np.ndarray, np.ndarray]:
    """300,000 points 10 ms apart (blocks of 10 s hold 1,000): two TsFiles and a memtable."""
    rng = np.random.default_rng(3)
    values = np.round(rng.standard_normal(300_000).cumsum(), 2)
    stamps = np.arange(0, 300_000 * 10, 10, dtype=np.int64)
    engine = Engine.open(tmp_path / "data")
    for part in range(3):
        chunk = slice(part * 100_000, (part + 1) * 100_000)
        engine.insert_tablet("root.ds.d", stamps[chunk], ["v"], [values[chunk]])
        if part < 2:
            engine.flush()
    yield engine, UserStore.open(tmp_path / "data"), stamps, values
    engine.close()


def expected_windows(stamps: np.ndarray, values: np.ndarray, starts: list[int], interval: int) -> dict[str, Any]:
    counts, lows, highs, means = [], [], [], []
    for start in starts:
        inside = values[(stamps >= start) & (stamps < start + interval)]
        counts.append(len(inside))
        lows.append(inside.min())
        highs.append(inside.max())
        means.append(inside.mean())
    return {"counts": counts, "min": lows, "max": highs, "mean": means}


def test_windows_are_exact_and_answered_from_block_statistics(walk: Any) -> None:
    engine, users, stamps, values = walk
    body = plot(engine, engine.settings, PlotRequest(SERIES, None, None, 200), users.session("root"))
    assert body["mode"] == "windows" and body["count"] == 300_000
    interval = body["interval"]
    assert interval == 20_000 and len(body["timestamps"]) == 150  # 15 s asked for; aligned to the 10 s blocks
    assert all(start % interval == 0 for start in body["timestamps"])
    expected = expected_windows(stamps, values, body["timestamps"], interval)
    assert body["counts"] == expected["counts"] and sum(body["counts"]) == 300_000
    assert body["min"] == expected["min"] and body["max"] == expected["max"]
    assert np.allclose(body["mean"], expected["mean"], rtol=0, atol=1e-9)
    assert body["blocks"] == 200  # every block of both files from its statistics
    assert body["points_read"] == 100_000  # the memtable only


def test_a_range_cut_inside_blocks_holds_only_its_points(walk: Any) -> None:
    engine, users, stamps, values = walk
    start, end = 123_455, 2_345_675  # inside blocks at both ends, the end in the memtable
    body = plot(engine, engine.settings, PlotRequest(SERIES, start, end, 100), users.session("root"))
    inside = (stamps >= start) & (stamps <= end)
    assert body["count"] == int(inside.sum()) and body["first"] == 123_460 and body["last"] == 2_345_670
    interval = body["interval"]
    assert body["timestamps"][0] <= body["first"] < body["timestamps"][0] + interval
    expected = expected_windows(stamps[inside], values[inside], body["timestamps"], interval)
    assert body["counts"] == expected["counts"] and body["min"] == expected["min"]
    assert body["max"] == expected["max"] and np.allclose(body["mean"], expected["mean"], rtol=0, atol=1e-9)
    assert body["blocks"] > 150 and body["points_read"] < 70_000  # the memtable's part and the two end blocks


def test_an_empty_range_has_no_windows(walk: Any) -> None:
    engine, users, _, _ = walk
    body = plot(engine, engine.settings, PlotRequest(SERIES, 3_000_001, 4_000_000, 10), users.session("root"))
    assert body["mode"] == "raw" and body["count"] == 0 and body["timestamps"] == []


@pytest.mark.parametrize(("first", "last", "count", "windows"), [
    (0, 99_999_999, 100_000_000, 912), (17, 123_456_789, 1_000_000, 1000), (-5_000_000, 5_000_000, 10_000, 700),
    (5, 1_004, 1_000, 100), (1_750_000_000_123, 1_750_086_400_000, 86_400, 1200), (0, 10, 11, 4000),
    (0, 2_999_990, 300_000, 500), (0, 2_999_990, 300_000, 200),
])
def test_the_grid_covers_the_range_in_at_most_the_windows_asked_for(first: int, last: int, count: int,
                                                                    windows: int) -> None:
    start, interval = plot_grid(first, last, count, windows)
    assert start <= first and start + windows * interval > last and interval >= 1
    assert -(-(last - start + 1) // interval) <= windows
    span = last - first + 1
    # The blocks of evenly spread points: the shortest duration holding 1,000 of them on average.
    blocks = next((d for d in ladder("ms") if d * count >= 1000 * span), ladder("ms")[-1])
    if blocks <= -(-span // windows):  # windows at least as long as the blocks: aligned to them
        assert start % blocks == 0 and interval % blocks == 0
    else:
        assert (start, interval) == (first, -(-span // windows))


def test_the_grid_keeps_nearly_every_window_asked_for() -> None:
    assert plot_grid(0, 99_999_999, 100_000_000, 912) == (0, 110_000)  # 910 windows of 1 min 50 s (1 s blocks)
    assert plot_grid(0, 99_999_999, 100_000_000, 1000) == (0, 100_000)
    # A day at 1 point a second has blocks of an hour, longer than a window: not aligned (86,400 points read).
    assert plot_grid(1_750_000_000_123, 1_750_086_400_000, 86_400, 1200) == (1_750_000_000_123, 72_000)
    assert plot_grid(0, 2_999_990, 300_000, 200) == (0, 20_000)  # 10 s blocks: 15 s windows would cut them
