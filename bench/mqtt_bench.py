"""MQTT ingestion benchmark of ``iotdb serve`` (with Mosquitto as the reference broker).

Run from the project root::

    python -m bench.mqtt_bench --workload all --repeat 3 --json mqtt-bench.json

Workloads (each run gets a fresh server and data directory):

a. QoS 1 single-row payloads (2 DOUBLE measurements), ``--clients`` x ``--inflight`` outstanding publishes,
   against ``iotdb serve`` and against Mosquitto (persistence off) on loopback; acked messages/s, p50/p99
   ack latency, and afterwards the stored points are counted (must equal 2 x acked messages).
b. QoS 1 batch payloads: 100 timestamps x 10 measurements per message; acked points/s.
c. ``--idle-clients`` connected idle clients (keep alive 60 s): VmRSS of the server process before and after.

The load generator (``bench/mqtt_loadgen.py``) speaks MQTT over raw non-blocking sockets in ``--procs``
worker processes. ``--profile`` attaches py-spy to the server during workload (a)'s measured window and
prints the hottest functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mqtt_loadgen import SHAPES, idle_worker, publish_worker, raise_nofile_limit
from iotdb_core.storage.engine import Engine
from iotdb_core.testing.server import ServerProcess

MOSQUITTO = "/usr/sbin/mosquitto"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SPAWN = multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------------------------- servers

def start_iotdb(directory: Path, args: argparse.Namespace) -> ServerProcess:
    properties: dict[str, object] = {"mqtt_allow_anonymous": "true", "wal_mode": args.wal_mode}
    if args.pool_size is not None:
        properties["mqtt_handler_pool_size"] = args.pool_size
    if args.event_loop is not None:
        properties["mqtt_event_loop"] = args.event_loop
    env = {"IOTDB_DISABLE_PLUGINS": args.disable_plugins} if args.disable_plugins else None
    return ServerProcess(directory, properties, env).start()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mosquitto:
    """Mosquitto on a free loopback port with persistence and logging off."""

    def __init__(self, directory: Path) -> None:
        self.host, self.port = "127.0.0.1", _free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_type none\nlog_dest none\nset_tcp_nodelay true\nmax_connections -1\n")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self.process.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# ---------------------------------------------------------------------------------------------- /proc

def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def probe_fsync(directory: Path, count: int = 50) -> float:
    """Median milliseconds of ``fdatasync`` after an 8 KiB append in ``directory`` (the disk is shared)."""
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    times = []
    try:
        for index in range(count):
            os.pwrite(fd, b"x" * 8192, index * 8192)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return 1000 * statistics.median(times)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every thread of ``pid``, by thread id."""
    times: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            times[int(task.name)] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return times


def host_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLK_TCK, sum(fields[:8]) / _CLK_TCK


def cpu_split(pid: int, before: dict[int, float], after: dict[int, float], seconds: float) -> dict[str, float]:
    """CPU % of the main (event loop) thread and of all other threads over ``seconds``."""
    main = after.get(pid, 0.0) - before.get(pid, 0.0)
    total = sum(after.values()) - sum(v for k, v in before.items() if k in after)
    return {"server_cpu_pct": 100 * total / seconds, "server_loop_cpu_pct": 100 * main / seconds,
            "server_other_cpu_pct": 100 * (total - main) / seconds}


# ---------------------------------------------------------------------------------------------- load

def run_publish(host: str, port: int, server_pid: int, shape: str, args: argparse.Namespace, tag: str,
                profile_out: Path | None = None) -> dict:
    """One bounded publish run; returns rates, latency percentiles, counts and CPU use."""
    fsync_ms = probe_fsync(args.probe_dir)
    procs = max(1, min(args.procs, args.clients))
    groups = [list(range(i, args.clients, procs)) for i in range(procs)]
    pipes, workers = [], []
    for group in groups:
        parent, child = _SPAWN.Pipe()
        worker = _SPAWN.Process(target=publish_worker, args=(child, host, port, group, shape, args.inflight, tag),
                                daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    try:
        connected = 0
        for pipe in pipes:
            if not pipe.poll(60):
                raise RuntimeError("load generator did not connect within 60 s")
            connected += pipe.recv()[1]
        start = time.monotonic() + 0.05
        warm_end, end = start + args.warmup, start + args.warmup + args.seconds
        for pipe in pipes:
            pipe.send(("go", warm_end, end, args.drain))
        time.sleep(max(0.0, warm_end - time.monotonic()))
        profiler = None
        if profile_out is not None:
            command = ["py-spy", "record", "--pid", str(server_pid), "--duration", str(max(1, int(args.seconds))),
                       "--rate", str(args.profile_rate), "--nonblocking", "--format", "raw", "-o", str(profile_out)]
            if args.profile_mode == "gil":
                command.append("--gil")
            profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cpu0, host0 = thread_cpu(server_pid), host_busy()
        time.sleep(max(0.0, end - time.monotonic()))
        cpu1, host1 = thread_cpu(server_pid), host_busy()
        results = []
        for pipe in pipes:
            if not pipe.poll(args.drain + 60):
                raise RuntimeError("load generator did not finish")
            results.append(pipe.recv())
        if profiler is not None:
            _, err = profiler.communicate(timeout=60)
            if profiler.returncode:
                print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    latencies = array("d")
    for result in results:
        latencies.frombytes(result["latencies"])
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    per_message = SHAPES[shape].points_per_message
    window = sum(r["acked_window"] for r in results)
    per_client: dict[int, int] = {}
    for result in results:
        per_client.update(result["per_client_sent"])
    return {
        "connected": connected,
        "fsync_p50_ms": fsync_ms,
        "msgs_per_s": window / args.seconds,
        "points_per_s": window * per_message / args.seconds,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "sent": sum(r["sent"] for r in results),
        "acked": sum(r["acked"] for r in results),
        "unacked_after_drain": sum(r["outstanding"] for r in results),
        "per_client_sent": per_client,
        "loadgen_cpu_pct": 100 * sum(r["cpu_s"] for r in results) / (args.warmup + args.seconds),
        **cpu_split(server_pid, cpu0, cpu1, args.seconds),
        "server_us_per_msg": 1e6 * (sum(cpu1.values()) - sum(v for k, v in cpu0.items() if k in cpu1)) / max(1, window),
        "host_busy_pct": 100 * (host1[0] - host0[0]) / args.seconds,
        "host_cpus_pct": 100 * (host1[1] - host0[1]) / args.seconds,
        "errors": [e for r in results for e in r["errors"]],
    }


def count_points(data_dir: Path) -> tuple[int, int]:
    """(series, stored points) in a closed data directory."""
    engine = Engine.open(data_dir)
    try:
        series = engine.list_series()
        return len(series), sum(len(engine.query(s.path)) for s in series)
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------- workloads

def workload_a(args: argparse.Namespace, workdir: Path, run: int) -> dict:
    out: dict = {}
    server = start_iotdb(workdir / f"a{run}", args)
    try:
        profile = workdir / f"a{run}.pyspy.txt" if args.profile else None
        out["iotdb"] = run_publish(server.host, server.port, server.process.pid, "single", args, f"a{run}", profile)
    finally:
        code = server.stop(timeout=120)
    result = out["iotdb"]
    result["server_exit"] = code
    series, points = count_points(server.data_dir)
    expected = result["acked"] * SHAPES["single"].points_per_message
    result.update(stored_series=series, stored_points=points, expected_points=expected,
                  verified=points == expected and result["sent"] == result["acked"])
    if profile is not None and profile.exists():
        result["profile"] = {"mode": args.profile_mode, **summarize_profile(profile)}
        shutil.copy(profile, Path(args.profile) / f"a{run}-{args.profile_mode}.pyspy.txt")
    if not args.no_mosquitto:
        broker = Mosquitto(workdir)
        try:
            out["mosquitto"] = run_publish(broker.host, broker.port, broker.pid, "single", args, f"m{run}")
        finally:
            broker.stop()
        out["ratio"] = result["msgs_per_s"] / out["mosquitto"]["msgs_per_s"]
    return out


def workload_b(args: argparse.Namespace, workdir: Path, run: int) -> dict:
    server = start_iotdb(workdir / f"b{run}", args)
    profile = workdir / f"b{run}.pyspy.txt" if args.profile else None
    try:
        result = run_publish(server.host, server.port, server.process.pid, "batch", args, f"b{run}", profile)
    finally:
        result_code = server.stop(timeout=300)
    if profile is not None and profile.exists():
        result["profile"] = {"mode": args.profile_mode, **summarize_profile(profile)}
        shutil.copy(profile, Path(args.profile) / f"b{run}-{args.profile_mode}.pyspy.txt")
    series, points = count_points(server.data_dir)
    expected = result["acked"] * SHAPES["batch"].points_per_message
    result.update(server_exit=result_code, stored_series=series, stored_points=points, expected_points=expected,
                  verified=points == expected and result["sent"] == result["acked"])
    return {"iotdb": result}


def workload_c(args: argparse.Namespace, workdir: Path, run: int) -> dict:
    server = start_iotdb(workdir / f"c{run}", args)
    pid = server.process.pid
    try:
        time.sleep(1.0)
        before = rss_kib(pid)
        parent, child = _SPAWN.Pipe()
        worker = _SPAWN.Process(target=idle_worker, args=(child, server.host, server.port,
                                                           list(range(args.idle_clients)), f"c{run}"), daemon=True)
        worker.start()
        try:
            if not parent.poll(120):
                raise RuntimeError("idle clients did not connect within 120 s")
            _, connected, connect_s, errors = parent.recv()
            time.sleep(2.0)
            after = rss_kib(pid)
            parent.send(("close",))
            parent.poll(30)
        finally:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    finally:
        server.stop(timeout=60)
    return {"iotdb": {"connected": connected, "connect_s": connect_s, "rss_before_mib": before / 1024,
                      "rss_after_mib": after / 1024, "rss_delta_mib": (after - before) / 1024,
                      "kib_per_connection": (after - before) / max(1, connected), "errors": errors}}


WORKLOADS = {"a": workload_a, "b": workload_b, "c": workload_c}


# ---------------------------------------------------------------------------------------------- reporting

def summarize_profile(path: Path, top: int = 15) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[list]:
        return [[name, round(100 * n / max(1, total), 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "self_pct": share(own), "inclusive_pct": share(inclusive)}


def _short(frame: str) -> str:
    """``func (/long/path/pkg/mod.py:123)`` -> ``pkg/mod.py:func``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = Path(file).parts
    return f"{'/'.join(parts[-2:])}:{name}" if parts else name


def print_table(results: dict) -> None:
    rows = [("run", "target", "msgs/s", "points/s", "p50 ms", "p99 ms", "srv CPU%", "srv us/msg", "loop%", "gen CPU%",
             "host%", "fsync ms", "check")]
    for name in ("a", "b"):
        for run, out in enumerate(results.get(name, []), 1):
            for target in ("iotdb", "mosquitto"):
                r = out.get(target)
                if r is None:
                    continue
                check = ""
                if "verified" in r:
                    check = f"stored {r['stored_points']:,}/{r['expected_points']:,} " + (
                        "OK" if r["verified"] else "MISMATCH")
                rows.append((f"{name}{run}", target, f"{r['msgs_per_s']:,.0f}", f"{r['points_per_s']:,.0f}",
                             f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['server_cpu_pct']:.0f}",
                             f"{r['server_us_per_msg']:.2f}", f"{r['server_loop_cpu_pct']:.0f}",
                             f"{r['loadgen_cpu_pct']:.0f}",
                             f"{r['host_busy_pct']:.0f}/{r['host_cpus_pct']:.0f}", f"{r['fsync_p50_ms']:.2f}", check))
            if "ratio" in out:
                rows.append((f"{name}{run}", "iotdb/mosq", f"{out['ratio']:.3f}", "", "", "", "", "", "", "", "", "",
                             ""))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    if len(rows) > 1:
        for row in rows:
            print("  ".join(str(cell).rjust(widths[i]) for i, cell in enumerate(row)))
    for run, out in enumerate(results.get("c", []), 1):
        r = out["iotdb"]
        print(f"c{run} idle clients: {r['connected']} connected in {r['connect_s']:.2f} s; server VmRSS "
              f"{r['rss_before_mib']:.1f} MiB -> {r['rss_after_mib']:.1f} MiB "
              f"(+{r['rss_delta_mib']:.1f} MiB, {r['kib_per_connection']:.1f} KiB/connection)")
    for name in ("a", "b"):
        for run, out in enumerate(results.get(name, []), 1):
            for target, r in out.items():
                if isinstance(r, dict) and r.get("errors"):
                    print(f"{name}{run} {target} errors: {r['errors'][:5]}")
                if isinstance(r, dict) and "profile" in r:
                    print_profile(f"{name}{run} {target}", r["profile"])
    summary = summarize(results)
    if summary:
        print("summary (median [min-max] over runs):")
        for key, (median, low, high) in summary.items():
            print(f"  {key}: {median:,.3f} [{low:,.3f} - {high:,.3f}]")


def print_profile(label: str, profile: dict) -> None:
    print(f"{label} py-spy profile ({profile['mode']}), {profile['samples']} samples:")
    print("  self%   function")
    for name, share in profile["self_pct"]:
        print(f"  {share:5.1f}   {name}")
    print("  incl%   function")
    for name, share in profile["inclusive_pct"]:
        print(f"  {share:5.1f}   {name}")


def summarize(results: dict) -> dict[str, tuple[float, float, float]]:
    series: dict[str, list[float]] = {}
    for out in results.get("a", []):
        series.setdefault("a iotdb msgs/s", []).append(out["iotdb"]["msgs_per_s"])
        series.setdefault("a iotdb server CPU us/msg", []).append(out["iotdb"]["server_us_per_msg"])
        if "mosquitto" in out:
            series.setdefault("a mosquitto msgs/s", []).append(out["mosquitto"]["msgs_per_s"])
            series.setdefault("a mosquitto server CPU us/msg", []).append(out["mosquitto"]["server_us_per_msg"])
            series.setdefault("a ratio", []).append(out["ratio"])
    for out in results.get("b", []):
        series.setdefault("b iotdb points/s", []).append(out["iotdb"]["points_per_s"])
    for out in results.get("c", []):
        series.setdefault("c rss after MiB", []).append(out["iotdb"]["rss_after_mib"])
    return {key: (statistics.median(v), min(v), max(v)) for key, v in series.items()}


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["a", "b", "c", "all"], default="all")
    parser.add_argument("--clients", type=int, default=10, help="publishing clients (default 10)")
    parser.add_argument("--inflight", type=int, default=100, help="QoS 1 publishes in flight per client (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured warm-up before the window (default 2)")
    parser.add_argument("--drain", type=float, default=30.0, help="most seconds to wait for the last acks (default 30)")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--pool-size", type=int, default=None, help="mqtt_handler_pool_size (default: server's)")
    parser.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default=None,
                        help="mqtt_event_loop (default: the server's, auto)")
    parser.add_argument("--wal-mode", choices=["SYNC", "ASYNC", "DISABLE"], default="SYNC")
    parser.add_argument("--disable-plugins", metavar="NAMES", default=None,
                        help="IOTDB_DISABLE_PLUGINS of the server (e.g. bounds: the installed example plugin's write "
                             "hook turns every tablet into rows)")
    parser.add_argument("--idle-clients", type=int, default=1000, help="clients of workload c (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each workload (default 1)")
    parser.add_argument("--no-mosquitto", action="store_true", help="skip the Mosquitto reference in workload a")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server in workloads a, b; keep raw stacks in DIR")
    parser.add_argument("--profile-mode", choices=["gil", "wall"], default="gil",
                        help="gil: only the thread holding the GIL (CPU); wall: every thread, waits included")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (default 100)")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary data directories")
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 600:
        parser.error("--seconds must be in (0, 600]")
    if not 1 <= args.inflight <= 65_535:
        parser.error("--inflight must be 1-65535")
    raise_nofile_limit()  # inherited by the server and the generator processes
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    names = ["a", "b", "c"] if args.workload == "all" else [args.workload]
    print(f"{time.strftime('%H:%M:%S')} mqtt_bench: workloads {','.join(names)}, {args.repeat} run(s), "
          f"{args.clients} clients x {args.inflight} in flight, {args.warmup:g}+{args.seconds:g} s, pool size "
          f"{args.pool_size or 'default'}, wal_mode {args.wal_mode}, {os.cpu_count()} CPUs", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-bench-", dir=args.dir))
    args.probe_dir = workdir
    results: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                              if k != "probe_dir"},
                     "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                     "started_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        for run in range(1, args.repeat + 1):
            for name in names:
                started = time.monotonic()
                out = WORKLOADS[name](args, workdir, run)
                results.setdefault(name, []).append(out)
                print(f"[{name}{run} done in {time.monotonic() - started:.0f} s, load average "
                      f"{os.getloadavg()[0]:.2f}]", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    print_table(results)
    if args.json:
        for name in ("a", "b"):
            for out in results.get(name, []):
                for r in out.values():
                    if isinstance(r, dict):
                        r.pop("per_client_sent", None)
        args.json.write_text(json.dumps(results, indent=2))
    failed = any(not out["iotdb"].get("verified", True) for name in ("a", "b") for out in results.get(name, []))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
