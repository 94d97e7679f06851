"""Scale-out benchmark: upstream ingestion through Mosquitto against direct ingestion, and forwarding lag.

Run from the project root::

    python -m bench.scaleout_bench --part all --json scaleout-bench.json

Parts (each run gets fresh servers, brokers and data directories on loopback):

cpu. Workload (a) of ``bench/mqtt_bench.py`` (QoS 1 single-row payloads, ``--clients`` x ``--inflight``
     outstanding, from ``bench/mqtt_loadgen.py``) three ways:
     ``direct``   the load generator publishes to ``iotdb serve``;
     ``upstream`` it publishes to Mosquitto (persistence off, queues unbounded) and one ``iotdb serve`` ingests
                  ``root/#`` from it as an upstream client (MQTT 5, QoS 1);
     ``shared2``  the same with two ``iotdb serve`` nodes in one shared-subscription group;
     ``*-backlog`` the nodes are stopped (SIGSTOP) while the publishers fill Mosquitto's queues for the window,
                  then resumed: measured is the nodes draining that backlog with no publisher running, which is
                  what a node does when the broker and the devices are on other machines.
     For each: messages stored per second by the node(s) in the measured window, and server CPU per stored message
     (CPU seconds of the node processes over the window / messages they acknowledged in it), with the CPU split
     between Mosquitto, the nodes and the load generator. After the window the nodes drain what Mosquitto queued and
     the stored points are counted (must be 2 x the messages Mosquitto acknowledged to the publishers).
forward. An edge ``iotdb serve`` forwards to a second ``iotdb serve`` (native RPC); ``--writers`` processes write
     tablets (``--rows`` rows x 10 DOUBLE per call) to the edge through ``apache-iotdb``'s Session, paced to
     ``--rate`` points/s in total, for ``--forward-seconds``; the edge's ``/metrics`` is sampled every second
     (backlog points, lag seconds). Reported: the write rate reached, the forwarded rate, lag over the run, the
     time to drain after the writers stop, and the target's point count (must equal the points written).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mqtt_bench import (
    _free_port,
    count_points,
    host_busy,
    print_profile,
    probe_fsync,
    run_publish,
    summarize_profile,
    thread_cpu,
)
from bench.mqtt_loadgen import publish_worker
from iotdb_core.cli.status_cmd import fetch_metrics, parse_metrics
from iotdb_core.testing.server import ServerProcess

MOSQUITTO = "/usr/sbin/mosquitto"
MODES = ("direct", "upstream", "shared2", "upstream-backlog", "shared2-backlog")
_SPAWN = multiprocessing.get_context("spawn")


# ---------------------------------------------------------------------------------------------- processes

class Broker:
    """Mosquitto on a free loopback port: persistence off (as in bench/mqtt_bench.py), queues unbounded."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        conf = directory / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_type none\nlog_dest none\nset_tcp_nodelay true\nmax_connections -1\n"
                        "max_queued_messages 0\nmax_queued_bytes 0\n")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(0.3)
        if self.process.poll() is not None:
            raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def metric(server: ServerProcess, name: str) -> float:
    return parse_metrics(fetch_metrics(server.rest_url, "root", "root", 10)).get(name)


def cpu_seconds(pid: int) -> float:
    return sum(thread_cpu(pid).values())


class Profiler:
    """py-spy recording one process for ``seconds`` (raw collapsed stacks), when ``--profile DIR`` is given."""

    def __init__(self, args: argparse.Namespace, pid: int, name: str, seconds: float) -> None:
        self.path = Path(args.profile) / f"{name}.pyspy.txt" if args.profile else None
        self.process: subprocess.Popen[bytes] | None = None
        if self.path is not None:
            command = ["py-spy", "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                       "--rate", "100", "--nonblocking", "--gil", "--format", "raw", "-o", str(self.path)]
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self, label: str) -> None:
        """Wait for py-spy and print the hottest functions."""
        if self.process is None or self.path is None:
            return
        _, err = self.process.communicate(timeout=60)
        if self.process.returncode or not self.path.exists():
            print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
            return
        print_profile(label, {"mode": "gil", **summarize_profile(self.path, top=25)})


# ---------------------------------------------------------------------------------------------- part cpu

def run_direct(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess(workdir / "direct", {"mqtt_allow_anonymous": "true", "mqtt_ws_port": -1}).start()
    try:
        assert server.process is not None
        profile = Path(args.profile) / f"direct{args.run}.pyspy.txt" if args.profile else None
        result = run_publish(server.host, server.port, server.process.pid, "single", args, "direct", profile)
        if profile is not None and profile.exists():
            print_profile("direct", {"mode": "gil", **summarize_profile(profile, top=25)})
    finally:
        server.stop(timeout=120)
    _, points = count_points(server.data_dir)
    rate = result["msgs_per_s"]
    return {"mode": "direct", "nodes": 1, "stored_msgs_per_s": rate,
            "node_cpu_pct": result["server_cpu_pct"], "broker_cpu_pct": 0.0,
            "loadgen_cpu_pct": result["loadgen_cpu_pct"],
            "cpu_us_per_msg": 1e6 * result["server_cpu_pct"] / 100 / rate if rate else float("nan"),
            "host_busy_pct": result["host_busy_pct"], "fsync_p50_ms": result["fsync_p50_ms"],
            "verified": points == 2 * result["acked"] and result["sent"] == result["acked"]}


def run_upstream(workdir: Path, args: argparse.Namespace, nodes_count: int, *, backlog: bool = False) -> dict[str, Any]:
    """Publishers and nodes at once; with ``backlog`` the nodes are stopped (SIGSTOP) while the publishers fill
    Mosquitto's queues, then resumed: the window is the nodes draining the backlog, without publishers."""
    tag = f"up{nodes_count}{'b' if backlog else ''}"
    broker = Broker(workdir / f"{tag}-broker")
    nodes: list[ServerProcess] = []
    try:
        for index in range(nodes_count):
            properties: dict[str, object] = {
                "mqtt_ws_port": -1, "mqtt_upstream_uris": f"mqtt://127.0.0.1:{broker.port}",
                "mqtt_upstream_topics": "root/#", "mqtt_upstream_qos": 1,
                "mqtt_upstream_share_group": "bench" if nodes_count > 1 else "",
                "mqtt_upstream_receive_maximum": args.receive_maximum,
            }
            node = ServerProcess(workdir / f"{tag}-node{index}", properties).start()
            nodes.append(node)
        deadline = time.monotonic() + 30
        while any("subscribed at" not in node.output for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("a node did not subscribe")
            time.sleep(0.1)
        fsync_ms = probe_fsync(args.probe_dir)
        if backlog:
            return _drain_window(broker, nodes, args, tag, fsync_ms)
        pipes, workers = _start_publishers(broker, args, tag)
        start = time.monotonic() + 0.05
        warm_end, end = start + args.warmup, start + args.warmup + args.seconds
        for pipe in pipes:
            pipe.send(("go", warm_end, end, args.drain))
        time.sleep(max(0.0, warm_end - time.monotonic()))
        profiler = Profiler(args, nodes[0].process.pid, f"{tag}-{args.run}", args.seconds)  # type: ignore[union-attr]
        acked0 = [metric(node, "iotdb_mqtt_upstream_messages_acknowledged") for node in nodes]
        cpu0 = [cpu_seconds(node.process.pid) for node in nodes]  # type: ignore[union-attr]
        broker0, host0 = cpu_seconds(broker.process.pid), host_busy()
        time.sleep(max(0.0, end - time.monotonic()))
        acked1 = [metric(node, "iotdb_mqtt_upstream_messages_acknowledged") for node in nodes]
        cpu1 = [cpu_seconds(node.process.pid) for node in nodes]  # type: ignore[union-attr]
        broker1, host1 = cpu_seconds(broker.process.pid), host_busy()
        window = args.seconds
        results = [pipe.recv() for pipe in pipes if pipe.poll(args.drain + 60)]
        for worker in workers:
            worker.join(10)
        profiler.finish(f"{tag} node 0")
        published = sum(r["acked"] for r in results)
        drain_deadline = time.monotonic() + args.node_drain
        while sum(metric(node, "iotdb_mqtt_upstream_messages_acknowledged") for node in nodes) < published:
            if time.monotonic() > drain_deadline:
                break
            time.sleep(0.5)
        per_node = [(b - a) / window for a, b in zip(acked0, acked1, strict=True)]
        node_cpu = [(b - a) / window for a, b in zip(cpu0, cpu1, strict=True)]
    finally:
        for node in nodes:
            node.stop(timeout=120)
        broker.stop()
    stored = sum(count_points(node.data_dir)[1] for node in nodes)
    rate = sum(per_node)
    return {"mode": "upstream" if nodes_count == 1 else f"shared{nodes_count}", "nodes": nodes_count,
            "stored_msgs_per_s": rate, "per_node_msgs_per_s": per_node,
            "published_msgs_per_s": sum(r["acked_window"] for r in results) / window,
            "node_cpu_pct": 100 * sum(node_cpu), "per_node_cpu_pct": [100 * c for c in node_cpu],
            "broker_cpu_pct": 100 * (broker1 - broker0) / window,
            "loadgen_cpu_pct": 100 * sum(r["cpu_s"] for r in results) / (args.warmup + args.seconds),
            "cpu_us_per_msg": 1e6 * sum(node_cpu) / rate if rate else float("nan"),
            "host_busy_pct": 100 * (host1[0] - host0[0]) / window, "fsync_p50_ms": fsync_ms,
            "published": published, "stored_points": stored, "verified": stored == 2 * published}


def _drain_window(broker: Broker, nodes: list[ServerProcess], args: argparse.Namespace, tag: str,
                  fsync_ms: float) -> dict[str, Any]:
    pids = [node.process.pid for node in nodes]  # type: ignore[union-attr]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        published = _publish_for(broker, args, tag)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    profiler = Profiler(args, pids[0], f"{tag}-{args.run}", 3)
    cpu0, broker0, host0 = [cpu_seconds(pid) for pid in pids], cpu_seconds(broker.process.pid), host_busy()
    started = time.monotonic()
    while sum(metric(node, "iotdb_mqtt_upstream_messages_acknowledged") for node in nodes) < published:
        if time.monotonic() - started > args.node_drain:
            break
        time.sleep(0.2)
    window = time.monotonic() - started
    cpu1, broker1, host1 = [cpu_seconds(pid) for pid in pids], cpu_seconds(broker.process.pid), host_busy()
    profiler.finish(f"{tag} node 0 draining")
    per_node = [metric(node, "iotdb_mqtt_upstream_messages_acknowledged") for node in nodes]
    for node in nodes:
        node.stop(timeout=120)
    stored = sum(count_points(node.data_dir)[1] for node in nodes)
    node_cpu = [(b - a) / window for a, b in zip(cpu0, cpu1, strict=True)]
    rate = sum(per_node) / window
    return {"mode": f"{'upstream' if len(nodes) == 1 else f'shared{len(nodes)}'}-backlog", "nodes": len(nodes),
            "stored_msgs_per_s": rate, "per_node_msgs_per_s": [n / window for n in per_node],
            "node_cpu_pct": 100 * sum(node_cpu), "per_node_cpu_pct": [100 * c for c in node_cpu],
            "broker_cpu_pct": 100 * (broker1 - broker0) / window, "loadgen_cpu_pct": 0.0,
            "cpu_us_per_msg": 1e6 * sum(node_cpu) * window / sum(per_node) if sum(per_node) else float("nan"),
            "host_busy_pct": 100 * (host1[0] - host0[0]) / window, "fsync_p50_ms": fsync_ms,
            "published": published, "stored_points": stored, "verified": stored == 2 * published}


def _start_publishers(broker: Broker, args: argparse.Namespace,
                      tag: str) -> tuple[list[Connection], list[BaseProcess]]:
    """Start the load generator's processes (the clients split over ``--procs``) and wait until all connected;
    returns their pipes and processes."""
    procs = max(1, min(args.procs, args.clients))
    pipes: list[Connection] = []
    workers: list[BaseProcess] = []
    for group in ([i for i in range(args.clients) if i % procs == p] for p in range(procs)):
        parent, child = _SPAWN.Pipe()
        worker = _SPAWN.Process(target=publish_worker, args=(child, "127.0.0.1", broker.port, group, "single",
                                                             args.inflight, tag), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    for pipe in pipes:
        if not pipe.poll(60):
            raise RuntimeError("load generator did not connect")
        pipe.recv()
    return pipes, workers


def _publish_for(broker: Broker, args: argparse.Namespace, tag: str) -> int:
    """Run the load generator against the broker for warm-up + window; return the messages it acknowledged."""
    pipes, workers = _start_publishers(broker, args, tag)
    start = time.monotonic() + 0.05
    for pipe in pipes:
        pipe.send(("go", start + args.warmup, start + args.warmup + args.seconds, args.drain))
    results = [pipe.recv() for pipe in pipes if pipe.poll(args.warmup + args.seconds + args.drain + 60)]
    for worker in workers:
        worker.join(10)
    return sum(r["acked"] for r in results)


# ---------------------------------------------------------------------------------------------- part forward

def tablet_writer(port: int, device: str, rows: int, rate: float, seconds: float, conn: Any) -> None:
    """Write tablets of ``rows`` x 10 DOUBLE to ``device`` at about ``rate`` points/s for ``seconds``.

    The value columns are built once, in the wire's byte order, and only the timestamps change per call, so the
    writer's own CPU goes to the client library and the RPC rather than to making up data."""
    import numpy as np  # noqa: PLC0415 - in the spawned process
    from iotdb.Session import Session  # noqa: PLC0415
    from iotdb.utils.IoTDBConstants import TSDataType  # noqa: PLC0415
    from iotdb.utils.NumpyTablet import NumpyTablet  # noqa: PLC0415

    session = Session("127.0.0.1", port, "root", "root")
    session.open(False)
    columns = [f"s{i}" for i in range(10)]
    kinds = [TSDataType.DOUBLE] * 10
    per_call = rows * 10
    interval = per_call / rate
    base = np.arange(rows, dtype=np.float64) * 0.5
    values = [(base + i).astype(TSDataType.DOUBLE.np_dtype()) for i in range(10)]
    offsets = np.arange(rows, dtype=np.int64)
    calls = 0
    conn.send("ready")
    conn.recv()
    started, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - started < seconds:
        stamps = (offsets + calls * rows).astype(TSDataType.INT64.np_dtype())
        session.insert_tablet(NumpyTablet(device, columns, kinds, list(values), stamps))
        calls += 1
        pause = started + calls * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu0
    session.close()
    conn.send({"points": calls * per_call, "seconds": elapsed, "cpu_s": cpu})


#: The example distribution's ``bounds`` plugin (installed in a development checkout) implements
#: ``iotdb_before_write`` even without rules, which makes the engine turn every tablet into rows; a deployment
#: forwarding tablets would not run it, so the forward part measures without it.
FORWARD_ENV = {"IOTDB_DISABLE_PLUGINS": "bounds"}


def run_forward(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    target = ServerProcess(workdir / "fw-target", {"mqtt_ws_port": -1, "enable_mqtt_service": "false"},
                           env=FORWARD_ENV).start()
    edge = ServerProcess(workdir / "fw-edge", {
        "mqtt_ws_port": -1, "forward_target_nodes": f"127.0.0.1:{target.rpc_port}",
        "forward_batch_size": args.forward_batch}, env=FORWARD_ENV).start()
    samples: list[dict[str, float]] = []
    try:
        pipes, writers = [], []
        for index in range(args.writers):
            parent, child = _SPAWN.Pipe()
            writer = _SPAWN.Process(target=tablet_writer, args=(edge.rpc_port, f"root.bench.d{index}", args.rows,
                                                                args.rate / args.writers, args.forward_seconds, child),
                                    daemon=True)
            writer.start()
            pipes.append(parent)
            writers.append(writer)
        for pipe in pipes:
            pipe.recv()
        for pipe in pipes:
            pipe.send("go")
        started = time.monotonic()
        edge_cpu0, target_cpu0 = cpu_seconds(edge.process.pid), cpu_seconds(target.process.pid)  # type: ignore[union-attr]
        host0 = host_busy()
        while time.monotonic() - started < args.forward_seconds:
            time.sleep(1.0)
            figures = parse_metrics(fetch_metrics(edge.rest_url, "root", "root", 10))
            samples.append({"t": time.monotonic() - started,
                            "backlog_points": figures.get("iotdb_forward_backlog_points"),
                            "lag_s": figures.get("iotdb_forward_lag_seconds"),
                            "forwarded": figures.get("iotdb_forward_points_forwarded")})
        written = [pipe.recv() for pipe in pipes if pipe.poll(120)]
        window = time.monotonic() - started
        edge_cpu = cpu_seconds(edge.process.pid) - edge_cpu0  # type: ignore[union-attr]
        target_cpu = cpu_seconds(target.process.pid) - target_cpu0  # type: ignore[union-attr]
        host1 = host_busy()
        points = sum(w["points"] for w in written)
        drain_started = time.monotonic()
        while metric(edge, "iotdb_forward_backlog_points") > 0 and time.monotonic() - drain_started < args.node_drain:
            time.sleep(0.2)
        drain_s = time.monotonic() - drain_started
        forwarded = metric(edge, "iotdb_forward_points_forwarded")
    finally:
        edge.stop(timeout=120)
        target.stop(timeout=120)
    _, target_points = count_points(target.data_dir)
    lags = [s["lag_s"] for s in samples]
    backlogs = [s["backlog_points"] for s in samples]
    forwarded_in_run = samples[-1]["forwarded"] if samples else 0.0
    return {"written_points": points, "write_points_per_s": points / max(w["seconds"] for w in written),
            "forwarded_points_per_s_during_run": forwarded_in_run / window,
            "lag_s_p50": statistics.median(lags), "lag_s_max": max(lags), "lag_s_last": lags[-1],
            "backlog_points_max": max(backlogs), "drain_s": drain_s, "forwarded": forwarded,
            "target_points": target_points, "verified": target_points == points == forwarded,
            "edge_cpu_pct": 100 * edge_cpu / window, "target_cpu_pct": 100 * target_cpu / window,
            "writers_cpu_pct": 100 * sum(w["cpu_s"] for w in written) / max(w["seconds"] for w in written),
            "host_busy_pct": 100 * (host1[0] - host0[0]) / window, "samples": samples}


# ---------------------------------------------------------------------------------------------- main

def print_cpu(rows: list[dict[str, Any]]) -> None:
    """One line per mode and run; ``vs direct`` is the ratio to the direct run of the same repeat."""
    print(f"{'mode':16} {'nodes':>5} {'stored msg/s':>13} {'us CPU/msg':>11} {'vs direct':>9} {'nodes CPU%':>10} "
          f"{'mosq CPU%':>9} {'gen CPU%':>8} {'host%':>6} check")
    direct = {r["run"]: r["cpu_us_per_msg"] for r in rows if r["mode"] == "direct"}
    for r in rows:
        ratio = r["cpu_us_per_msg"] / direct[r["run"]] if r["run"] in direct else float("nan")
        print(f"{r['mode']:16} {r['nodes']:>5} {r['stored_msgs_per_s']:>13,.0f} {r['cpu_us_per_msg']:>11.1f} "
              f"{ratio:>9.2f} {r['node_cpu_pct']:>10.0f} {r['broker_cpu_pct']:>9.0f} {r['loadgen_cpu_pct']:>8.0f} "
              f"{r['host_busy_pct']:>6.0f} {'OK' if r['verified'] else 'MISMATCH'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["cpu", "forward", "all"], default="all")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window of part cpu (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--drain", type=float, default=30.0, help="wait for the publishers' last acks")
    parser.add_argument("--node-drain", type=float, default=120.0, help="wait for the nodes / the forwarder")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--receive-maximum", type=int, default=1000, help="mqtt_upstream_receive_maximum")
    parser.add_argument("--forward-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1_000_000.0, help="tablet points/s offered to the edge")
    parser.add_argument("--rows", type=int, default=1000, help="rows per tablet (10 DOUBLE columns)")
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--forward-batch", type=int, default=100_000, help="forward_batch_size of the edge")
    parser.add_argument("--modes", default=",".join(MODES), help="modes of part cpu, comma-separated (default all)")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="py-spy (--gil) the (first) node of each cpu mode during its window; raw stacks in DIR")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    args.wal_mode, args.pool_size, args.profile_mode, args.profile_rate = "SYNC", None, "gil", 100
    workdir = Path(tempfile.mkdtemp(prefix="scaleout-bench-", dir=args.dir))
    args.probe_dir = workdir
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    ok = True
    try:
        if args.part in ("cpu", "all"):
            rows = []
            for run in range(args.repeat):
                args.run = run
                for mode in modes:
                    directory = workdir / f"cpu{run}"
                    directory.mkdir(exist_ok=True)
                    row = run_direct(directory, args) if mode == "direct" else run_upstream(
                        directory, args, 1 if mode.startswith("upstream") else 2, backlog=mode.endswith("backlog"))
                    row["run"] = run
                    rows.append(row)
                    ok &= row["verified"]
            results["cpu"] = rows
            print_cpu(rows)
        if args.part in ("forward", "all"):
            forward = run_forward(workdir, args)
            results["forward"] = forward
            ok &= forward["verified"]
            print({k: v for k, v in forward.items() if k != "samples"})
    finally:
        results["load_after"] = os.getloadavg()
        print(f"load average after: {os.getloadavg()}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
