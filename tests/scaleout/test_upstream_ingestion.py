"""Upstream ingestion end to end: Mosquitto (persistence on) as the upstream broker, ``iotdb serve`` nodes sharing
one subscription group, a paho publisher that knows what Mosquitto acknowledged; faults during load."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mqtt.conftest import TIMEOUT, dead_letters, stop_cleanly
from rest.conftest import RestClient

from iotdb_core.cli.status_cmd import Figures, fetch_metrics, parse_metrics
from iotdb_core.testing.server import ServerProcess

from .conftest import Mosquitto, Publisher, make_certificates, payload, stored_timestamps, upstream_node, wait_until

StartServer = Callable[..., ServerProcess]


def _all_stored(nodes: list[ServerProcess], expected: set[int], timeout: float = 30) -> None:
    """Wait until every timestamp of ``expected`` is stored on one of ``nodes``; fail naming the missing ones."""
    def missing() -> set[int]:
        return expected - set().union(*(stored_timestamps(node) for node in nodes))
    if not wait_until(lambda: not missing(), timeout):
        lost = sorted(missing())
        logs = "\n".join(node.output for node in nodes)
        raise AssertionError(f"{len(lost)} acknowledged messages missing, e.g. {lost[:10]}:\n{logs}")


@pytest.mark.parametrize("count", [2, 3])
def test_nodes_sharing_a_group_store_each_message_on_exactly_one(
        mosquitto: Mosquitto, start_server: StartServer, count: int) -> None:
    nodes = [upstream_node(start_server, f"node{i}", mosquitto) for i in range(count)]
    publisher = Publisher(mosquitto)
    publisher.publish(range(1, 2001))
    acked = publisher.wait_acknowledged(2000)
    _all_stored(nodes, acked, 30)
    per_node = [stored_timestamps(node) for node in nodes]
    assert all(per_node), f"a node got nothing: {[len(t) for t in per_node]}"
    assert sum(len(t) for t in per_node) == 2000  # the counts add up to what was published: no message twice
    assert set().union(*per_node) == acked
    publisher.close()


def test_mqtt_3_1_1_upstream_and_a_bad_payload_goes_to_the_dead_letter_log(
        mosquitto: Mosquitto, start_server: StartServer) -> None:
    node = upstream_node(start_server, "node", mosquitto, mqtt_upstream_protocol="3.1.1",
                         mqtt_upstream_share_group="", mqtt_upstream_qos=2)
    publisher = Publisher(mosquitto)
    publisher.publish(range(1, 101))
    publisher.client.publish("root/sg/bad", b"not json", qos=1).wait_for_publish(10)
    publisher.wait_acknowledged(100)
    assert wait_until(lambda: set(stored_timestamps(node)) == set(range(1, 101)), 20)
    assert wait_until(lambda: _metric(node, "iotdb_mqtt_payloads_rejected") == 1, 10)
    assert _metric(node, "iotdb_mqtt_upstream_connections_current") == 1
    publisher.close()
    stop_cleanly(node)
    [letter] = dead_letters(node)
    assert letter.topic == "root/sg/bad" and letter.client_id.endswith(f"@{mosquitto.uri}")


def test_interleaved_devices_are_stored_as_published(mosquitto: Mosquitto, start_server: StartServer) -> None:
    """Messages of several devices interleaved on the upstream connection, gathered into batches by the batch
    delay: each device's rows are stored, and of two spellings of one device writing the same timestamp, the
    later publish wins (the quoted spelling writes a timestamp first, the plain one overwrites it)."""
    node = upstream_node(start_server, "node", mosquitto, mqtt_upstream_share_group="",
                         mqtt_upstream_batch_delay_in_ms=50)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="interleaving")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    sent = []
    for timestamp in range(1, 301):
        documents = [("root.sg.d1", timestamp, timestamp + 0.5), ("root.sg.d2", timestamp, -timestamp),
                     ("root.sg.d3", timestamp, timestamp * 2.0)]
        if timestamp % 2 == 0 and timestamp < 300:
            documents.append(("root.sg.`d1`", timestamp + 1, -1.0))  # overwritten by the next plain publish
        for device, at, value in documents:
            body = {"device": device, "timestamp": at, "measurements": ["s"], "values": [value]}
            sent.append(client.publish("root/sg/mixed", json.dumps(body).encode(), qos=1))
    for info in sent:
        info.wait_for_publish(TIMEOUT)
    client.disconnect()
    client.loop_stop()
    rest = RestClient(node)
    assert wait_until(lambda: len(stored_timestamps(node, "root.sg.d3")) == 300, 30)
    body = rest.query("select s from root.sg.d1, root.sg.d2", row_limit=1000)
    columns = dict(zip(body["expressions"], body["values"], strict=True))
    assert body["timestamps"] == list(range(1, 301))
    assert columns["root.sg.d1.s"] == [t + 0.5 for t in range(1, 301)]
    assert columns["root.sg.d2.s"] == [-float(t) for t in range(1, 301)]
    assert _metric(node, "iotdb_mqtt_upstream_messages_acknowledged") == len(sent)


def test_local_subscribers_get_the_upstream_messages_once_durable(
        mosquitto: Mosquitto, start_server: StartServer) -> None:
    """A client subscribed on the node itself receives every message the node ingests from the broker."""
    node = upstream_node(start_server, "node", mosquitto, mqtt_upstream_share_group="", mqtt_allow_anonymous="true")
    received: list[bytes] = []
    local = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="local-subscriber")
    local.on_message = lambda _client, _userdata, message: received.append(message.payload)
    local.connect("127.0.0.1", node.port)
    local.loop_start()
    local.subscribe("root/#", qos=1)
    assert wait_until(lambda: _metric(node, "iotdb_mqtt_subscriptions_current") >= 1, 10)
    publisher = Publisher(mosquitto)
    publisher.publish(range(1, 201))
    publisher.wait_acknowledged(200)
    assert wait_until(lambda: len(received) >= 200, 20), f"{len(received)} of 200 routed"
    assert sorted(json.loads(body)["timestamp"] for body in received) == list(range(1, 201))
    assert set(stored_timestamps(node)) == set(range(1, 201))
    publisher.close()
    local.disconnect()
    local.loop_stop()


@pytest.mark.slow
def test_sigkill_of_a_node_during_load_loses_nothing_acknowledged(
        mosquitto: Mosquitto, start_server: StartServer) -> None:
    nodes = [upstream_node(start_server, f"node{i}", mosquitto) for i in (1, 2)]
    publisher = Publisher(mosquitto)
    sender = publisher.publish_in_background(range(1, 4001), pace_s=0.0005)
    assert wait_until(lambda: len(stored_timestamps(nodes[0])) >= 300, 20)
    nodes[0].kill()  # SIGKILL during load: what it had received but not acknowledged stays at the broker
    assert wait_until(lambda: len(publisher.acknowledged()) >= 3000, 30)
    nodes[0] = upstream_node(start_server, "node1", mosquitto)  # same data directory, same client id
    sender.join(30)
    acked = publisher.wait_acknowledged(4000)
    _all_stored(nodes, acked, 40)
    per_node = [stored_timestamps(node) for node in nodes]
    # What node1 had received but not acknowledged went back to node1: each message is on one node only.
    assert set(per_node[0]).isdisjoint(per_node[1])
    assert set(per_node[0]) | set(per_node[1]) == acked
    publisher.close()


@pytest.mark.slow
def test_restart_of_mosquitto_during_load_loses_nothing_acknowledged(
        mosquitto: Mosquitto, start_server: StartServer) -> None:
    # Without a share group: Mosquitto 2.0.11 itself loses queued messages of shared subscriptions when it
    # restarts (mosquitto_sub loses them too), see docs/scale-out.md.
    node = upstream_node(start_server, "node", mosquitto, mqtt_upstream_share_group="")
    publisher = Publisher(mosquitto)
    sender = publisher.publish_in_background(range(1, 3001), pace_s=0.0005)
    assert wait_until(lambda: len(stored_timestamps(node)) >= 500, 20)
    mosquitto.restart()
    assert wait_until(lambda: _metric(node, "iotdb_mqtt_upstream_connects_total") >= 2, 20), node.output
    sender.join(30)
    acked = publisher.wait_acknowledged(3000, timeout=40)
    _all_stored([node], acked, 40)
    assert set(stored_timestamps(node)) == acked
    publisher.close()


def test_unreachable_broker_is_retried_and_shown(start_server: StartServer, mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.stop()
    node = start_server("node", mqtt_upstream_uris=f"mqtt://127.0.0.1:{port}", mqtt_ws_port=-1,
                        mqtt_upstream_reconnect_max_in_ms=500)
    assert wait_until(lambda: _metric(node, "iotdb_mqtt_upstream_connect_failures") >= 2, 15)
    assert f"cannot connect to upstream broker mqtt://127.0.0.1:{port}" in node.output
    assert "Traceback" not in node.output
    mosquitto.start()
    assert wait_until(lambda: _metric(node, "iotdb_mqtt_upstream_connections_current") == 1, 15)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("mqtt_upstream_uris", "http://broker:1883", "the scheme must be mqtt:// or mqtts://"),
    ("mqtt_upstream_uris", "mqtt://u:secret@broker:99999", "the port must be a number"),
    ("mqtt_upstream_topics", "a/#/b", "is not a valid topic filter"),
    ("mqtt_upstream_share_group", "a/b", "may not contain"),
])
def test_bad_upstream_configuration_is_one_clear_line(tmp_path: object, key: str, value: str, message: str) -> None:
    directory = Path(str(tmp_path))
    conf = directory / "iotdb-system.properties"
    settings = {"mqtt_upstream_uris": "mqtt://127.0.0.1:1", "mqtt_port": 0, "rest_service_port": 0, "rpc_port": 0,
                "mqtt_ws_port": -1, "data_dir": directory / "data", key: value}
    conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    result = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(conf)],
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr and key in result.stderr
    assert "secret" not in result.stderr and "Traceback" not in result.stderr


def _figures(node: ServerProcess) -> Figures:
    return parse_metrics(fetch_metrics(node.rest_url, "root", "root", 10))


def _metric(node: ServerProcess, name: str) -> float:
    return _figures(node).get(name)


def test_mqtts_with_credentials_and_refused_credentials(tmp_path: Path, start_server: StartServer) -> None:
    ca, cert, key = make_certificates(tmp_path / "certs")
    broker = Mosquitto(tmp_path / "tls-broker", listener=f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
                       allow_anonymous=False)
    broker.add_user("edge", "s3cret:/@")
    broker.start()
    try:
        node = upstream_node(start_server, "node", broker, mqtt_upstream_share_group="",
                             mqtt_upstream_uris=f"mqtts://edge:s3cret%3A%2F%40@127.0.0.1:{broker.port}",
                             mqtt_upstream_cafile=ca)
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-publisher")
        publisher.username_pw_set("edge", "s3cret:/@")
        publisher.tls_set(ca_certs=str(ca))
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        for timestamp in range(1, 51):
            publisher.publish("root/sg/d1", payload(timestamp), qos=1).wait_for_publish(10)
        publisher.disconnect()
        publisher.loop_stop()
        assert wait_until(lambda: set(stored_timestamps(node)) == set(range(1, 51)), 20)
        refused = start_server("wrong", mqtt_ws_port=-1, mqtt_upstream_cafile=ca,
                               mqtt_upstream_uris=f"mqtts://edge:wrong@127.0.0.1:{broker.port}",
                               mqtt_upstream_reconnect_max_in_ms=500)
        assert wait_until(lambda: "refused the connection" in refused.output, 15), refused.output
        assert "Traceback" not in refused.output and "wrong" not in refused.output.split("refused the connection")[1]
        untrusted = start_server("untrusted", mqtt_ws_port=-1, mqtt_upstream_reconnect_max_in_ms=500,
                                 mqtt_upstream_uris=f"mqtts://edge:s3cret@127.0.0.1:{broker.port}")
        assert wait_until(lambda: "certificate verify failed" in untrusted.output, 15), untrusted.output
        assert "Traceback" not in untrusted.output
    finally:
        broker.stop()
