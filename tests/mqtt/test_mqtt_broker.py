"""The broker end to end: real clients subscribe to an ``iotdb serve`` subprocess and get what others publish,
and every routed message that is ingested is also in the database."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Connect, Subscribe, Subscription, encode

from .broker_clients import PahoSubscriber, mosquitto_pub, mosquitto_sub
from .conftest import TIMEOUT, PahoPublisher, StartServer, stop_and_read, wait_until

BROKER = {"enable_rest_service": "true", "mqtt_sys_interval": "1"}


def metric(server: ServerProcess, name: str) -> int:
    request = urllib.request.Request(f"{server.rest_url}/metrics",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"root:root").decode()})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        text = response.read().decode()
    found = re.search(rf"^iotdb_{name} (\d+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return int(found.group(1))


def wait_subscriptions(server: ServerProcess, count: int) -> None:
    assert wait_until(lambda: metric(server, "mqtt_subscriptions_current") >= count), "subscriptions not made"


def iotdb(server: ServerProcess, command: str, *args: str, stdin: str = "") -> str:
    """Run ``iotdb COMMAND --data-dir <the server's> ARGS...`` and require success."""
    done = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", command, "--data-dir", str(server.data_dir),
                           *args], check=False, capture_output=True, text=True, timeout=TIMEOUT * 3, input=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_sub_shows_what_mosquitto_pub_publishes_and_it_is_stored(start_server: StartServer,
                                                                            version: str) -> None:
    server = start_server(**BROKER)
    watcher = mosquitto_sub(server.port, "root/sg/#", 2, version=version)
    wait_subscriptions(server, 1)
    document = json.dumps({"device": "root.sg.d1", "timestamp": 1, "measurements": ["s1"], "values": [1.5]})
    mosquitto_pub(server.port, "root/sg/d1", document, version=version)
    mosquitto_pub(server.port, "root/sg/cmd", "not json", version=version)  # dead-lettered, and routed
    out, err = watcher.communicate(timeout=TIMEOUT)
    assert watcher.returncode == 0, err
    assert out.splitlines() == [f"root/sg/d1 {document}", "root/sg/cmd not json"]
    assert stop_and_read(server, "root.sg.d1.s1") == {"root.sg.d1.s1": {1: 1.5}}


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_wildcards_qos_and_order_with_paho(start_server: StartServer, protocol: mqtt.MQTTProtocolVersion) -> None:
    server = start_server(**BROKER, mqtt_ingest_topics="root/#")
    subscriber = PahoSubscriber.to(server, "sub", protocol=protocol)
    assert subscriber.subscribe(("cmd/+/set", 2), ("other/#", 1)) == [2, 1]
    publisher = PahoPublisher(server, "pub", protocol)
    for qos in (0, 1, 2):
        publisher.publish_all([f"{qos}-{index}".encode() for index in range(20)], qos=qos, topic="cmd/d1/set")
    publisher.publish_all([b"o"], qos=2, topic="other/x/y")
    got = subscriber.wait_for(61)
    by_qos = {qos: [m.payload.decode() for m in got if m.topic == "cmd/d1/set" and m.payload.startswith(
        f"{qos}-".encode())] for qos in (0, 1, 2)}
    assert {qos: len(payloads) for qos, payloads in by_qos.items()} == {0: 20, 1: 20, 2: 20}
    for qos, payloads in by_qos.items():
        assert payloads == [f"{qos}-{index}" for index in range(20)]  # order kept per publisher and topic
    assert {m.qos for m in got if m.topic == "cmd/d1/set" and m.payload.startswith(b"2-")} == {2}
    assert [m.qos for m in got if m.topic == "other/x/y"] == [1]
    subscriber.close()
    publisher.close()


def test_retained_messages_survive_sigkill_are_replaced_and_deleted(start_server: StartServer) -> None:
    server = start_server(**BROKER)
    mosquitto_pub(server.port, "status/a", "first", retain=True)
    mosquitto_pub(server.port, "status/a", "second", retain=True)
    mosquitto_pub(server.port, "status/b", "bee", retain=True)
    mosquitto_pub(server.port, "status/c", "gone", retain=True)
    mosquitto_pub(server.port, "status/c", "", retain=True)
    server.kill()
    server = start_server(**BROKER)
    subscriber = PahoSubscriber.to(server, "late", protocol=mqtt.MQTTv5)
    subscriber.subscribe(("status/#", 1))
    got = subscriber.wait_for(2)
    assert sorted((m.topic, m.payload, m.retain) for m in got) == [
        ("status/a", b"second", True), ("status/b", b"bee", True)]
    assert not wait_until(lambda: len(subscriber.received()) > 2, timeout=0.5)
    assert metric(server, "mqtt_retained_current") == 2
    subscriber.close()


def test_a_persistent_session_keeps_subscriptions_and_queues_qos1_while_away(start_server: StartServer) -> None:
    server = start_server(**BROKER)
    subscriber = PahoSubscriber.to(server, "keeper", clean=False)
    subscriber.subscribe(("alerts/#", 1))
    subscriber.close()
    assert wait_until(lambda: metric(server, "mqtt_connections_current") == 0)
    publisher = PahoPublisher(server, "pub")
    publisher.publish_all([b"a1", b"a2"], qos=1, topic="alerts/x")
    publisher.publish_all([b"lost"], qos=0, topic="alerts/x")
    assert wait_until(lambda: metric(server, "mqtt_messages_routed") == 3)  # routed while the session is away
    back = PahoSubscriber.to(server, "keeper", clean=False)
    assert back.session_present
    got = back.wait_for(2)
    assert [m.payload for m in got] == [b"a1", b"a2"]
    back.close()
    publisher.close()


def test_shared_subscription_splits_messages_between_members(start_server: StartServer) -> None:
    server = start_server(**BROKER)
    members = [PahoSubscriber.to(server, f"m{index}", protocol=mqtt.MQTTv5) for index in range(2)]
    for member in members:
        member.subscribe(("$share/workers/jobs/#", 1))
    publisher = PahoPublisher(server, "pub", mqtt.MQTTv5)
    publisher.publish_all([str(index).encode() for index in range(40)], qos=1, topic="jobs/q")
    assert wait_until(lambda: sum(len(member.received()) for member in members) >= 40)
    payloads = [m.payload for member in members for m in member.received()]
    assert sorted(payloads) == sorted(str(index).encode() for index in range(40))
    assert all(member.received() for member in members)
    for member in [*members, publisher]:
        member.close()


def with_user(start_server: StartServer, name: str, password: str) -> ServerProcess:
    """A server whose data directory has user ``name`` besides root (added between two starts)."""
    server = start_server(**BROKER)
    server.stop()
    iotdb(server, "user", "add", name, "--password-stdin", stdin=password + "\n")
    return start_server(**BROKER)


def test_topic_acl_refuses_until_granted_and_a_grant_applies_while_running(start_server: StartServer) -> None:
    server = with_user(start_server, "alice", "alice-pw")
    watcher = PahoSubscriber.to(server, "root-watch", protocol=mqtt.MQTTv5)
    watcher.subscribe(("#", 1))
    alice = PahoSubscriber.to(server, "alice-1", protocol=mqtt.MQTTv5, username="alice", password="alice-pw")
    assert alice.subscribe(("devices/alice/#", 1)) == [0x87]
    publisher = PahoPublisher(server, "alice-pub", mqtt.MQTTv5, username="alice", password="alice-pw")
    info = publisher.client.publish("devices/alice/t", b"refused", qos=1)
    info.wait_for_publish(TIMEOUT)
    assert wait_until(lambda: info.mid in publisher.acks) and publisher.acks[info.mid] == 0x87
    iotdb(server, "acl", "grant", "alice", "readwrite", "devices/%u/#")
    assert wait_until(lambda: alice.subscribe(("devices/alice/#", 1)) == [1], timeout=5)
    publisher.publish_all([b"allowed"], qos=1, topic="devices/alice/t")
    assert [m.payload for m in alice.wait_for(1)] == [b"allowed"]
    assert [m.payload for m in watcher.wait_for(1) if m.topic == "devices/alice/t"] == [b"allowed"]
    assert alice.subscribe(("devices/bob/#", 1), ("#", 0)) == [0x87, 0x87]
    for client in (watcher, alice, publisher):
        client.close()


def test_sys_topics_report_the_counters_to_root_only(start_server: StartServer) -> None:
    server = with_user(start_server, "bob", "bob-pw")
    root = PahoSubscriber.to(server, "root-sys")
    assert root.subscribe(("$SYS/broker/clients/connected", 0)) == [0]
    assert wait_until(lambda: any(int(m.payload) >= 1 for m in root.received())), root.received()
    assert {m.topic for m in root.received()} == {"$SYS/broker/clients/connected"}
    bob = PahoSubscriber.to(server, "bob", username="bob", password="bob-pw")
    assert bob.subscribe(("$SYS/#", 0)) == [0x80]
    root.close()
    bob.close()


def test_a_subscriber_that_never_reads_does_not_stall_the_others(start_server: StartServer) -> None:
    server = start_server(**BROKER, mqtt_max_queued_messages=100)

    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(TIMEOUT)
    stuck.connect((server.host, server.port))
    stuck.sendall(encode(Connect(client_id="stuck", username="root", password=b"root"), 4)
                  + encode(Subscribe(1, (Subscription("load/#", 0),)), 4))
    wait_subscriptions(server, 1)
    healthy = PahoSubscriber.to(server, "healthy")
    healthy.subscribe(("load/#", 0))
    publisher = PahoPublisher(server, "pub")
    payload = b"x" * 8000
    publisher.publish_all([payload] * 2000, qos=1, topic="load/a")  # 16 MB: more than the stuck socket buffers
    assert len(healthy.wait_for(2000)) == 2000
    assert metric(server, "mqtt_messages_dropped") > 0
    stuck.close()
    healthy.close()
    publisher.close()


def test_a_persistent_session_survives_sigkill_with_its_queued_messages(start_server: StartServer) -> None:
    server = start_server(**BROKER)
    subscriber = PahoSubscriber.to(server, "durable", protocol=mqtt.MQTTv5, clean=False, session_expiry=3600)
    subscriber.subscribe(("orders/#", 1))
    subscriber.close()
    assert wait_until(lambda: metric(server, "mqtt_connections_current") == 0)
    publisher = PahoPublisher(server, "shop")
    publisher.publish_all([f"order-{index}".encode() for index in range(50)], qos=1, topic="orders/new")
    server.kill()
    server = start_server(**BROKER)
    back = PahoSubscriber.to(server, "durable", protocol=mqtt.MQTTv5, clean=False, session_expiry=3600)
    assert back.session_present
    got = back.wait_for(50)
    assert [m.payload for m in got] == [f"order-{index}".encode() for index in range(50)]
    back.close()
