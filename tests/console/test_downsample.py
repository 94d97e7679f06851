"""Downsampling from block statistics against exact answers, on a real engine (TsFiles and a memtable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iotdb_core.console.downsample import block_windows
from iotdb_core.storage import Engine


def test_windows_cover_every_point_once_with_the_true_extremes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = np.round(rng.standard_normal(300_000).cumsum(), 2)
    stamps = np.arange(0, 300_000 * 10, 10, dtype=np.int64)
    with Engine.open(tmp_path) as engine:
        for part in range(3):  # two TsFiles and a memtable
            chunk = slice(part * 100_000, (part + 1) * 100_000)
            engine.insert_tablet("root.ds.d", stamps[chunk], ["v"], [values[chunk]])
            if part < 2:
                engine.flush()
        interval, windows = block_windows(engine, "root.ds.d.v", 0, int(stamps[-1]), 500)
    assert interval == 6000
    assert int(windows.count.sum()) == 300_000
    assert windows.min.min() == values.min() and windows.max.max() == values.max()
    assert np.isclose((windows.mean * windows.count).sum(), values.sum())
    assert np.all(np.diff(windows.starts) > 0) and np.all(windows.starts % interval == 0)
    assert windows.blocks > 100  # the files were described by their blocks, not read
    assert windows.points_read < 110_000  # the memtable, and a block per file at most
    # A block goes to the window of its first point: a window's points are in it or in the window before.
    for index in range(1, len(windows.starts)):
        start = windows.starts[index]
        inside = values[(stamps >= start) & (stamps < start + interval)]
        assert min(windows.min[index - 1:index + 1]) <= inside.min()
        assert max(windows.max[index - 1:index + 1]) >= inside.max()


def test_an_empty_range_has_no_windows(tmp_path: Path) -> None:
    with Engine.open(tmp_path) as engine:
        engine.insert_tablet("root.ds.e", np.array([5], dtype=np.int64), ["v"], [np.array([1.0])])
        _, windows = block_windows(engine, "root.ds.e.v", 10, 20, 10)
    assert len(windows.starts) == 0 and windows.blocks == 0
