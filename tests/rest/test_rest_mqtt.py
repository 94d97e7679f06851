"""Data published over MQTT (paho-mqtt, QoS 1, json formatter) read back over REST, and ``GET /metrics``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

from .conftest import TIMEOUT, RestClient

_SAMPLE = re.compile(r"^(iotdb_\w+) (-?\d+)$", re.MULTILINE)


@pytest.fixture
def publisher(rest_server: ServerProcess) -> Iterator[mqtt.Client]:
    """A paho client connected as root/root on its network thread."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rest-readback", protocol=mqtt.MQTTv311)
    client.username_pw_set("root", "root")
    connected: list[object] = []
    client.on_connect = lambda *args: connected.append(args[3])
    client.connect(rest_server.host, rest_server.port, keepalive=30)
    client.loop_start()
    assert wait_until(lambda: bool(connected)), "no CONNACK"
    assert not connected[0].is_failure  # type: ignore[attr-defined]
    yield client
    client.disconnect()
    client.loop_stop()


def publish(client: mqtt.Client, payloads: list[dict[str, object]], topic: str = "root/mq/d1") -> None:
    infos = [client.publish(topic, json.dumps(payload).encode(), qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()


def metrics(rest: RestClient) -> tuple[dict[str, int], str]:
    reply = rest.request("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {name: int(value) for name, value in _SAMPLE.findall(reply.text)}, reply.text


def test_mqtt_data_reads_back_over_rest(rest: RestClient, publisher: mqtt.Client) -> None:
    payloads = [
        {"device": "root.mq.d1", "timestamp": 1000 + index, "measurements": ["temp", "ok"],
         "values": [20.5 + index, index % 2 == 0]}
        for index in range(50)
    ]
    publish(publisher, payloads)
    body = rest.query("SELECT temp, ok FROM root.mq.d1")
    assert body["expressions"] == ["root.mq.d1.temp", "root.mq.d1.ok"]
    assert body["timestamps"] == [1000 + index for index in range(50)]
    assert body["values"] == [[20.5 + index for index in range(50)], [index % 2 == 0 for index in range(50)]]
    last = rest.query("SELECT LAST temp FROM root.mq.d1")
    assert last["timestamps"] == [1049]
    assert last["values"] == [["root.mq.d1.temp"], ["69.5"], ["DOUBLE"]]


def test_metrics_move_with_mqtt_publishes(rest: RestClient, publisher: mqtt.Client) -> None:
    before, text = metrics(rest)
    assert "# TYPE iotdb_mqtt_connections_current gauge" in text
    assert "# TYPE iotdb_mqtt_publishes_received counter" in text
    assert "# HELP iotdb_rows_written rows written by the MQTT service" in text
    assert "# TYPE iotdb_rest_requests_total counter" in text
    for sample in before:  # every sample's family is declared; a histogram's _sum and _count belong to it
        stem = sample.removesuffix("_sum").removesuffix("_count")
        family = stem if stem != sample and f"# TYPE {stem} histogram" in text else sample
        assert f"# HELP {family} " in text and f"# TYPE {family} " in text
    assert before["iotdb_mqtt_connections_current"] >= 1

    payloads = [{"device": "root.mq.m", "timestamp": index, "measurements": ["a", "b", "c"], "values": [1, 2, 3]}
                for index in range(7)]
    publish(publisher, payloads, topic="root/mq/m")

    def moved() -> bool:
        after, _ = metrics(rest)
        return (after["iotdb_mqtt_publishes_received"] - before["iotdb_mqtt_publishes_received"] == 7
                and after["iotdb_rows_written"] - before["iotdb_rows_written"] == 7
                and after["iotdb_points_written"] - before["iotdb_points_written"] == 21)

    assert wait_until(moved), metrics(rest)[0]
    after, _ = metrics(rest)
    assert after["iotdb_mqtt_bytes_received"] > before["iotdb_mqtt_bytes_received"]
    assert after["iotdb_rest_requests_total"] > before["iotdb_rest_requests_total"]


def test_rest_counters(rest: RestClient) -> None:
    before, _ = metrics(rest)
    rest.request("POST", "/rest/v2/insertTablet", {
        "device": "root.mq.r", "timestamps": [1, 2], "measurements": ["s"], "data_types": ["INT64"],
        "values": [[1, 2]], "is_aligned": False,
    })
    rest.request("POST", "/rest/v2/query", {"sql": "SELECT s FROM root.mq.r"})
    rest.request("POST", "/rest/v2/query", {"sql": "SELEC"})
    rest.request("GET", "/metrics", authorization="Basic eDp5")
    after, _ = metrics(rest)
    assert after["iotdb_rest_points_written"] - before["iotdb_rest_points_written"] == 2
    assert after["iotdb_rest_rows_returned"] - before["iotdb_rest_rows_returned"] == 2
    assert after["iotdb_rest_requests_failed"] - before["iotdb_rest_requests_failed"] == 2
    assert after["iotdb_rest_auth_failures"] - before["iotdb_rest_auth_failures"] == 1
