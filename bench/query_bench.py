"""Query benchmark: the REST API of a real ``iotdb serve`` subprocess.

Workloads:

  raw   ``SELECT s1 FROM root.bench.d1`` returning --points points (default 1,000,000) over
        ``POST /rest/v2/query`` with ``row_limit`` set to fit; timed from sending the request to the last
        byte of the response, and separately including ``json.loads`` on the client. Target: <= 2 s.
  last  ``SELECT LAST * FROM root.last.**`` over --series series (default 10,000; 100 devices x 100
        measurements, 3 points each). Target: <= 50 ms.

The data is written before the server starts, straight into its data directory with ``Engine.insert_tablet``
(half of the raw series is flushed to TsFiles, half stays in the WAL/memtable, as a live server has it).
Each workload runs --repeat times after one warm-up request; the best and the median are reported.

Usage: python bench/query_bench.py [--points N] [--series N] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iotdb_core.storage import Engine  # noqa: E402
from iotdb_core.testing.server import ServerProcess  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"root:root").decode()


def populate(data_dir: Path, points: int, series: int) -> None:
    """Write the raw series (random walk, 2 decimals) and the LAST series."""
    rng = np.random.default_rng(7)
    with Engine.open(data_dir) as engine:
        start = 1_700_000_000_000
        chunk = 100_000
        for offset in range(0, points, chunk):
            size = min(chunk, points - offset)
            stamps = np.arange(start + offset, start + offset + size, dtype=np.int64)
            values = np.round(rng.standard_normal(size).cumsum() + 20.0, 2)
            engine.insert_tablet("root.bench.d1", stamps, ["s1"], [values])
            if offset + size == points // 2:
                engine.flush()
        devices = max(1, series // 100)
        per_device = series // devices
        names = [f"m{i}" for i in range(per_device)]
        stamps = np.array([start, start + 1000, start + 2000], dtype=np.int64)
        for device in range(devices):
            columns = [rng.standard_normal(3) for _ in names]
            engine.insert_tablet(f"root.last.d{device}", stamps, names, columns)


def post(connection: http.client.HTTPConnection, sql: str, row_limit: int) -> tuple[float, float, Any]:
    """(seconds to the last byte, seconds including json.loads, decoded body)."""
    body = json.dumps({"sql": sql, "row_limit": row_limit})
    started = time.perf_counter()
    connection.request("POST", "/rest/v2/query", body=body,
                       headers={"Authorization": AUTH, "Content-Type": "application/json"})
    response = connection.getresponse()
    raw = response.read()
    received = time.perf_counter()
    decoded = json.loads(raw)
    return received - started, time.perf_counter() - started, decoded


def measure(connection: http.client.HTTPConnection, sql: str, row_limit: int, repeat: int,
            check: Any) -> dict[str, Any]:
    post(connection, sql, row_limit)  # warm-up: parser, caches
    receive, total = [], []
    body: Any = None
    for _ in range(repeat):
        seconds, with_decode, body = post(connection, sql, row_limit)
        receive.append(seconds)
        total.append(with_decode)
    check(body)
    return {
        "best_s": min(receive), "median_s": statistics.median(receive),
        "best_with_decode_s": min(total), "median_with_decode_s": statistics.median(total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp:
        server = ServerProcess(Path(tmp), properties={"enable_rest_service": "true"})
        started = time.perf_counter()
        populate(server.data_dir, args.points, args.series)
        print(f"populated {args.points} + {args.series * 3} points in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        with server:
            connection = http.client.HTTPConnection(server.rest_host, server.rest_port, timeout=120)

            def check_raw(body: Any) -> None:
                assert len(body["timestamps"]) == args.points, body if "code" in body else len(body["timestamps"])

            def check_last(body: Any) -> None:
                assert len(body["timestamps"]) == args.series, body if "code" in body else len(body["timestamps"])

            results = {
                "raw": measure(connection, "SELECT s1 FROM root.bench.d1", args.points, args.repeat, check_raw),
                "last": measure(connection, "SELECT LAST * FROM root.last.**", args.series, args.repeat,
                                check_last),
            }
            connection.close()
    results["raw"].update(points=args.points, target_s=2.0)
    results["last"].update(series=args.series, target_s=0.05)
    for name, figures in results.items():
        verdict = "met" if figures["best_s"] <= figures["target_s"] else "NOT met"
        print(f"{name:5s} best {figures['best_s'] * 1000:8.1f} ms  median {figures['median_s'] * 1000:8.1f} ms  "
              f"(with client json.loads: best {figures['best_with_decode_s'] * 1000:8.1f} ms)  "
              f"target {figures['target_s'] * 1000:.0f} ms: {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
