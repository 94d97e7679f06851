"""Storage engine benchmark: ingest, query, size on disk and memory, with flushes and compactions running.

Workloads (each runs in a fresh child process, so peak RSS is its own):

  a  insert_tablet: batches of 1,000 rows x 10 DOUBLE measurements (random walks, 2 decimals) until
     --tablet-points points, wal_mode as given (SYNC by default); reports the rate until the last call
     returned and including the final flush on close, plus (d) bytes/point of the TsFiles left and
     (e) the peak RSS of the process.
  b  insert_record of 2 DOUBLE measurements from --threads threads for --record-seconds, per WAL mode in
     --record-modes (SYNC first; the others show what the fsync costs). First it measures this disk's
     fdatasync after a 100-byte write into allocated space, as the WAL does it: each SYNC call waits for one,
     so --threads threads can reach at most threads x 2 points per fdatasync time, with no CPU cost at all;
     the SYNC rate is also given as a multiple of that bound (target: 0.7, issue 12).
  h  (a) with an iotdb_before_write hook registered that looks at every row and changes none, for
     --hook-points points: what a validating plugin costs the tablet path.
  c  full-range query of one series of --query-points points, all in TsFiles (written, closed, reopened).
  s  COUNT + AVG over one series of --query-points points in flushed TsFiles, from Engine.scan statistics
     and from a full Engine.query (best of 3 each); then the latency of Engine.delete calls.

Usage: python bench/storage_bench.py [--quick] [--workloads abhcs] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iotdb_core import Row, hookimpl  # noqa: E402
from iotdb_core.config import default_settings  # noqa: E402
from iotdb_core.hookspecs import FlushInfo  # noqa: E402
from iotdb_core.plugin_manager import create_plugin_manager  # noqa: E402
from iotdb_core.storage import Engine, StatsSegment  # noqa: E402

MIB = 1024 * 1024
ROWS_PER_TABLET = 1000
MEASUREMENTS = [f"s{i}" for i in range(10)]


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tsfile_bytes(data_dir: Path) -> int:
    return sum(path.stat().st_size for path in (data_dir / "sequence").glob("*.tsfile"))


class FlushCounter:
    def __init__(self) -> None:
        self.flushes = 0

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.flushes += 1


class RowObserver:
    """A before_write hook that reads every row and leaves them all as they were."""

    def __init__(self) -> None:
        self.rows = 0

    @hookimpl
    def iotdb_before_write(self, rows: list[Row]) -> None:
        self.rows += len(rows)


def random_walk_pool(rng: np.random.Generator, batches: int) -> np.ndarray:
    """Random-walk increments with 2 decimals, shaped (batches, measurements, rows), each walk from 0."""
    steps = np.round(rng.normal(0.0, 0.5, size=(batches, len(MEASUREMENTS), ROWS_PER_TABLET)), 2)
    return np.round(np.cumsum(steps, axis=2), 2)


def tablet_ingest(args: argparse.Namespace, data_dir: Path, total_points: int, *, hook: bool = False) -> dict[str, Any]:
    settings = default_settings().replace(
        wal_mode=args.wal_mode, memtable_memory_budget_in_byte=args.budget_mib * MIB
    )
    counter = FlushCounter()
    plugins: list[object] = [counter, RowObserver()] if hook else [counter]
    rng = np.random.default_rng(7)
    pool = random_walk_pool(rng, 64)
    carry = np.full(len(MEASUREMENTS), 100.0)
    baseline = rss_mib()
    engine = Engine.open(data_dir, settings, create_plugin_manager(load_entry_points=False, plugins=plugins))
    for name in MEASUREMENTS:
        engine.create_timeseries(f"root.bench.d1.{name}", "DOUBLE", args.encoding, args.compressor)
    batches = total_points // (ROWS_PER_TABLET * len(MEASUREMENTS))
    start = time.perf_counter()
    for batch in range(batches):
        block = np.round(pool[batch % len(pool)] + carry[:, None], 2)
        carry = block[:, -1]
        stamps = np.arange(batch * ROWS_PER_TABLET, (batch + 1) * ROWS_PER_TABLET, dtype=np.int64) * 1000
        result = engine.insert_tablet("root.bench.d1", stamps, MEASUREMENTS, list(block))
        assert result.ok, result.failures[:3]
    ingested = time.perf_counter() - start
    levels = engine.file_levels()
    engine.close()
    closed = time.perf_counter() - start
    points = batches * ROWS_PER_TABLET * len(MEASUREMENTS)
    return {
        "points": points,
        "ingest_s": ingested,
        "ingest_points_per_s": points / ingested,
        "with_close_points_per_s": points / closed,
        "flushes": counter.flushes,
        "files_before_close": len(levels),
        "levels_before_close": sorted({level for _, level in levels}),
        "tsfile_bytes": tsfile_bytes(data_dir),
        "bytes_per_point": tsfile_bytes(data_dir) / points,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
        "budget_mib": args.budget_mib,
        "encoding": f"{args.encoding}+{args.compressor}",
        "wal_mode": args.wal_mode,
    }


def record_ingest(args: argparse.Namespace, data_dir: Path, mode: str) -> dict[str, Any]:
    settings = default_settings().replace(wal_mode=mode)
    engine = Engine.open(data_dir / mode, settings)
    counts = [0] * args.threads
    stop = threading.Event()

    def writer(index: int) -> None:
        device = f"root.bench.r{index}"
        value = 0.0
        i = 0
        while not stop.is_set():
            value += 0.25
            engine.insert_record(device, i, ["s1", "s2"], [value, -value])
            i += 1
        counts[index] = i

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.threads)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(args.record_seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    stats = engine.state.wal.stats()
    engine.close()
    calls = sum(counts)
    return {
        "wal_mode": mode,
        "threads": args.threads,
        "calls": calls,
        "points_per_s": 2 * calls / elapsed,
        "calls_per_s": calls / elapsed,
        "records_per_fsync": stats.records / stats.fsyncs if stats.fsyncs else None,
    }


def fdatasync_us(path: Path, writes: int, *, allocated: bool) -> float:
    """Median fdatasync time, in us, after a 100-byte write at the end of a file, into allocated space or not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if allocated:
            os.posix_fallocate(fd, 0, writes * 100)
            os.fsync(fd)
        record = b"r" * 100
        times = []
        for i in range(writes):
            started = time.perf_counter()
            os.pwrite(fd, record, i * 100)
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return float(np.median(times)) * 1e6


def fsync_ceiling(args: argparse.Namespace, data_dir: Path, writes: int = 3000) -> dict[str, Any]:
    """This disk's fdatasync as the WAL does it (into allocated space), the SYNC bound it sets, and the
    fdatasync after a write that grows the file instead."""
    latency_us = fdatasync_us(data_dir / "fsync-probe", writes, allocated=True)
    return {
        "fdatasync_us": latency_us,
        "growing_fdatasync_us": fdatasync_us(data_dir / "fsync-probe", writes, allocated=False),
        "bound_points_per_s": args.threads * 2 / (latency_us / 1e6),
    }


def query(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = default_settings().replace(wal_mode="DISABLE")
    rng = np.random.default_rng(11)
    with Engine.open(data_dir, settings) as engine:
        engine.create_timeseries("root.bench.q.s", "DOUBLE", args.encoding, args.compressor)
        chunk = 100_000
        value = 100.0
        for start in range(0, args.query_points, chunk):
            walk = np.round(value + np.cumsum(np.round(rng.normal(0, 0.5, chunk), 2)), 2)
            value = float(walk[-1])
            engine.insert_tablet("root.bench.q", np.arange(start, start + chunk, dtype=np.int64), ["s"], [walk])
    with Engine.open(data_dir, settings) as engine:
        files = engine.file_levels()
        times = []
        for _ in range(3):
            began = time.perf_counter()
            result = engine.query("root.bench.q.s")
            times.append(time.perf_counter() - began)
            assert len(result) == args.query_points
        middle = engine.query("root.bench.q.s", args.query_points // 2, args.query_points // 2 + 9_999)
        assert len(middle) == 10_000
    return {
        "points": args.query_points,
        "files": len(files),
        "first_s": times[0],
        "best_s": min(times),
        "points_per_s": args.query_points / min(times),
        "first_points_per_s": args.query_points / times[0],
    }


def scan_aggregate(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """COUNT and AVG over flushed files: statistics pushdown (Engine.scan) against reading every point."""
    settings = default_settings().replace(wal_mode="DISABLE")
    rng = np.random.default_rng(13)
    path = "root.bench.agg.s"
    with Engine.open(data_dir, settings) as engine:
        engine.create_timeseries(path, "DOUBLE", args.encoding, args.compressor)
        chunk = 100_000
        for start in range(0, args.query_points, chunk):
            walk = np.round(100.0 + np.cumsum(np.round(rng.normal(0, 0.5, chunk), 2)), 2)
            engine.insert_tablet("root.bench.agg", np.arange(start, start + chunk, dtype=np.int64), ["s"], [walk])
    with Engine.open(data_dir, settings) as engine:
        files = len(engine.file_levels())
        scan_times, query_times = [], []
        for _ in range(3):
            began = time.perf_counter()
            segments = engine.scan(path)
            count, total = 0, 0.0
            for segment in segments:
                if isinstance(segment, StatsSegment):
                    count += segment.count
                    total += segment.sum
                else:
                    count += len(segment.values)
                    total += float(np.sum(segment.values))
            scan_avg = total / count
            scan_times.append(time.perf_counter() - began)
            began = time.perf_counter()
            result = engine.query(path)
            query_count, query_avg = len(result), float(np.mean(result.values))
            query_times.append(time.perf_counter() - began)
        assert count == query_count == args.query_points
        assert abs(scan_avg - query_avg) <= 1e-9 * max(1.0, abs(query_avg))
        stats = sum(isinstance(segment, StatsSegment) for segment in segments)
        delete_times = []
        for index in range(20):
            began = time.perf_counter()
            engine.delete(path, index * 1000, index * 1000 + 9)
            delete_times.append(time.perf_counter() - began)
        after = engine.scan(path)
        assert sum(s.count for s in after) == args.query_points - 200
    return {
        "points": args.query_points,
        "files": files,
        "stats_segments": stats,
        "points_segments": len(segments) - stats,
        "scan_best_s": min(scan_times),
        "query_best_s": min(query_times),
        "speedup": min(query_times) / min(scan_times),
        "delete_ms": 1000 * float(np.median(delete_times)),
    }


def run_child(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="storage-bench-", dir=args.dir))
    try:
        if args.child == "a":
            out: Any = tablet_ingest(args, data_dir, args.tablet_points)
        elif args.child == "h":
            out = tablet_ingest(args, data_dir, args.hook_points, hook=True)
        elif args.child == "b":
            out = {
                "fsync": fsync_ceiling(args, data_dir),
                "modes": [record_ingest(args, data_dir, mode) for mode in args.record_modes.split(",")],
            }
        elif args.child == "s":
            out = scan_aggregate(args, data_dir)
        else:
            out = query(args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(out))


def child(args: argparse.Namespace, workload: str) -> Any:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", workload, *args.passthrough]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"workload {workload} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt(number: float) -> str:
    return f"{number:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="abhcs", help="any of a, b, h, c, s (d and e come with a)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--tablet-points", type=int, default=20_000_000)
    parser.add_argument("--hook-points", type=int, default=2_000_000)
    parser.add_argument("--record-seconds", type=float, default=10.0)
    parser.add_argument("--record-modes", default="SYNC,ASYNC")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--query-points", type=int, default=10_000_000)
    parser.add_argument("--wal-mode", default="SYNC")
    parser.add_argument("--budget-mib", type=int, default=512, help="memtable_memory_budget_in_byte in MiB")
    parser.add_argument("--encoding", default="CHIMP", help="series encoding (default: the engine's for DOUBLE)")
    parser.add_argument("--compressor", default="LZ4", help="series compressor (default: the engine's)")
    parser.add_argument("--dir", default=None, help="where the temporary data directories go")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.tablet_points, args.record_seconds, args.query_points = 2_000_000, 2.0, 1_000_000
        args.hook_points = 500_000
    if args.child:
        run_child(args)
        return
    args.passthrough = [
        f"--tablet-points={args.tablet_points}", f"--hook-points={args.hook_points}",
        f"--record-seconds={args.record_seconds}",
        f"--record-modes={args.record_modes}", f"--threads={args.threads}", f"--query-points={args.query_points}",
        f"--wal-mode={args.wal_mode}", f"--budget-mib={args.budget_mib}", f"--encoding={args.encoding}",
        f"--compressor={args.compressor}", *([f"--dir={args.dir}"] if args.dir else []),
    ]
    results: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    rows: list[tuple[str, str, str]] = []
    if "a" in args.workloads:
        a = results["a"] = child(args, "a")
        rows.append((
            f"(a) insert_tablet 1000x10 DOUBLE, {a['wal_mode']}, {fmt(a['points'])} points",
            f"{fmt(a['ingest_points_per_s'])} points/s ({fmt(a['with_close_points_per_s'])} incl. final flush; "
            f"{a['flushes']} flushes, levels {a['levels_before_close']})",
            ">= 1,000,000 points/s",
        ))
        rows.append((
            f"(d) bytes/point on disk, random walk 2 decimals, {a['encoding']}",
            f"{a['bytes_per_point']:.2f}",
            "<= 3",
        ))
        rows.append((
            f"(e) peak RSS ingesting {fmt(a['points'])} points (budget {a['budget_mib']} MiB)",
            f"{a['peak_rss_mib']:.0f} MiB (process baseline {a['baseline_rss_mib']:.0f} MiB)",
            f"< {a['budget_mib'] + 150} MiB",
        ))
    if "b" in args.workloads:
        results["b"] = child(args, "b")
        ceiling = results["b"]["fsync"]
        rows.append((
            f"(b) bound for SYNC, {args.threads} threads x 2 points per fdatasync",
            f"{fmt(ceiling['bound_points_per_s'])} points/s (fdatasync {ceiling['fdatasync_us']:.0f} us, median; "
            f"{ceiling['growing_fdatasync_us']:.0f} us after a write that grows the file)",
            "-",
        ))
        for b in results["b"]["modes"]:
            per_fsync = "" if b["records_per_fsync"] is None else f", {b['records_per_fsync']:.1f} records/fsync"
            sync = b["wal_mode"] == "SYNC"
            if sync:
                b["of_bound"] = b["points_per_s"] / ceiling["bound_points_per_s"]
            rows.append((
                f"(b) insert_record 2 DOUBLE, {b['threads']} threads, {b['wal_mode']}",
                f"{fmt(b['points_per_s'])} points/s ({fmt(b['calls_per_s'])} calls/s{per_fsync}"
                + (f"; {b['of_bound']:.2f} x the bound)" if sync else ")"),
                ">= 0.7 x the bound" if sync else "-",
            ))
    if "h" in args.workloads:
        h = results["h"] = child(args, "h")
        rows.append((
            f"(h) insert_tablet as (a) with an observing before_write hook, {fmt(h['points'])} points",
            f"{fmt(h['ingest_points_per_s'])} points/s",
            "-",
        ))
    if "c" in args.workloads:
        c = results["c"] = child(args, "c")
        rows.append((
            f"(c) full-range query, {fmt(c['points'])} points in {c['files']} TsFiles",
            f"{fmt(c['points_per_s'])} points/s (best of 3; first {fmt(c['first_points_per_s'])})",
            ">= 2,000,000 points/s",
        ))
    if "s" in args.workloads:
        agg = results["s"] = child(args, "s")
        rows.append((
            f"(s) COUNT+AVG, {fmt(agg['points'])} points in {agg['files']} TsFiles, via scan statistics",
            f"{agg['scan_best_s'] * 1000:,.2f} ms ({agg['stats_segments']} StatsSegments, "
            f"{agg['points_segments']} PointsSegments; {agg['speedup']:,.0f}x the full query)",
            "-",
        ))
        rows.append((
            f"(s) COUNT+AVG, {fmt(agg['points'])} points, via full query",
            f"{agg['query_best_s'] * 1000:,.0f} ms",
            "-",
        ))
        rows.append(("(s) Engine.delete of a small range (median of 20)", f"{agg['delete_ms']:.1f} ms", "-"))
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print(f"{'workload':<{width}}  {'measured':<{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
