"""The storage engine against DuckDB and SQLite on the same data, in one run.

Data: one device, 10 DOUBLE series (``s0`` .. ``s9``) of --rows rows (default 2,000,000), one row per
second (timestamps in ms), each a random walk with 2 decimals (see :func:`tablets`), written in tablets of --tablet rows
(default 10,000). Every system writes durably (iotdb-py ``wal_mode=SYNC``; DuckDB commits each
tablet, which syncs its WAL; SQLite ``journal_mode=WAL``, ``synchronous=FULL``, one transaction per
tablet) and is closed, then reopened for the queries.

Measures, per system:

  ingest      points/s from the first tablet until close returned (flushes and checkpoints included)
  open        time to open the closed database
  group by    ``COUNT`` and ``AVG`` of ``s0`` per hour over all rows: the first query after open, then
              the best of --repeat warm runs (iotdb-py's SQL parser, built once per process, is built
              before the database is opened and its build time reported on its own)
  scan        every (time, value) of ``s0`` as arrays, best of --repeat, in points/s
  bytes/pt    bytes of the whole database directory after close per point (rows x 10)

With --rounds N the systems run N times, alternating, and each figure is the median over the rounds; the
ratio column is the median of the per-round ratios, so a burst of load on a shared machine moves it less.
And, for iotdb-py alone, SYNC ``insert_record`` of 2 DOUBLE values from --threads threads for
--record-seconds against the fdatasync bound this disk sets (``bench/storage_bench.py`` workload b).
Each system runs in its own child process, one after the other.

Usage: python bench/vs_duckdb.py [--rows N] [--rounds N] [--systems iotdb,duckdb,sqlite] [--no-records]
                                [--json out.json]
Needs the ``bench`` extra (``pip install -e '.[bench]'``) for DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.storage_bench import fsync_ceiling, record_ingest  # noqa: E402
from iotdb_core.config import default_settings  # noqa: E402
from iotdb_core.query import execute, parse  # noqa: E402
from iotdb_core.storage import Engine  # noqa: E402

SERIES = [f"s{i}" for i in range(10)]
HOUR_MS = 3_600_000
DEVICE = "root.bench.d1"


def tablets(rows: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(timestamps, values[10, n]) per tablet: random walks with 2 decimals, one row per second.

    A walk moves by normally distributed steps (sigma 0.5) rounded to hundredths and starts at 100; its
    values are whole hundredths divided by 100, as a 2-decimal reading parsed from text is (so a zero is
    ``0.0``, never the ``-0.0`` that rounding a small negative float gives).
    """
    rng = np.random.default_rng(2024)
    level = np.full(len(SERIES), 10_000, dtype=np.int64)
    for start in range(0, rows, size):
        n = min(size, rows - start)
        steps = np.rint(rng.normal(0.0, 50.0, size=(len(SERIES), n))).astype(np.int64)
        hundredths = level[:, None] + np.cumsum(steps, axis=1)
        level = hundredths[:, -1]
        yield np.arange(start, start + n, dtype=np.int64) * 1000, hundredths / 100.0


def directory_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = function()
    return time.perf_counter() - began, out


def best(function: Callable[[], Any], repeat: int) -> float:
    return min(timed(function)[0] for _ in range(repeat))


# ---------------------------------------------------------------------------------------------- iotdb-py


def run_iotdb(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = default_settings().replace(wal_mode="SYNC")
    engine = Engine.open(data_dir, settings)
    for name in SERIES:
        engine.create_timeseries(f"{DEVICE}.{name}", "DOUBLE")
    data = list(tablets(args.rows, args.tablet))
    began = time.perf_counter()
    for stamps, block in data:
        result = engine.insert_tablet(DEVICE, stamps, SERIES, list(block))
        assert result.ok, result.failures[:3]
    engine.close()
    ingest = time.perf_counter() - began
    end = args.rows * 1000
    sql = f"SELECT COUNT(s0), AVG(s0) FROM {DEVICE} GROUP BY ([0, {end}), 1h)"
    # The SQL parser is built once per process (lark grammar analysis), not per database: build it with a
    # statement of the same shape on another path, and report that one-off cost on its own.
    parser_s, _ = timed(lambda: parse("SELECT COUNT(x), AVG(x) FROM root.other.d GROUP BY ([0, 1), 1h)"))
    open_s, engine = timed(lambda: Engine.open(data_dir, settings))
    with engine:
        first, result = timed(lambda: execute(engine, sql))
        assert sum(result.column(0)) == args.rows
        warm = best(lambda: execute(engine, sql), args.repeat)
        scanned = engine.query(f"{DEVICE}.s0")
        assert len(scanned) == args.rows
        scan = best(lambda: engine.query(f"{DEVICE}.s0"), args.repeat)
    out = figures(args, ingest, open_s, first, warm, scan, directory_bytes(data_dir))
    out["parser_build_ms"] = parser_s * 1000
    out["files"] = sorted(p.name for p in data_dir.rglob("*") if p.is_file())
    if args.records:
        out["records"] = records(args, data_dir.parent / "records")
    return out


def records(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    directory.mkdir()
    probe = argparse.Namespace(threads=args.threads, record_seconds=args.record_seconds)
    ceiling = fsync_ceiling(probe, directory)
    sync = record_ingest(probe, directory, "SYNC")
    return {
        "bound_points_per_s": ceiling["bound_points_per_s"],
        "fdatasync_us": ceiling["fdatasync_us"],
        "points_per_s": sync["points_per_s"],
        "records_per_fsync": sync["records_per_fsync"],
        "ratio": sync["points_per_s"] / ceiling["bound_points_per_s"],
    }


# ------------------------------------------------------------------------------------------------ DuckDB


def run_duckdb(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    import duckdb  # noqa: PLC0415  # the optional ``bench`` extra, needed by this child only

    path = str(data_dir / "bench.duckdb")
    data = list(tablets(args.rows, args.tablet))
    columns = ", ".join(f"{name} DOUBLE" for name in SERIES)
    began = time.perf_counter()
    con = duckdb.connect(path)
    con.execute(f"CREATE TABLE points (t BIGINT, {columns})")
    for stamps, block in data:
        tablet = pa.table({"t": stamps, **{name: block[i] for i, name in enumerate(SERIES)}})  # noqa: F841
        con.execute("INSERT INTO points SELECT * FROM tablet")
    con.close()
    ingest = time.perf_counter() - began
    sql = f"SELECT t // {HOUR_MS} AS w, COUNT(s0), AVG(s0) FROM points GROUP BY w ORDER BY w"
    open_s, con = timed(lambda: duckdb.connect(path))
    first, rows = timed(lambda: con.execute(sql).fetchall())
    assert sum(row[1] for row in rows) == args.rows
    warm = best(lambda: con.execute(sql).fetchall(), args.repeat)
    scanned = con.execute("SELECT t, s0 FROM points").fetchnumpy()
    assert len(scanned["t"]) == args.rows
    scan = best(lambda: con.execute("SELECT t, s0 FROM points").fetchnumpy(), args.repeat)
    con.close()
    out = figures(args, ingest, open_s, first, warm, scan, directory_bytes(data_dir))
    out["version"] = duckdb.__version__
    return out


# ------------------------------------------------------------------------------------------------ SQLite


def run_sqlite(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    path = str(data_dir / "bench.sqlite")
    data = list(tablets(args.rows, args.tablet))
    placeholders = ", ".join("?" for _ in range(len(SERIES) + 1))
    columns = ", ".join(f"{name} REAL" for name in SERIES)
    began = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(f"CREATE TABLE points (t INTEGER PRIMARY KEY, {columns})")
    for stamps, block in data:
        rows = list(zip(stamps.tolist(), *block.tolist(), strict=True))
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO points VALUES ({placeholders})", rows)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    ingest = time.perf_counter() - began
    sql = f"SELECT t / {HOUR_MS} AS w, COUNT(s0), AVG(s0) FROM points GROUP BY w ORDER BY w"
    open_s, con = timed(lambda: sqlite3.connect(path))
    first, rows = timed(lambda: con.execute(sql).fetchall())
    assert sum(row[1] for row in rows) == args.rows
    repeat = max(1, min(args.repeat, 2))  # each run takes a second or so
    warm = best(lambda: con.execute(sql).fetchall(), repeat)
    scan = best(lambda: con.execute("SELECT t, s0 FROM points").fetchall(), repeat)
    con.close()
    out = figures(args, ingest, open_s, first, warm, scan, directory_bytes(data_dir))
    out["version"] = sqlite3.sqlite_version
    return out


# ------------------------------------------------------------------------------------------------- report


def figures(
    args: argparse.Namespace, ingest: float, open_s: float, first: float, warm: float, scan: float, size: int
) -> dict[str, Any]:
    points = args.rows * len(SERIES)
    return {
        "ingest_points_per_s": points / ingest,
        "open_ms": open_s * 1000,
        "group_by_first_ms": first * 1000,
        "group_by_warm_ms": warm * 1000,
        "scan_points_per_s": args.rows / scan,
        "bytes": size,
        "bytes_per_point": size / points,
    }


RUNNERS = {"iotdb": run_iotdb, "duckdb": run_duckdb, "sqlite": run_sqlite}


def run_child(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="vs-duckdb-", dir=args.dir))
    try:
        data_dir = scratch / "data"
        data_dir.mkdir()
        out = RUNNERS[args.child](args, data_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(out))


def child(args: argparse.Namespace, system: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", system, *args.passthrough]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{system} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


FIGURES = ("ingest_points_per_s", "open_ms", "group_by_first_ms", "group_by_warm_ms", "scan_points_per_s",
           "bytes_per_point")


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds (the other entries from the first round)."""
    out = dict(runs[0])
    for key in FIGURES:
        out[key] = statistics.median(run[key] for run in runs)
    return out


def report(results: dict[str, dict[str, Any]]) -> list[str]:
    names = [name for name in results if name != "ratios"]
    lines = ["| measure | " + " | ".join(names) + " | iotdb-py / DuckDB | bar |", "| --- " * (len(names) + 3) + "|"]
    rows = [
        ("tablet ingest, points/s (SYNC, close included)", "ingest_points_per_s", "{:,.0f}", ">= 1.0x", True),
        ("open of the closed database, ms", "open_ms", "{:,.1f}", "-", False),
        ("GROUP BY 1h COUNT+AVG of one series, first after open, ms", "group_by_first_ms", "{:,.1f}", "<= 2x", False),
        ("the same, warm (best), ms", "group_by_warm_ms", "{:,.2f}", "<= 0.5x", False),
        ("full scan of one series, points/s", "scan_points_per_s", "{:,.0f}", ">= 1.0x", True),
        ("bytes per point on disk", "bytes_per_point", "{:.2f}", "<= 1.0x", False),
    ]
    for label, key, form, bar, _higher in rows:
        cells = [form.format(results[name][key]) for name in names]
        ratio = "-"
        if "ratios" in results:
            ratio = f"{results['ratios'][key]:.2f}x"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {bar} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--tablet", type=int, default=10_000, help="rows per tablet")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs of each query (best is kept)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every system this many times, alternating; figures and ratios are medians")
    parser.add_argument("--systems", default="iotdb,duckdb,sqlite")
    parser.add_argument("--no-records", dest="records", action="store_false", help="skip insert_record")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--record-seconds", type=float, default=5.0)
    parser.add_argument("--dir", default=None, help="where the temporary databases go")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    args.passthrough = [
        f"--rows={args.rows}", f"--tablet={args.tablet}", f"--repeat={args.repeat}", f"--threads={args.threads}",
        f"--record-seconds={args.record_seconds}", *([] if args.records else ["--no-records"]),
        *([f"--dir={args.dir}"] if args.dir else []),
    ]
    before = load_average()
    systems = args.systems.split(",")
    rounds = [{system: child(args, system) for system in systems} for _ in range(args.rounds)]
    after = load_average()
    results = {system: median_figures([run[system] for run in rounds]) for system in systems}
    if "iotdb" in results and "duckdb" in results:
        results["ratios"] = {
            key: statistics.median(run["iotdb"][key] / run["duckdb"][key] for run in rounds) for key in FIGURES
        }
    print(f"{args.rows:,} rows x {len(SERIES)} DOUBLE, tablets of {args.tablet:,}, {args.rounds} round(s); "
          f"load average before {before}, "
          f"after {after}")
    print("\n".join(report(results)))
    if "iotdb" in results:
        print(f"iotdb-py's SQL parser build, once per process and not in the figures above: "
              f"{results['iotdb']['parser_build_ms']:.0f} ms")
    record = results.get("iotdb", {}).get("records")
    if record:
        print(
            f"SYNC insert_record, {args.threads} threads: {record['points_per_s']:,.0f} points/s, "
            f"bound {record['bound_points_per_s']:,.0f} (fdatasync {record['fdatasync_us']:.0f} us): "
            f"{record['ratio']:.2f}x (bar >= 0.7x), {record['records_per_fsync']:.1f} records/fsync"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": before, "load_after": after, **results}, indent=2))


if __name__ == "__main__":
    main()
