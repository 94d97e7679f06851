"""MQTT broker benchmark: ``iotdb serve`` against Mosquitto in the same run, each workload on a fresh server.

Run from the project root::

    python -m bench.broker_bench --json broker-bench.json
    python -m bench.broker_bench --quick                        # smoke run, about a minute

Workloads (issue 9, "Performance"):

fanout0 / fanout1
    1 publisher (QoS 1, ``--fanout-inflight`` publishes in flight, the single-row JSON payloads of
    ``mqtt_bench``, so iotdb also stores them) on ``root/sg/d0``; ``--fanout-subs`` subscribers of that topic at
    QoS 0 (fanout0) or QoS 1 (fanout1, every delivery acknowledged). Delivered messages/s summed over the
    subscribers.
fanin
    ``--fanin-pubs`` publishers (``--fanin-inflight`` each) on ``root/sg/d<n>``; 1 subscriber of ``#`` at QoS 1.
    Delivered/s; for iotdb every acknowledged publish must also be stored (points counted after the stop).
shared
    ``--shared-pubs`` publishers; ``--shared-members`` members of ``$share/g/root/sg/+`` at QoS 1. Delivered/s.
match<N>
    N wildcard subscriptions (``fleet/{i}/+/temp``, ``fleet/{i}/#``, ``+/{i}/alarm``, ``$share/g/fleet/+/{i}/set``)
    held by N/100 subscriber connections (at least 2); one publisher with a fixed window of ``--match-inflight``
    QoS 1 publishes to ``fleet/{j}/dev/temp`` for subscribed ``j``, so every publish has 2 deliveries whatever N.
    Reports publishes/s, time per publish (1/rate), p50 publish-to-ack, and the server's CPU per publish.
    iotdb runs it with ``mqtt_ingest_topics=root/#`` so these topics are routed, not stored: the figure is the
    broker's work, not the WAL's.
idle
    ``--idle-clients`` clients each holding 10 wildcard subscriptions: server VmRSS.

Only loopback traffic; every run is bounded by ``--warmup`` + ``--seconds`` + ``--drain`` and by time-outs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.broker_loadgen import subscribe_worker, topic_publish_worker
from bench.mqtt_bench import (
    _SPAWN,
    Mosquitto,
    count_points,
    host_busy,
    print_profile,
    rss_kib,
    summarize_profile,
    thread_cpu,
)
from bench.mqtt_loadgen import SHAPES, publish_worker, raise_nofile_limit
from iotdb_core.testing.server import ServerProcess

MATCH_SHAPES = ("fleet/{i}/+/temp", "fleet/{i}/#", "+/{i}/alarm", "$share/g/fleet/+/{i}/set")
RATIO_BAR = 0.5
RSS_BAR_MB = 200.0
FLAT_BAR = 2.0

SubClients = list[tuple[str, list[tuple[str, int]]]]


# ---------------------------------------------------------------------------------------------- servers

class Target:
    """One fresh server of a run: iotdb serve or Mosquitto."""

    def __init__(self, name: str, directory: Path, args: argparse.Namespace,
                 properties: dict[str, object] | None = None) -> None:
        self.name = name
        self.iotdb: ServerProcess | None = None
        self.mosquitto: Mosquitto | None = None
        directory.mkdir(parents=True, exist_ok=True)
        if name == "iotdb":
            settings: dict[str, object] = {"mqtt_allow_anonymous": "true", "wal_mode": args.wal_mode}
            if args.pool_size is not None:
                settings["mqtt_handler_pool_size"] = args.pool_size
            settings.update(properties or {})
            self.iotdb = ServerProcess(directory, settings).start()
            self.host, self.port, self.pid = self.iotdb.host, self.iotdb.port, self.iotdb.process.pid
        else:
            self.mosquitto = Mosquitto(directory)
            self.host, self.port, self.pid = self.mosquitto.host, self.mosquitto.port, self.mosquitto.pid

    def stop(self) -> int | None:
        if self.iotdb is not None:
            return self.iotdb.stop(timeout=120)
        assert self.mosquitto is not None
        self.mosquitto.stop()
        return None


# ---------------------------------------------------------------------------------------------- one run

def _spawn(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    parent, child = _SPAWN.Pipe()
    process = _SPAWN.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    return parent, process


def _expect(pipe: Any, seconds: float, what: str) -> Any:
    if not pipe.poll(seconds):
        raise RuntimeError(f"{what} did not answer within {seconds:.0f} s")
    return pipe.recv()


def _split(items: list, parts: int) -> list[list]:
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


def run_load(target: Target, subscribers: SubClients, publishers: list[tuple[Callable[..., None], tuple]],
             args: argparse.Namespace, profile_out: Path | None = None) -> dict:
    """Subscribe, publish for warm-up + window, drain; count deliveries in the window. Bounded in time."""
    sub_pipes, processes = [], []
    pub_pipes = []
    try:
        ready_subs = granted = refused = 0
        sub_errors: list[str] = []
        connect_started = time.monotonic()
        for group in _split(subscribers, args.sub_procs):
            pipe, process = _spawn(subscribe_worker, target.host, target.port, group)
            sub_pipes.append(pipe)
            processes.append(process)
        for pipe in sub_pipes:
            _, connected, ok, bad, _seconds, errors = _expect(pipe, 180, "subscriber worker")
            ready_subs += connected
            granted += ok
            refused += bad
            sub_errors += errors
        subscribe_s = time.monotonic() - connect_started
        for worker, worker_args in publishers:
            pipe, process = _spawn(worker, target.host, target.port, *worker_args)
            pub_pipes.append(pipe)
            processes.append(process)
        for pipe in pub_pipes:
            _expect(pipe, 60, "publisher worker")
        start = time.monotonic() + 0.05
        warm_end, end = start + args.warmup, start + args.warmup + args.seconds
        for pipe in sub_pipes:
            pipe.send(("go", warm_end, end))
        for pipe in pub_pipes:
            pipe.send(("go", warm_end, end, args.drain))
        time.sleep(max(0.0, warm_end - time.monotonic()))
        profiler = None
        if profile_out is not None:
            profiler = subprocess.Popen(
                [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record",
                 "--pid", str(target.pid), "--duration", str(max(1, int(args.seconds))),
                 "--rate", "100", "--nonblocking", "--gil", "--format", "raw", "-o", str(profile_out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        gen_pids = [p.pid for p in processes]
        server0, host0 = thread_cpu(target.pid), host_busy()
        gen0 = [sum(thread_cpu(pid).values()) for pid in gen_pids]
        time.sleep(max(0.0, end - time.monotonic()))
        server1, host1 = thread_cpu(target.pid), host_busy()
        gen1 = [sum(thread_cpu(pid).values()) for pid in gen_pids]
        rss = rss_kib(target.pid)
        pub_results = [_expect(pipe, args.drain + 60, "publisher worker") for pipe in pub_pipes]
        for pipe in sub_pipes:
            pipe.send(("stop",))
        sub_results = [_expect(pipe, 60, "subscriber worker") for pipe in sub_pipes]
        if profiler is not None:
            _, err = profiler.communicate(timeout=60)
            if profiler.returncode:
                print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    seconds = args.seconds
    latencies = array("d")
    for result in pub_results:
        latencies.frombytes(result["latencies"])
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    server_cpu = sum(server1.values()) - sum(v for k, v in server0.items() if k in server1)
    gen_each = [b - a for a, b in zip(gen0, gen1, strict=True)]
    gen_cpu = sum(gen_each)
    sub_cpu = sum(gen_each[:len(sub_pipes)])
    busy = host1[0] - host0[0]
    acked_window = sum(r["acked_window"] for r in pub_results)
    return {
        "subscribers": ready_subs, "subscriptions_granted": granted, "subscriptions_refused": refused,
        "subscribe_s": subscribe_s,
        "delivered_per_s": sum(r["received_window"] for r in sub_results) / seconds,
        "delivered_total": sum(r["received"] for r in sub_results),
        "acks_sent_by_subscribers": sum(r["acks_sent"] for r in sub_results),
        "published_per_s": acked_window / seconds,
        "acked_window": acked_window,
        "sent": sum(r["sent"] for r in pub_results), "acked": sum(r["acked"] for r in pub_results),
        "unacked_after_drain": sum(r["outstanding"] for r in pub_results),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        "server_cpu_pct": 100 * server_cpu / seconds,
        "server_cpu_us_per_publish": 1e6 * server_cpu / acked_window if acked_window else float("nan"),
        "server_rss_mib": rss / 1024,
        "loadgen_cpu_pct": 100 * gen_cpu / seconds,
        "subscriber_cpu_pct": 100 * sub_cpu / seconds, "publisher_cpu_pct": 100 * (gen_cpu - sub_cpu) / seconds,
        "host_busy_pct": 100 * busy / seconds, "host_cpus_pct": 100 * (host1[1] - host0[1]) / seconds,
        "others_cpu_pct": 100 * max(0.0, busy - server_cpu - gen_cpu) / seconds,
        "errors": (sub_errors + [e for r in sub_results + pub_results for e in r["errors"]])[:20],
    }


# ---------------------------------------------------------------------------------------------- workloads

def _single_publishers(count: int, inflight: int, procs: int, tag: str) -> list[tuple[Callable[..., None], tuple]]:
    return [(publish_worker, (group, "single", inflight, tag)) for group in _split(list(range(count)), procs)]


def fanout(qos: int) -> Callable[[str, Path, argparse.Namespace], dict]:
    def run(name: str, directory: Path, args: argparse.Namespace) -> dict:
        subscribers = [(f"fan-{qos}-{i}", [("root/sg/d0", qos)]) for i in range(args.fanout_subs)]
        return measure(name, directory, args, subscribers,
                       _single_publishers(1, args.fanout_inflight, 1, f"fo{qos}"),
                       profile=args.profile is not None)
    return run


def fanin(name: str, directory: Path, args: argparse.Namespace) -> dict:
    return measure(name, directory, args, [("fanin-sub", [("#", 1)])],
                   _single_publishers(args.fanin_pubs, args.fanin_inflight, args.pub_procs, "fi"), check=True)


def shared(name: str, directory: Path, args: argparse.Namespace) -> dict:
    subscribers = [(f"member-{i}", [("$share/g/root/sg/+", 1)]) for i in range(args.shared_members)]
    return measure(name, directory, args, subscribers,
                   _single_publishers(args.shared_pubs, args.shared_inflight, args.pub_procs, "sh"))


def match_subscribers(size: int) -> tuple[SubClients, list[str]]:
    """``size`` wildcard subscriptions over ``max(2, size // 100)`` connections, and the topics to publish.

    The two filters matching ``fleet/{j}/dev/temp`` land on different connections, so every size makes
    two copies per publish (one connection holding both would get one copy).
    """
    connections = max(2, size // 100)
    filters: list[list[tuple[str, int]]] = [[] for _ in range(connections)]
    for index in range(size):
        shape = MATCH_SHAPES[index % len(MATCH_SHAPES)]
        filters[index % connections].append((shape.format(i=index // len(MATCH_SHAPES)), 0))
    devices = max(1, size // len(MATCH_SHAPES))
    return ([(f"match-{size}-{c}", f) for c, f in enumerate(filters)],
            [f"fleet/{j}/dev/temp" for j in range(devices)])


def match(size: int) -> Callable[[str, Path, argparse.Namespace], dict]:
    def run(name: str, directory: Path, args: argparse.Namespace) -> dict:
        subscribers, topics = match_subscribers(size)
        return measure(name, directory, args, subscribers,
                       [(topic_publish_worker, (topics, args.match_inflight, f"match-pub-{size}"))],
                       properties={"mqtt_ingest_topics": "root/#"})
    return run


def idle(name: str, directory: Path, args: argparse.Namespace) -> dict:
    subscribers = [(f"idle-{c}", [(f"idle/{c}/{k}/+", 1) if k % 2 else (f"idle/{c}/{k}/#", 0) for k in range(10)])
                   for c in range(args.idle_clients)]
    out: dict = {}
    for target_name in _targets(args):
        target = Target(target_name, directory / target_name, args)
        try:
            time.sleep(1.0)
            before = rss_kib(target.pid)
            out[target_name] = run_load(target, subscribers, [], _idle_args(args))
            out[target_name]["rss_before_mib"] = before / 1024
        finally:
            target.stop()
    return out


def _idle_args(args: argparse.Namespace) -> argparse.Namespace:
    """Idle clients: no window to speak of, the RSS is read 2 s after the last SUBACK."""
    return argparse.Namespace(**{**vars(args), "warmup": 2.0, "seconds": 1.0})


def _targets(args: argparse.Namespace) -> list[str]:
    return ["iotdb"] if args.no_mosquitto else ["iotdb", "mosquitto"]


def measure(name: str, directory: Path, args: argparse.Namespace, subscribers: SubClients,
            publishers: list[tuple[Callable[..., None], tuple]], *, check: bool = False, profile: bool = False,
            properties: dict[str, object] | None = None) -> dict:
    out: dict = {}
    for target_name in _targets(args):
        target = Target(target_name, directory / target_name, args, properties if target_name == "iotdb" else None)
        profile_out = directory / f"{name}.pyspy.txt" if profile and target_name == "iotdb" else None
        try:
            result = run_load(target, subscribers, publishers, args, profile_out)
        finally:
            code = target.stop()
        if target.iotdb is not None and check:
            series, points = count_points(target.iotdb.data_dir)
            expected = result["acked"] * SHAPES["single"].points_per_message
            result.update(server_exit=code, stored_series=series, stored_points=points, expected_points=expected,
                          verified=points == expected and result["sent"] == result["acked"])
        if profile_out is not None and profile_out.exists():
            result["profile"] = summarize_profile(profile_out, top=20)
            result["profile"]["mode"] = "gil"
            shutil.copy(profile_out, Path(args.profile) / profile_out.name)
        out[target_name] = result
    if "mosquitto" in out and out["mosquitto"]["delivered_per_s"]:
        out["ratio"] = out["iotdb"]["delivered_per_s"] / out["mosquitto"]["delivered_per_s"]
    return out


def workloads(args: argparse.Namespace) -> dict[str, Callable[[str, Path, argparse.Namespace], dict]]:
    table: dict[str, Callable[[str, Path, argparse.Namespace], dict]] = {
        "fanout0": fanout(0), "fanout1": fanout(1), "fanin": fanin, "shared": shared}
    for size in args.match_sizes:
        table[f"match{size}"] = match(size)
    table["idle"] = idle
    return table


# ---------------------------------------------------------------------------------------------- report

def verdicts(results: dict, args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("fanout0", "fanout1", "fanin", "shared"):
        ratio = results.get(name, {}).get("ratio")
        if ratio is not None:
            out[name] = f"ratio {ratio:.2f} (bar >= {RATIO_BAR}): {'met' if ratio >= RATIO_BAR else 'NOT met'}"
    if "fanin" in results and "verified" in results["fanin"]["iotdb"]:
        r = results["fanin"]["iotdb"]
        out["fanin stored"] = (f"{r['stored_points']:,} points stored for {r['acked']:,} acked publishes "
                               f"({r['expected_points']:,} expected): {'OK' if r['verified'] else 'MISMATCH'}")
    sizes = [s for s in args.match_sizes if f"match{s}" in results]
    if len(sizes) > 1:
        for target in _targets(args):
            times = {s: 1e6 / max(1e-9, results[f"match{s}"][target]["published_per_s"]) for s in sizes}
            cpu = {s: results[f"match{s}"][target]["server_cpu_us_per_publish"] for s in sizes}
            spread = max(times.values()) / min(times.values())
            cpu_spread = max(cpu.values()) / min(cpu.values())
            out[f"match {target}"] = (
                "time per publish " + ", ".join(f"{s:,}: {times[s]:.1f} us" for s in sizes)
                + f" (max/min {spread:.2f}x); server CPU per publish "
                + ", ".join(f"{s:,}: {cpu[s]:.1f} us" for s in sizes) + f" (max/min {cpu_spread:.2f}x); "
                + f"bar <= {FLAT_BAR}x: " + ("met" if max(spread, cpu_spread) <= FLAT_BAR else "NOT met"))
    if "idle" in results:
        r = results["idle"]["iotdb"]
        mb = r["server_rss_mib"] * 1.048576
        out["idle"] = (f"{r['subscribers']} clients, {r['subscriptions_granted']} subscriptions: VmRSS "
                       f"{r['rss_before_mib']:.1f} -> {r['server_rss_mib']:.1f} MiB ({mb:.0f} MB, bar <= "
                       f"{RSS_BAR_MB:.0f} MB): {'met' if mb <= RSS_BAR_MB else 'NOT met'}")
    return out


def print_table(results: dict, args: argparse.Namespace) -> None:
    rows = [("workload", "target", "delivered/s", "published/s", "dlv/pub", "p50 ms", "p99 ms", "srv CPU%",
             "srv us/pub", "RSS MiB", "gen CPU% sub+pub", "host%", "others%", "ratio")]
    for name, out in results.items():
        if not isinstance(out, dict) or "iotdb" not in out:
            continue
        for target in ("iotdb", "mosquitto"):
            r = out.get(target)
            if r is None:
                continue
            ratio = f"{out['ratio']:.2f}" if target == "iotdb" and "ratio" in out else ""
            per_publish = r["delivered_per_s"] / r["published_per_s"] if r["published_per_s"] else float("nan")
            rows.append((name, target, f"{r['delivered_per_s']:,.0f}", f"{r['published_per_s']:,.0f}",
                         f"{per_publish:.1f}",
                         f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['server_cpu_pct']:.0f}",
                         f"{r['server_cpu_us_per_publish']:.1f}", f"{r['server_rss_mib']:.1f}",
                         f"{r['subscriber_cpu_pct']:.0f}+{r['publisher_cpu_pct']:.0f}",
                         f"{r['host_busy_pct']:.0f}/{r['host_cpus_pct']:.0f}",
                         f"{r['others_cpu_pct']:.0f}", ratio))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).rjust(widths[i]) for i, cell in enumerate(row)))
    for name, out in results.items():
        if isinstance(out, dict):
            for target in ("iotdb", "mosquitto"):
                r = out.get(target) if "iotdb" in out else None
                if r and r.get("errors"):
                    print(f"{name} {target} errors: {r['errors'][:5]}")
                if r and r.get("subscriptions_refused"):
                    print(f"{name} {target}: {r['subscriptions_refused']} subscriptions refused")
                if r and "profile" in r:
                    print_profile(f"{name} {target}", r["profile"])
    for key, text in verdicts(results, args).items():
        print(f"{key}: {text}")


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="all",
                        help="comma-separated: fanout0,fanout1,fanin,shared,match,idle (default all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: short windows, fewer clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured warm-up before the window (default 2)")
    parser.add_argument("--drain", type=float, default=15.0, help="most seconds to wait for the last acks (default 15)")
    parser.add_argument("--fanout-subs", type=int, default=100)
    parser.add_argument("--fanout-inflight", type=int, default=20, help="publisher window of fan-out (default 20)")
    parser.add_argument("--fanin-pubs", type=int, default=100)
    parser.add_argument("--fanin-inflight", type=int, default=10, help="window of each fan-in publisher (default 10)")
    parser.add_argument("--shared-pubs", type=int, default=10)
    parser.add_argument("--shared-members", type=int, default=4)
    parser.add_argument("--shared-inflight", type=int, default=20)
    parser.add_argument("--match-sizes", default="10,100,1000,10000")
    parser.add_argument("--match-inflight", type=int, default=10, help="the matching publisher's window (default 10)")
    parser.add_argument("--idle-clients", type=int, default=1000)
    parser.add_argument("--sub-procs", type=int, default=3, help="subscriber worker processes (default 3)")
    parser.add_argument("--pub-procs", type=int, default=2, help="publisher worker processes (default 2)")
    parser.add_argument("--pool-size", type=int, default=None, help="mqtt_handler_pool_size (default: server's)")
    parser.add_argument("--wal-mode", choices=["SYNC", "ASYNC", "DISABLE"], default="SYNC")
    parser.add_argument("--no-mosquitto", action="store_true", help="iotdb only (no ratios)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy (--gil) the iotdb server during fan-out; raw stacks in DIR")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary data directories")
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.drain = 2.0, 1.0, 10.0
        args.fanout_subs, args.fanin_pubs, args.idle_clients = 20, 20, 100
        args.match_sizes = "10,1000"
    if not 0 < args.seconds <= 120:
        parser.error("--seconds must be in (0, 120]")
    args.match_sizes = [int(s) for s in str(args.match_sizes).split(",") if s]
    raise_nofile_limit()  # inherited by the servers and the worker processes
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    table = workloads(args)
    wanted = list(table) if args.workloads == "all" else [
        name for part in args.workloads.split(",") for name in table
        if name == part or (part == "match" and name.startswith("match"))]
    print(f"{time.strftime('%H:%M:%S')} broker_bench: {','.join(wanted)}; {args.warmup:g}+{args.seconds:g} s "
          f"windows, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-", dir=args.dir))
    results: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                     "started_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        for name in wanted:
            started = time.monotonic()
            results[name] = table[name](name, workdir / name, args)
            print(f"[{name} done in {time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.2f}]",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    print_table(results, args)
    results["verdicts"] = verdicts(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    failed = "fanin" in results and not results["fanin"]["iotdb"].get("verified", True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
