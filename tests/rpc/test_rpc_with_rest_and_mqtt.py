"""The native path against the other two: data published over MQTT (paho-mqtt, QoS 1) read back with the
apache-iotdb Session, and the statements of docs/sql.md giving the same result over RPC as over REST v2."""

from __future__ import annotations

import base64
import json
import math
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT


def rest_query(server: ServerProcess, sql: str) -> dict[str, Any]:
    request = urllib.request.Request(server.rest_url + "/rest/v2/query",
                                     data=json.dumps({"sql": sql, "row_limit": 100_000}).encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"root:root").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        body = json.loads(response.read())
    assert body.get("code") in (None, 200), body
    return body


@pytest.fixture
def publisher(rpc_server: ServerProcess) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rpc-readback", protocol=mqtt.MQTTv311)
    client.username_pw_set("root", "root")
    connected: list[object] = []
    client.on_connect = lambda *args: connected.append(args[3])
    client.connect(rpc_server.host, rpc_server.port, keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + TIMEOUT
    while not connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert connected and not connected[0].is_failure  # type: ignore[attr-defined]
    yield client
    client.disconnect()
    client.loop_stop()


def test_mqtt_published_rows_read_back_over_rpc(publisher: mqtt.Client, session: Session) -> None:
    payloads = [{"device": "root.mqrpc.d1", "timestamp": 1000 + i, "measurements": ["temp", "ok", "note"],
                 "values": [20.5 + i, i % 2 == 0, f"n{i}"]} for i in range(40)]
    infos = [publisher.publish("root/mqrpc/d1", json.dumps(p).encode(), qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(TIMEOUT)  # acknowledged once durable: readable at once
    with session.execute_query_statement("SELECT temp, ok, note FROM root.mqrpc.d1") as dataset:
        frame = dataset.todf()
    assert frame["Time"].tolist() == [1000 + i for i in range(40)]
    assert frame["root.mqrpc.d1.temp"].tolist() == [20.5 + i for i in range(40)]
    assert frame["root.mqrpc.d1.ok"].tolist() == [i % 2 == 0 for i in range(40)]
    assert frame["root.mqrpc.d1.note"].tolist() == [f"n{i}" for i in range(40)]


STATEMENTS = [
    "SELECT * FROM root.sg.d1",
    "SELECT temp FROM root.sg.d1, root.sg.d2 WHERE time >= 2020-01-01T00:00:00+08:00 AND temp > 20.5",
    "SELECT s1 FROM root.sg.** WHERE s2 = 'on' OR s1 BETWEEN 1 AND 5 ORDER BY TIME DESC LIMIT 10",
    "SELECT count(s1), avg(s1) FROM root.sg.d1 GROUP BY ([2020-01-01, 2020-01-02), 1h)",
    "SELECT last_value(s1) FROM root.sg.d1 GROUP BY ([0, 100), 10ms, 5ms) FILL(PREVIOUS)",
    "SELECT * FROM root.sg.* WHERE time > 0 FILL(LINEAR) ALIGN BY DEVICE",
    "SELECT LAST * FROM root.sg.**",
    "SELECT count(s1), sum(temp), min_value(temp), max_time(s1), extreme(temp) FROM root.sg.**",
    "SHOW DATABASES",
    "SHOW DEVICES",
    "SHOW TIMESERIES root.sg.**",
    "COUNT TIMESERIES root.sg.**",
    "COUNT DEVICES",
]


def _plain(value: Any) -> Any:
    """A cell as REST's JSON has it: None for a null, Python scalars, non-finite floats as Jackson's strings."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _same(rest_value: Any, rpc_value: Any) -> bool:
    if isinstance(rest_value, float) and isinstance(rpc_value, (int, float)) and not isinstance(rpc_value, bool):
        return math.isclose(rest_value, float(rpc_value), rel_tol=1e-6)
    if isinstance(rest_value, (int, float)) and isinstance(rpc_value, str):  # SHOW's numeric text columns
        return str(rest_value) == rpc_value
    return rest_value == rpc_value


@pytest.fixture(scope="module")
def sql_data(rpc_server: ServerProcess) -> ServerProcess:
    session = Session(rpc_server.rpc_host, rpc_server.rpc_port, "root", "root", zone_id="UTC")
    session.open(False)
    try:
        day = 1577836800000  # 2020-01-01T00:00:00Z
        stamps = [day + i * 600_000 for i in range(12)] + [5, 15, 40]
        stamps.sort()
        rows = [[float(i % 7), "on" if i % 3 == 0 else "off", 19.5 + i] for i in range(len(stamps))]
        rows[4][0] = None
        session.insert_tablet(Tablet("root.sg.d1", ["s1", "s2", "temp"],
                                     [TSDataType.DOUBLE, TSDataType.TEXT, TSDataType.FLOAT], rows, stamps))
        session.insert_tablet(Tablet("root.sg.d2", ["temp", "s1"], [TSDataType.FLOAT, TSDataType.DOUBLE],
                                     [[21.0 + i, float(i)] for i in range(5)], [day + i * 1000 for i in range(5)]))
    finally:
        session.close()
    return rpc_server


@pytest.mark.parametrize("sql", STATEMENTS)
def test_docs_sql_statements_give_the_same_result_as_rest(sql_data: ServerProcess, session: Session,
                                                          sql: str) -> None:
    body = rest_query(sql_data, sql)
    with session.execute_query_statement(sql) as dataset:
        frame = dataset.todf()
    names = body["expressions"] or body["column_names"]
    rpc_names = [name for name in frame.columns if name != "Time" or body["timestamps"] is None]
    if body["timestamps"] is not None:
        assert frame["Time"].tolist() == body["timestamps"], sql
        rpc_names = [name for name in frame.columns if name != "Time"]
    assert rpc_names == names, sql
    rest_columns = body["values"] or [[] for _ in names]
    for name, rest_column in zip(names, rest_columns, strict=True):
        rpc_column = [_plain(value) for value in frame[name].tolist()]
        assert len(rpc_column) == len(rest_column), (sql, name)
        for rest_value, rpc_value in zip(rest_column, rpc_column, strict=True):
            assert _same(rest_value, rpc_value), (sql, name, rest_column, rpc_column)
    assert len(frame) > 0 or not body["values"], sql
