"""Operations figures of a real ``iotdb serve``: ``/metrics`` (engine, latency histograms, process) moving after
MQTT publishes (paho-mqtt, QoS 1), flushes and compactions, parsed by ``prometheus_client``'s parser, and
``iotdb status``."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from iotdb.Session import Session
from iotdb.utils.exception import StatementExecutionException
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

from .conftest import TIMEOUT, RestClient, start_rest_server, stop_server

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]
#: How long a flush or a compaction the test caused may take to show.
SETTLE = TIMEOUT * 2
#: The smallest memtable_size_threshold (1 MiB): a memtable holding this much is sealed and flushed.
THRESHOLD = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Memtables flushed after a second; two files of a level are merged into the next."""
    process = start_rest_server(
        tmp_path_factory.mktemp("ops"), memtable_flush_interval_in_ms=1000, compaction_files_per_level=2,
    )
    yield process
    stop_server(process)
    assert "Traceback" not in process.output, process.output


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> RestClient:
    return RestClient(server)


@pytest.fixture
def publisher(server: ServerProcess) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ops-metrics", protocol=mqtt.MQTTv311)
    client.username_pw_set("root", "root")
    client.connect(server.host, server.port, keepalive=30)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def publish(client: mqtt.Client, device: str, count: int, start: int = 0) -> None:
    infos = [
        client.publish("ops/data", json.dumps(
            {"device": device, "timestamp": start + index, "measurements": ["v", "w"], "values": [index, 1.5]}
        ).encode(), qos=1)
        for index in range(count)
    ]
    for info in infos:
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()


def scrape(rest: RestClient) -> tuple[Metrics, str]:
    """Every sample of ``/metrics`` by (name, labels), after a strict parse."""
    reply = rest.request("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    for line in text.splitlines():  # every sample belongs to a family declared just by HELP and TYPE
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert name in typed or name.rsplit("_", 1)[0] in typed, line
    samples: Metrics = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        for sample in family.samples:
            assert isinstance(sample, Sample)
            assert not math.isnan(sample.value), sample
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, text


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample by its exposed name; the parser names a counter's sample ``<name>_total``."""
    key = tuple(sorted(labels.items()))
    return metrics[(name, key)] if (name, key) in metrics else metrics[(name + "_total", key)]


def test_engine_figures_move_after_publishes_and_flushes(rest: RestClient, publisher: mqtt.Client) -> None:
    before, text = scrape(rest)
    assert "# TYPE iotdb_wal_bytes gauge" in text
    assert "# TYPE iotdb_tsfiles gauge" in text
    assert "# TYPE iotdb_query_duration_seconds histogram" in text
    flushes = value(before, "iotdb_engine_flushes_total")
    assert value(before, "iotdb_data_dir_total_bytes") >= value(before, "iotdb_data_dir_free_bytes") > 0

    publish(publisher, "root.ops.d1", 40)
    now, _ = scrape(rest)
    assert value(now, "iotdb_wal_bytes") > 0
    assert value(now, "iotdb_wal_segments") >= 1

    def flushed(times: float) -> Callable[[], bool]:
        return lambda: value(scrape(rest)[0], "iotdb_engine_flushes_total") >= flushes + times

    assert wait_until(flushed(1), SETTLE, 0.1), scrape(rest)[1]
    after, _ = scrape(rest)
    assert value(after, "iotdb_engine_flushed_points_total") - value(before, "iotdb_engine_flushed_points_total") >= 80
    assert value(after, "iotdb_engine_flushed_bytes_total") > value(before, "iotdb_engine_flushed_bytes_total")
    files = sum(v for (name, _labels), v in after.items() if name == "iotdb_tsfiles")
    size = sum(v for (name, _labels), v in after.items() if name == "iotdb_tsfile_bytes")
    assert files >= 1 and size > 0

    # a second flush makes two level-0 files, which compaction merges into one file of level 1
    publish(publisher, "root.ops.d1", 40, start=1000)
    assert wait_until(flushed(2), SETTLE, 0.1), scrape(rest)[1]

    def compacted() -> bool:
        return scrape(rest)[0].get(("iotdb_tsfiles", (("level", "1"),)), 0) >= 1

    assert wait_until(compacted, SETTLE, 0.1), scrape(rest)[1]
    assert rest.query("SELECT count(v) FROM root.ops.d1")["values"] == [[80]]


def test_query_latency_histogram_counts_rest_queries(rest: RestClient) -> None:
    rest.query("SELECT count(v) FROM root.ops.**")
    before, _ = scrape(rest)
    key = ("iotdb_query_duration_seconds_count", (("surface", "rest"),))
    count = before.get(key, 0)
    rest.query("SELECT * FROM root.ops.**")
    rest.request("POST", "/rest/v1/query", {"sql": "SHOW DEVICES"})
    rest.request("POST", "/grafana/v1/query/expression",
                 {"expression": ["v"], "prefixPath": ["root.ops.d1"], "startTime": 0, "endTime": 10})
    rest.request("POST", "/rest/v2/query", {"sql": "SELEC"})  # a failed query is timed too
    after, _ = scrape(rest)
    assert after[key] == count + 4
    buckets = sorted(((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                      if name == "iotdb_query_duration_seconds_bucket"), key=lambda item: item[0])
    assert [bound for bound, _ in buckets][-1] == math.inf
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))  # cumulative
    assert buckets[-1][1] == after[key]
    assert after[("iotdb_query_duration_seconds_sum", (("surface", "rest"),))] > 0


def test_query_latency_histogram_counts_native_rpc_queries(rest: RestClient, server: ServerProcess) -> None:
    key = ("iotdb_query_duration_seconds_count", (("surface", "rpc"),))
    count = scrape(rest)[0].get(key, 0)
    session = Session(server.rpc_host, server.rpc_port, "root", "root", zone_id="UTC",
                      connection_timeout_in_ms=int(TIMEOUT * 1000))
    session.open(False)
    try:
        with session.execute_query_statement("SELECT count(v) FROM root.ops.**"):
            pass
        with session.execute_raw_data_query(["root.ops.d1.v"], 0, 10):
            pass
        with pytest.raises(StatementExecutionException):
            session.execute_query_statement("SELEC")  # a failed query is timed too
    finally:
        session.close()
    after, _ = scrape(rest)
    assert after[key] == count + 3
    assert after[("iotdb_query_duration_seconds_sum", (("surface", "rpc"),))] > 0


def test_process_figures(rest: RestClient, server: ServerProcess) -> None:
    metrics, _ = scrape(rest)
    assert value(metrics, "process_resident_memory_bytes") > 10 * 2**20
    assert value(metrics, "process_cpu_seconds_total") > 0
    assert value(metrics, "process_open_fds") >= 3
    started = value(metrics, "process_start_time_seconds")
    assert time.time() - 600 < started <= time.time()
    before = value(metrics, "process_cpu_seconds_total")
    for _ in range(20):
        rest.query("SELECT * FROM root.ops.**")
    assert value(scrape(rest)[0], "process_cpu_seconds_total") >= before


def test_serving_process_freezes_its_startup_objects(rest: RestClient, publisher: mqtt.Client) -> None:
    """The objects alive once the services started are frozen (never traversed by a collection again), and a
    burst of publishes does not make the collector run full collections every few hundred messages."""
    before, _ = scrape(rest)
    assert value(before, "python_gc_frozen_objects") > 10_000
    publish(publisher, "root.ops.gc", 2_000)
    after, _ = scrape(rest)
    assert value(after, "python_gc_frozen_objects") == value(before, "python_gc_frozen_objects")
    assert value(after, "python_gc_full_collections_total") - value(before, "python_gc_full_collections_total") <= 1


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "status", *args],
                          capture_output=True, text=True, timeout=TIMEOUT * 3, check=False)


def test_iotdb_status_prints_the_figures(rest: RestClient, publisher: mqtt.Client) -> None:
    publish(publisher, "root.ops.st", 5)
    rest.query("SELECT * FROM root.ops.st")
    metrics, _ = scrape(rest)
    done = status("--url", rest.base)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("Process", "Engine", "MQTT", "REST", "Query latency"):
        assert f"\n{heading}\n" in out, out
    assert f"iotdb server at {rest.base}" in out
    assert "resident memory" in out and "MiB" in out
    assert "TsFiles level" in out and "disk free" in out

    def row(label: str) -> list[str]:
        """The words after ``label`` on its line of the tables."""
        found = [line[len(label):].split() for line in out.splitlines() if line.startswith(label + "  ")]
        assert len(found) == 1, (label, out)
        return found[0]

    # counters only grow: what status shows is at least what the scrape before it saw
    assert int(row("flushes")[0].replace(",", "")) >= value(metrics, "iotdb_engine_flushes_total")
    assert row("flushes")[1].startswith("(") and row("flushes")[2] == "points,"
    assert int(row("publishes received")[0].replace(",", "")) >= value(metrics, "iotdb_mqtt_publishes_received") >= 5
    latency = out.split("Query latency\n", 1)[1].splitlines()
    assert latency[0].split() == ["service", "queries", "mean", "p50", "p90", "p99"]
    assert latency[1].split()[0] == "rest"
    assert int(latency[1].split()[1].replace(",", "")) >= 1


def test_iotdb_status_errors_are_one_line(rest: RestClient, tmp_path: Path) -> None:
    wrong = status("--url", rest.base, "-pw", "wrong")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == f"iotdb status: error: {rest.base}/metrics answered HTTP 401: wrong user or password"
    unreachable = status("--url", "http://127.0.0.1:9", "--timeout", "2")
    assert unreachable.returncode == 2
    assert "cannot reach http://127.0.0.1:9/metrics" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr + wrong.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------- the engine snapshot


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No flush by age (the default 10 minutes): only a memtable reaching THRESHOLD is flushed; two files of a
    level are merged into the next."""
    process = start_rest_server(
        tmp_path_factory.mktemp("engine"), memtable_size_threshold=THRESHOLD, compaction_files_per_level=2,
    )
    yield process
    stop_server(process)
    assert "Traceback" not in process.output, process.output


@pytest.fixture
def engine_rest(engine_server: ServerProcess) -> RestClient:
    return RestClient(engine_server)


@pytest.fixture
def engine_publisher(engine_server: ServerProcess) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ops-engine", protocol=mqtt.MQTTv311)
    client.username_pw_set("root", "root")
    client.connect(engine_server.host, engine_server.port, keepalive=30)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


MEASUREMENTS = [f"m{index}" for index in range(8)]


def publish_batch(client: mqtt.Client, device: str, start: int, count: int) -> int:
    """One message of ``count`` timestamps of every measurement (QoS 1, acknowledged); returns its points."""
    payload = json.dumps({"device": device, "timestamps": list(range(start, start + count)),
                          "measurements": MEASUREMENTS,
                          "values": [[index] * len(MEASUREMENTS) for index in range(count)]}).encode()
    info = client.publish("ops/batch", payload, qos=1)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published()
    return count * len(MEASUREMENTS)


def histogram_count(metrics: Metrics, name: str) -> float:
    return metrics[(name + "_count", ())]


def level_files(metrics: Metrics, level: int) -> float:
    return metrics.get(("iotdb_tsfiles", (("level", str(level)),)), 0)


def test_memtables_flushes_and_compactions_move_with_publishes(
    engine_rest: RestClient, engine_publisher: mqtt.Client,
) -> None:
    device = "root.ops.engine"
    start, _ = scrape(engine_rest)
    assert level_files(start, 0) == level_files(start, 1) == 0, "this test needs a server that has not flushed yet"
    held_before = value(start, "iotdb_memtable_points")
    assert histogram_count(start, "iotdb_flush_duration_seconds") == 0
    assert histogram_count(start, "iotdb_compaction_duration_seconds") == 0
    assert value(start, "iotdb_read_only", reason="") == 0
    assert value(start, "iotdb_memtable_budget_bytes") > THRESHOLD

    # a small write stays in the memtable and the WAL
    small = publish_batch(engine_publisher, device, 0, 2)
    held, _ = scrape(engine_rest)
    assert value(held, "iotdb_memtable_points") == held_before + small
    assert value(held, "iotdb_memtable_bytes") > value(start, "iotdb_memtable_bytes")
    assert value(held, "iotdb_wal_bytes") > value(start, "iotdb_wal_bytes")
    assert histogram_count(held, "iotdb_flush_duration_seconds") == 0

    # a batch that fills the memtable past the threshold is sealed and flushed with everything before it (16,000
    # rows: as a tablet its 8 columns share one timestamp array, 9 bytes a point, 1.15 MB in all; the message
    # itself stays under mqtt_max_message_size)
    big = publish_batch(engine_publisher, device, 1000, 16_000)

    def flushes(times: int) -> Metrics | None:
        metrics, _ = scrape(engine_rest)
        return metrics if histogram_count(metrics, "iotdb_flush_duration_seconds") >= times else None

    flushed = wait_until(lambda: flushes(1), SETTLE, 0.1)
    assert flushed, scrape(engine_rest)[1]
    assert value(flushed, "iotdb_memtable_points") == 0 and value(flushed, "iotdb_memtable_bytes") == 0
    assert value(flushed, "iotdb_memtables_sealed") == 0
    assert value(flushed, "iotdb_engine_flushed_points_total") == held_before + small + big
    assert level_files(flushed, 0) == 1 and value(flushed, "iotdb_tsfile_bytes", level="0") > 0
    assert value(flushed, "iotdb_wal_bytes") < value(held, "iotdb_wal_bytes")  # the flushed records are released
    assert flushed[("iotdb_flush_duration_seconds_sum", ())] > 0
    assert flushed[("iotdb_flush_duration_seconds_bucket", (("le", "+Inf"),))] == 1

    # a second flush makes two files of level 0, which one compaction merges into a file of level 1
    big += publish_batch(engine_publisher, device, 20_000, 16_000)

    def compacted() -> Metrics | None:
        metrics, _ = scrape(engine_rest)
        done = histogram_count(metrics, "iotdb_compaction_duration_seconds") >= 1 and level_files(metrics, 1) == 1
        return metrics if done else None

    merged = wait_until(compacted, SETTLE, 0.1)
    assert merged, scrape(engine_rest)[1]
    assert histogram_count(merged, "iotdb_flush_duration_seconds") == 2
    assert histogram_count(merged, "iotdb_compaction_duration_seconds") == 1
    assert merged[("iotdb_compaction_duration_seconds_sum", ())] > 0
    assert level_files(merged, 0) == 0
    assert value(merged, "iotdb_flushes_running") == 0 and value(merged, "iotdb_compactions_running") == 0
    assert value(merged, "iotdb_flush_failures_total") == 0 and value(merged, "iotdb_compaction_failures_total") == 0
    assert value(merged, "process_threads") >= 4  # event loop, flush, compaction, WAL and pools
    counted = engine_rest.query(f"SELECT count(m0) FROM {device}")["values"]
    assert counted == [[(small + big) // len(MEASUREMENTS)]]


def test_iotdb_status_shows_the_engine_snapshot(engine_rest: RestClient, engine_publisher: mqtt.Client) -> None:
    points = publish_batch(engine_publisher, "root.ops.status", 0, 3)
    before, _ = scrape(engine_rest)
    assert value(before, "iotdb_memtable_points") >= points
    done = status("--url", engine_rest.base)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    after, _ = scrape(engine_rest)
    assert value(after, "iotdb_memtable_points") == value(before, "iotdb_memtable_points"), "nothing was flushed"

    def row(label: str) -> str:
        found = [line[len(label):].strip() for line in out.splitlines() if line.startswith(label + "  ")]
        assert len(found) == 1, (label, out)
        return found[0]

    assert row("state") == "writable"
    assert row("memtables").split(", ")[1].startswith(f"{int(value(before, 'iotdb_memtable_points')):,} points ")
    budget = value(before, "iotdb_memtable_budget_bytes") / 2**20
    assert f"(0 sealed; budget {budget:.1f} MiB)" in row("memtables")
    assert "threads" in out and int(row("threads")) >= 4
    work = out.split("\nFlushes and compactions\n", 1)[1].splitlines()
    assert work[0].split() == ["work", "running", "failed", "done", "mean", "p50", "p90", "p99"]
    flush, compaction = work[1].split(), work[2].split()
    assert flush[:4] == ["flush", "0", "0", f"{int(histogram_count(before, 'iotdb_flush_duration_seconds')):,}"]
    assert compaction[:4] == [
        "compaction", "0", "0", f"{int(histogram_count(before, 'iotdb_compaction_duration_seconds')):,}"]
