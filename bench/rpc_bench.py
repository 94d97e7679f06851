"""Native RPC benchmark: the real ``apache-iotdb`` Session against a real ``iotdb serve`` subprocess (loopback).

Workloads (targets from issue 10):

  tablet   ``Session.insert_tablet`` of a ``NumpyTablet`` with 10 DOUBLE columns x 10,000 rows per call, the server
           in ``wal_mode=SYNC`` (each call returns once its points are fsynced). Target >= 3,000,000 points/s.
  records  ``Session.insert_records`` of 1,000 single-row records per call (10 DOUBLE measurements each, spread
           round-robin over --devices devices: 10, then 100), SYNC. Target >= 300,000 points/s.
  query    ``execute_query_statement("SELECT * FROM root.bq.d1").todf()`` of 1,000,000 points (100,000 rows x 10
           DOUBLE columns), fetched in TsBlocks of the client's default fetch size (5,000 rows). Target >= 2,000,000
           points/s.

Each workload runs --calls calls (tablet, records) or --repeat queries after one warm-up; the best and the median
rates are reported. "client share" is the CPU time the benchmark (client) process used divided by the wall time
of the timed calls; "server CPU" is the server process's CPU time over the same interval (from /proc).

Usage: python bench/rpc_bench.py [--workload tablet|records|query|all] [--calls N] [--repeat N]
                                 [--devices N ...] [--wal-mode SYNC|ASYNC] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iotdb.Session import Session  # noqa: E402
from iotdb.utils.IoTDBConstants import TSDataType  # noqa: E402
from iotdb.utils.NumpyTablet import NumpyTablet  # noqa: E402

from iotdb_core.testing.server import ServerProcess  # noqa: E402

COLUMNS = 10
TABLET_ROWS = 10_000
RECORDS_PER_CALL = 1_000
RECORD_DEVICES = 100
QUERY_ROWS = 100_000


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(server: ServerProcess, calls: list[Callable[[], Any]]) -> tuple[list[float], float, float, float]:
    """Run each call; per-call wall times, total wall, client CPU and server CPU over the run."""
    assert server.process is not None
    pid = server.process.pid
    walls = []
    cpu0, srv0, wall0 = time.process_time(), _server_cpu(pid), time.perf_counter()
    for call in calls:
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
    wall = time.perf_counter() - wall0
    return walls, wall, time.process_time() - cpu0, _server_cpu(pid) - srv0


def _report(name: str, points_per_call: int, walls: list[float], wall: float, client: float,
            server: float) -> dict[str, Any]:
    rates = [points_per_call / w for w in walls]
    result = {
        "workload": name, "calls": len(walls), "points_per_call": points_per_call,
        "overall_points_per_s": round(points_per_call * len(walls) / wall),
        "best_points_per_s": round(max(rates)), "median_points_per_s": round(statistics.median(rates)),
        "client_share": round(client / wall, 3), "server_cpu_share": round(server / wall, 3),
    }
    print(f"{name:26s} overall {result['overall_points_per_s']:>12,} points/s   best {result['best_points_per_s']:>12,}"
          f"   median {result['median_points_per_s']:>12,}   client share {result['client_share']:.0%}"
          f"   server CPU {result['server_cpu_share']:.0%} of wall")
    return result


def bench_tablet(server: ServerProcess, session: Session, calls: int) -> dict[str, Any]:
    names = [f"s{i}" for i in range(COLUMNS)]
    types = [TSDataType.DOUBLE] * COLUMNS
    rng = np.random.default_rng(1)
    values = [rng.random(TABLET_ROWS).astype(">f8") for _ in range(COLUMNS)]

    def tablet(index: int) -> NumpyTablet:
        stamps = np.arange(index * TABLET_ROWS, (index + 1) * TABLET_ROWS, dtype=">i8")
        return NumpyTablet("root.bt.d1", names, types, values, stamps)

    session.insert_tablet(tablet(calls))  # warm-up (creates the series)
    work = [lambda i=i: session.insert_tablet(tablet(i)) for i in range(calls)]
    return _report("tablet", COLUMNS * TABLET_ROWS, *_timed(server, work))


def bench_records(server: ServerProcess, session: Session, calls: int, device_count: int) -> dict[str, Any]:
    names = [f"s{i}" for i in range(COLUMNS)]
    types = [TSDataType.DOUBLE] * COLUMNS
    devices = [f"root.br{device_count}.d{i % device_count}" for i in range(RECORDS_PER_CALL)]
    measurements = [names] * RECORDS_PER_CALL
    kinds = [types] * RECORDS_PER_CALL
    row = [float(i) for i in range(COLUMNS)]
    values = [row] * RECORDS_PER_CALL

    def call(index: int) -> None:
        base = index * RECORDS_PER_CALL
        session.insert_records(devices, list(range(base, base + RECORDS_PER_CALL)), measurements, kinds, values)

    call(calls)  # warm-up
    work = [lambda i=i: call(i) for i in range(calls)]
    return _report(f"records over {device_count} devices", COLUMNS * RECORDS_PER_CALL, *_timed(server, work))


def bench_query(server: ServerProcess, session: Session, repeat: int) -> dict[str, Any]:
    names = [f"s{i}" for i in range(COLUMNS)]
    rng = np.random.default_rng(2)
    for start in range(0, QUERY_ROWS, TABLET_ROWS):
        stamps = np.arange(start, start + TABLET_ROWS, dtype=">i8")
        columns = [rng.random(TABLET_ROWS).astype(">f8") for _ in range(COLUMNS)]
        session.insert_tablet(NumpyTablet("root.bq.d1", names, [TSDataType.DOUBLE] * COLUMNS, columns, stamps))

    def query() -> None:
        with session.execute_query_statement("SELECT * FROM root.bq.d1") as dataset:
            frame = dataset.todf()
        assert frame.shape == (QUERY_ROWS, COLUMNS + 1), frame.shape

    query()  # warm-up
    return _report("query", COLUMNS * QUERY_ROWS, *_timed(server, [query] * repeat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("tablet", "records", "query", "all"), default="all")
    parser.add_argument("--calls", type=int, default=30, help="timed insert calls per workload (default 30)")
    parser.add_argument("--repeat", type=int, default=5, help="timed queries (default 5)")
    parser.add_argument("--devices", type=int, nargs="+", default=[10, RECORD_DEVICES],
                        help=f"devices the records of a call are spread over, one run each (default 10 "
                        f"{RECORD_DEVICES})")
    parser.add_argument("--wal-mode", choices=("SYNC", "ASYNC"), default="SYNC",
                        help="the server's wal_mode (default SYNC, the target's; ASYNC shows the cost without fsync)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="rpc-bench-") as directory:
        server = ServerProcess(Path(directory), properties={"wal_mode": args.wal_mode}).start(timeout=60)
        try:
            session = Session(server.rpc_host, server.rpc_port, "root", "root", zone_id="UTC")
            session.open(False)
            try:
                if args.workload in ("tablet", "all"):
                    results.append(bench_tablet(server, session, args.calls))
                if args.workload in ("records", "all"):
                    for device_count in args.devices:
                        results.append(bench_records(server, session, args.calls, device_count))
                if args.workload in ("query", "all"):
                    results.append(bench_query(server, session, args.repeat))
            finally:
                session.close()
        finally:
            server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
