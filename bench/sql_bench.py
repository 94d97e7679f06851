"""Query-layer benchmark (not collected by pytest): ``python bench/sql_bench.py [points]``.

Measures ``SELECT COUNT(s1), AVG(s1) FROM root.bench.d1 GROUP BY ([t0, t1), 1h)`` over one series of ``points``
points (default 10,000,000) flushed into TsFiles in several layouts, with statistics pushdown (``Engine.scan``)
and on the point path (the same engine with ``scan`` hidden), showing how many statistics segments were used;
then ``SELECT LAST *`` over 10,000 series. Compaction is off so that the file layout stays as written.

Layouts: one point per second flushed every 1M points (10 files of ~278 h: every file spans many windows, so
all are read as points); 100 points per second flushed on the hour (28 files, each inside one window); and
100 points per second flushed every 1M points (files of ~2.8 h: all cut) or every 100k points (files of
~17 min: most lie inside a window, those holding an hour boundary are read as points).
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from iotdb_core.config import default_settings
from iotdb_core.query import ExecutionStats, execute
from iotdb_core.storage import Engine

HOUR_MS = 3_600_000


class PointsOnly:
    """The engine without ``scan``: the executor reads points (the path before statistics pushdown)."""

    scan = None

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def best(function: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def load(engine: Engine, points: int, period_ms: int, cuts: list[int]) -> int:
    """Write ``points`` points ``period_ms`` apart, flushing at each index in ``cuts``; return the end time."""
    stamps = np.arange(points, dtype=np.int64) * period_ms
    values = np.random.default_rng(7).normal(20.0, 5.0, points)
    bounds = [0, *cuts, points]
    for start, stop in itertools.pairwise(bounds):
        for chunk in range(start, stop, 1_000_000):
            part = slice(chunk, min(chunk + 1_000_000, stop))
            engine.insert_tablet("root.bench.d1", stamps[part], ["s1"], [values[part]])
        engine.flush()
    return int(stamps[-1]) + 1


def group_by(points: int, name: str, period_ms: int, cuts: list[int]) -> None:
    settings = default_settings().replace(
        memtable_memory_budget_in_byte=2**31, enable_compaction=False, wal_mode="DISABLE"
    )
    with tempfile.TemporaryDirectory() as directory, Engine.open(directory, settings) as engine:
        end = load(engine, points, period_ms, cuts)
        files = len(engine.file_levels())
        sql = f"SELECT COUNT(s1), AVG(s1) FROM root.bench.d1 GROUP BY ([0, {end}), 1h)"
        stats = ExecutionStats()
        result = execute(engine, sql, stats=stats)
        assert sum(result.column(0)) == points
        expected = execute(PointsOnly(engine), sql)
        assert np.allclose(result.values[1], expected.values[1], rtol=1e-9, equal_nan=True)
        pushdown = best(lambda: execute(engine, sql))
        plain = best(lambda: execute(PointsOnly(engine), sql))
        print(
            f"{name}: {files} files, {len(result)} windows: pushdown {pushdown * 1000:.1f} ms "
            f"({stats.stats_segments} statistics segments, {stats.expanded_segments} read as points, "
            f"{stats.points:,} points), point path {plain * 1000:.0f} ms"
        )


def main() -> None:
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    print(f"SELECT COUNT(s1), AVG(s1) FROM root.bench.d1 GROUP BY ([t0, t1), 1h) over {points:,} points")
    every = list(range(1_000_000, points, 1_000_000))
    group_by(points, "1 s period, flushed every 1M points", 1000, every)
    per_hour = HOUR_MS // 10
    group_by(points, "100 Hz, flushed on the hour (aligned)", 10, list(range(per_hour, points, per_hour)))
    group_by(points, "100 Hz, flushed every 1M points", 10, every)
    group_by(points, "100 Hz, flushed every 100k points", 10, list(range(100_000, points, 100_000)))

    with tempfile.TemporaryDirectory() as directory, Engine.open(directory, default_settings()) as engine:
        for series in range(10_000):
            engine.insert_record(f"root.last.d{series // 10}", series, [f"s{series % 10}"], [float(series)])
        last = best(lambda: execute(engine, "SELECT LAST * FROM root.last.**"), repeat=5)
        assert len(execute(engine, "SELECT LAST * FROM root.last.**")) == 10_000
        print(f"LAST over 10,000 series: {last * 1000:.1f} ms")


if __name__ == "__main__":
    main()
