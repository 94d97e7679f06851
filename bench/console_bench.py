"""Web console benchmark: first load, a downsampled plot of a large series, and the server's cost of polling.

Workloads (a real ``iotdb serve`` subprocess; Debian's Chromium through playwright-core, as the tests use):

  load  a cold-cache load of the overview, from navigation start until its first data is on the page, and
        the bytes transferred (Resource Timing ``transferSize``, the HTML included), --repeat times.
        Targets: <= 300 ms, <= 300 KB.
  plot  the explorer plotting a series of --points points (default 10,000,000; the issue's target names
        100,000,000) held in TsFiles with block statistics: the time of ``GET /console/api/plot`` alone (from
        Python; an exact GROUP BY whose windows must hold every point) and the browser's time from request to
        drawn chart (--repeat times each). Target: <= 500 ms.
  poll  the server process's CPU time (``/proc/<pid>/stat``) over --seconds with the overview open (polling
        every second), minus the same span idle, as a share of one core. Target: <= 2 %.

``load`` and ``poll`` run against a server with an empty data directory. For ``plot`` the series is written
into another data directory with ``Engine.insert_tablet`` before its server starts (a flush every 1,000,000
points), and the plots wait until background compaction has left the TsFile count unchanged for 15 s.

Usage: python bench/console_bench.py [--points N] [--repeat N] [--seconds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iotdb_core.storage import Engine  # noqa: E402
from iotdb_core.testing.server import ServerProcess  # noqa: E402

SERIES = "root.bench.big.v"
AUTH = "Basic " + base64.b64encode(b"root:root").decode()
CHROMIUM = "/usr/bin/chromium"
BROWSER = ROOT / "bench" / "console_load.mjs"


def populate(data_dir: Path, points: int) -> None:
    """A random walk of ``points`` doubles at 1 ms steps, flushed every 1,000,000 points."""
    rng = np.random.default_rng(11)
    chunk = 1_000_000
    with Engine.open(data_dir) as engine:
        for offset in range(0, points, chunk):
            size = min(chunk, points - offset)
            stamps = np.arange(offset, offset + size, dtype=np.int64)
            values = np.round(rng.standard_normal(size).cumsum() + 100.0, 2)
            engine.insert_tablet("root.bench.big", stamps, ["v"], [values])
            engine.flush()


def browser(server: ServerProcess, mode: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    done = subprocess.run(["node", str(BROWSER), CHROMIUM, server.rest_url, mode, *args], capture_output=True,
                          text=True, timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plot_api(server: ServerProcess, repeat: int, points: int) -> list[float]:
    times = []
    for _ in range(repeat):
        request = urllib.request.Request(f"{server.rest_url}/console/api/plot?path={SERIES}&points=1200")
        request.add_header("Authorization", AUTH)
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            body = json.loads(response.read())
        times.append((time.perf_counter() - began) * 1000)
        assert body["mode"] == "windows", body["mode"]
        assert sum(body["counts"]) == points, sum(body["counts"])
    print(f"plot answer: {len(body['timestamps'])} windows of {body['interval']}, {body['blocks']} blocks from "
          f"statistics, {body['points_read']} points read, server {body['server_ms']} ms")
    return times


def overview(server: ServerProcess) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.rest_url}/console/api/overview")
    request.add_header("Authorization", AUTH)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_for_compaction(server: ServerProcess, quiet_s: float = 15.0, limit_s: float = 900.0) -> int:
    """Wait until the TsFile count has not changed for ``quiet_s`` (background compaction done)."""
    deadline = time.monotonic() + limit_s
    files, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(overview(server)["engine"]["tsfiles"])
        if count != files:
            files, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(1.0)
    return files


def polling_cost(server: ServerProcess, seconds: float) -> dict[str, float]:
    assert server.process is not None
    pid = server.process.pid
    before, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    idle = (cpu_seconds(pid) - before) / (time.monotonic() - began)
    process = subprocess.Popen(["node", str(BROWSER), CHROMIUM, server.rest_url, "poll", str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["ready"]
    before, began = cpu_seconds(pid), time.monotonic()
    process.wait(timeout=seconds + 120)
    polled = (cpu_seconds(pid) - before) / (time.monotonic() - began)
    return {"idle_pct": idle * 100, "polled_pct": polled * 100, "polling_pct": (polled - idle) * 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"points": args.points}
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(Path(tmp) / "fresh") as server:  # load and polling: a server doing nothing else
            loads = browser(server, "load", str(args.repeat))["loads"]
            results["load_ms_median"] = statistics.median(load["ms"] for load in loads)
            results["load_ms_best"] = min(load["ms"] for load in loads)
            results["load_bytes"] = statistics.median(load["bytes"] for load in loads)
            results["load_requests"] = loads[0]["requests"]
            results.update(polling_cost(server, args.seconds))
        server = ServerProcess(Path(tmp) / "large")
        began = time.perf_counter()
        populate(server.data_dir, args.points)
        results["populate_s"] = round(time.perf_counter() - began, 1)
        with server:
            results["tsfiles"] = wait_for_compaction(server)
            api = plot_api(server, args.repeat, args.points)
            results["plot_api_ms_median"] = statistics.median(api)
            results["plot_api_ms_best"] = min(api)
            plots = browser(server, "plot", SERIES, str(args.repeat))["plots"]
            assert all(plot["count"] == plot["counted"] == args.points for plot in plots), plots
            results["plot_drawn_ms_median"] = statistics.median(plot["drawnMs"] for plot in plots)
            results["plot_drawn_ms_best"] = min(plot["drawnMs"] for plot in plots)
            results["plot_windows"] = plots[0]["points"]
    for key, value in results.items():
        print(f"{key:24} {value:.1f}" if isinstance(value, float) else f"{key:24} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
