"""Query-layer benchmark (not collected by pytest): ``python bench/sql_bench.py [points]``.

Measures ``SELECT COUNT(s1), AVG(s1) ... GROUP BY ([t0, t1), 1h)`` over one series of ``points`` points
(default 10,000,000, one per second, flushed to a TsFile), split into the engine's read and the query
layer's own work, and ``SELECT LAST *`` over 10,000 series.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from iotdb_core.config import default_settings
from iotdb_core.query import execute
from iotdb_core.storage import Engine


def best(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory() as directory:
        engine = Engine.open(directory, default_settings().replace(memtable_memory_budget_in_byte=2**31))
        try:
            stamps = np.arange(points, dtype=np.int64) * 1000
            values = np.random.default_rng(7).normal(20.0, 5.0, points)
            chunk = 1_000_000
            for start in range(0, points, chunk):
                part = slice(start, start + chunk)
                engine.insert_tablet("root.bench.d1", stamps[part], ["s1"], [values[part]])
            engine.flush()
            end = int(stamps[-1]) + 1
            sql = f"SELECT COUNT(s1), AVG(s1) FROM root.bench.d1 GROUP BY ([0, {end}), 1h)"
            read = best(lambda: engine.query("root.bench.d1.s1"))
            total = best(lambda: execute(engine, sql))
            result = execute(engine, sql)
            assert sum(result.column(0)) == points
            print(f"GROUP BY over {points:,} points: {total * 1000:.0f} ms total, engine read {read * 1000:.0f} ms, "
                  f"query layer {(total - read) * 1000:.0f} ms, {len(result)} windows")
            for series in range(10_000):
                engine.insert_record(f"root.last.d{series // 10}", series, [f"s{series % 10}"], [float(series)])
            last = best(lambda: execute(engine, "SELECT LAST * FROM root.last.**"), repeat=5)
            assert len(execute(engine, "SELECT LAST * FROM root.last.**")) == 10_000
            print(f"LAST over 10,000 series: {last * 1000:.1f} ms")
        finally:
            engine.close()


if __name__ == "__main__":
    main()
