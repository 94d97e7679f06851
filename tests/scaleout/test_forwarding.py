"""Forwarding end to end: an edge ``iotdb serve`` forwards every stored point to a second ``iotdb serve`` running
the native RPC service, read back through the ``apache-iotdb`` Session; faults: the target down for a while,
the edge killed with a backlog, a full backlog."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from iotdb.Session import Session
from iotdb.utils.BitMap import BitMap
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.NumpyTablet import NumpyTablet
from mqtt.conftest import PahoPublisher, row

from iotdb_core.cli.status_cmd import Figures, fetch_metrics, parse_metrics
from iotdb_core.testing.server import ServerProcess

from .conftest import free_port, wait_until

StartServer = Callable[..., ServerProcess]
DEVICE = "root.fw.d1"


def edge(start: StartServer, target_port: int, name: str = "edge", **properties: object) -> ServerProcess:
    settings: dict[str, object] = {"forward_target_nodes": f"127.0.0.1:{target_port}", "forward_interval_in_ms": 50,
                                   "forward_retry_max_interval_in_ms": 500, "mqtt_ws_port": -1}
    settings.update(properties)
    return start(name, **settings)


def session(server: ServerProcess) -> Session:
    client = Session(server.rpc_host, server.rpc_port, "root", "root")
    client.open(False)
    return client


def write_tablets(server: ServerProcess, start: int, count: int, rows: int = 500) -> None:
    """``count`` tablets of ``rows`` rows (a DOUBLE and an INT64 column) from timestamp ``start``."""
    client = session(server)
    try:
        for index in range(count):
            stamps = np.arange(start + index * rows, start + (index + 1) * rows, dtype=np.int64)
            client.insert_tablet(NumpyTablet(DEVICE, ["a", "b"], [TSDataType.DOUBLE, TSDataType.INT64],
                                             [stamps * 0.5, stamps * 3], stamps))
    finally:
        client.close()


def points(server: ServerProcess, sql: str) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` on ``server``: (time, values...)."""
    client = session(server)
    try:
        result = client.execute_query_statement(sql)
        out = []
        while result.has_next():
            record = result.next()
            out.append((record.get_timestamp(), *(field.get_object_value(field.get_data_type())
                                                  for field in record.get_fields())))
        result.close_operation_handle()
        return out
    finally:
        client.close()


def figures(server: ServerProcess) -> Figures:
    return parse_metrics(fetch_metrics(server.rest_url, "root", "root", 10))


def forwarded_everything(node: ServerProcess) -> bool:
    current = figures(node)
    return current.get("iotdb_forward_backlog_points") == 0 and current.get("iotdb_forward_points_forwarded") > 0


def test_tablets_and_mqtt_publishes_arrive_in_the_target_as_stored_here(start_server: StartServer) -> None:
    target = start_server("target", mqtt_ws_port=-1)
    node = edge(start_server, target.rpc_port)
    write_tablets(node, 0, 20)
    publisher = PahoPublisher(node, "device")
    publisher.publish_all([row(t, device="root.fw.mqtt", values=(t + 0.25, t)) for t in range(1, 201)])
    publisher.close()
    assert wait_until(lambda: forwarded_everything(node), 20), node.output
    for sql in (f"select a, b from {DEVICE}", "select s1, s2 from root.fw.mqtt"):
        here, there = points(node, sql), points(target, sql)
        assert len(there) == len(here) > 0
        assert there == here
    assert figures(node).get("iotdb_forward_points_forwarded") == 20 * 500 * 2 + 200 * 2


def test_tablets_with_nulls_and_of_many_devices_arrive_as_stored_here(start_server: StartServer) -> None:
    """Tablets with null bitmaps (insertTablet) and several devices' tablets in one call (insertTablets) are
    forwarded column by column: the target holds exactly what the edge stored, nulls left out."""
    target = start_server("target", mqtt_ws_port=-1)
    node = edge(start_server, target.rpc_port)
    client = session(node)
    try:
        stamps = np.arange(1, 101, dtype=np.int64)
        holes = BitMap(100)
        for index in range(0, 100, 7):
            holes.mark(index)
        client.insert_tablet(NumpyTablet(DEVICE, ["a", "b"], [TSDataType.DOUBLE, TSDataType.INT64],
                                         [stamps * 0.5, stamps * 3], stamps, [holes, BitMap(100)]))
        client.insert_tablets([
            NumpyTablet(f"root.fw.d{number}", ["x"], [TSDataType.INT32], [(stamps * number).astype(np.int32)],
                        stamps + 1000) for number in (2, 3)])
    finally:
        client.close()
    assert wait_until(lambda: forwarded_everything(node), 20), node.output
    for sql in (f"select a, b from {DEVICE}", "select x from root.fw.d2", "select x from root.fw.d3"):
        here, there = points(node, sql), points(target, sql)
        assert len(there) == len(here) > 0
        assert there == here
    assert [a for _t, a, _b in points(target, f"select a, b from {DEVICE}")].count(None) == len(range(0, 100, 7))
    assert figures(node).get("iotdb_forward_points_forwarded") == 200 - len(range(0, 100, 7)) + 200


@pytest.mark.slow
def test_target_down_for_a_while_then_back_and_the_edge_killed_meanwhile(start_server: StartServer) -> None:
    port = free_port()
    node = edge(start_server, port)
    write_tablets(node, 0, 10)
    assert wait_until(lambda: figures(node).get("iotdb_forward_send_failures") >= 2, 15)
    state = figures(node)
    assert state.get("iotdb_forward_target_up") == 0
    assert state.get("iotdb_forward_backlog_points") == 10 * 500 * 2
    assert state.get("iotdb_forward_lag_seconds") > 0
    [(labels, _at)] = state.labelled["iotdb_forward_last_error_timestamp_seconds"]
    assert labels["error"]
    status = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "status", "--url", node.rest_url],
                            check=True, capture_output=True, text=True, timeout=30).stdout
    assert "Forwarding" in status and "not acknowledging" in status and "10,000 points" in status
    node.kill()  # SIGKILL with a backlog: the outbox and its cursor are on disk
    node = edge(start_server, port)
    write_tablets(node, 5000, 10)
    target = start_server("target", mqtt_ws_port=-1, rpc_port=port)
    assert wait_until(lambda: forwarded_everything(node), 30), node.output
    here, there = points(node, f"select a, b from {DEVICE}"), points(target, f"select a, b from {DEVICE}")
    assert len(there) == 10000 and there == here
    assert "Traceback" not in node.output


@pytest.mark.slow
def test_a_full_backlog_refuses_writes_until_the_target_is_back(start_server: StartServer) -> None:
    port = free_port()
    node = edge(start_server, port, forward_max_backlog_bytes=1048576)
    refused = None
    client = session(node)
    try:
        for index in range(200):  # about 0.5 MB per 20 tablets: the bound is reached after about 40
            stamps = np.arange(index * 2000, (index + 1) * 2000, dtype=np.int64)
            try:
                client.insert_tablet(NumpyTablet(DEVICE, ["a", "b"], [TSDataType.DOUBLE, TSDataType.INT64],
                                                 [stamps * 0.5, stamps * 3], stamps))
            except Exception as exc:
                refused = (index, str(exc))
                break
    finally:
        client.close()
    assert refused is not None, "the backlog bound never refused a write"
    assert "forwarding backlog is full" in refused[1]
    state = figures(node)
    assert state.get("iotdb_forward_writes_refused") >= 1
    accepted = refused[0] * 2000
    assert state.get("iotdb_forward_backlog_points") == accepted * 2
    target = start_server("target", mqtt_ws_port=-1, rpc_port=port)
    assert wait_until(lambda: forwarded_everything(node), 30), node.output
    write_tablets(node, 10_000_000, 1)  # accepted again once drained
    assert wait_until(lambda: forwarded_everything(node) and figures(node).get(
        "iotdb_forward_points_forwarded") == accepted * 2 + 1000, 20)
    there = points(target, f"select count(a) from {DEVICE}")
    assert there[0][1:] == (accepted + 500,)


def test_bad_forwarding_configuration_is_one_clear_line(tmp_path: Any) -> None:
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text(f"forward_target_nodes=127.0.0.1:6667, nohost\ndata_dir={tmp_path / 'data'}\n")
    result = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(conf)],
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "forward_target_nodes" in result.stderr and "entry 'nohost' is not host:port" in result.stderr
    assert "Traceback" not in result.stderr
