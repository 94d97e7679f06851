"""Real MQTT clients (paho-mqtt, mosquitto_pub, gmqtt, raw codec sockets) publish into a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import gmqtt
import paho.mqtt.client as mqtt
import pytest
from gmqtt.storage import PersistentStorage

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Properties, PubComp, PubRel

from .conftest import DEVICE, TIMEOUT, PahoPublisher, connected_raw, row, stop_and_read

S1, S2 = f"{DEVICE}.s1", f"{DEVICE}.s2"
EXPECTED = {t: 1.5 for t in range(10)}


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5], ids=["v31", "v311", "v5"])
def test_paho_qos1_single_rows_land(server: ServerProcess, protocol: mqtt.MQTTProtocolVersion) -> None:
    publisher = PahoPublisher(server, "paho-1", protocol)
    assert publisher.connack is not None and publisher.connack.value == 0
    mids = publisher.publish_all([row(t) for t in range(10)])
    assert all(publisher.acks[mid] == 0 for mid in mids)
    publisher.close()
    data = stop_and_read(server, S1, S2)
    assert data[S1] == EXPECTED
    assert data[S2] == {t: 2 for t in range(10)}


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub is not installed")
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_pub_qos1_lands(server: ServerProcess, version: str) -> None:
    lines = "".join(row(t).decode() + "\n" for t in range(10))
    done = subprocess.run(
        ["mosquitto_pub", "-h", server.host, "-p", str(server.port), "-V", version, "-q", "1", "-u", "root",
         "-P", "root", "-i", f"mosq-{version}", "-t", "root/sg/d1", "-l"],
        input=lines, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stop_and_read(server, S1)[S1] == EXPECTED


def test_batch_and_array_shapes_land(server: ServerProcess) -> None:
    batch = {"device": DEVICE, "timestamps": [100, 101, 102], "measurements": ["s1", "s2"],
             "values": [[1.0, 10], [2.0, 20], [3.0, 30]]}
    array = [
        {"device": DEVICE, "timestamp": 200, "measurements": ["s1"], "values": [4.0]},
        {"device": "root.sg.d2", "timestamps": [1, 2], "measurements": ["t"], "values": [[True], [False]]},
    ]
    publisher = PahoPublisher(server, "shapes", mqtt.MQTTv5)
    mids = publisher.publish_all([json.dumps(batch).encode(), json.dumps(array).encode()])
    assert [publisher.acks[mid] for mid in mids] == [0, 0]
    publisher.close()
    data = stop_and_read(server, S1, S2, "root.sg.d2.t")
    assert data[S1] == {100: 1.0, 101: 2.0, 102: 3.0, 200: 4.0}
    assert data[S2] == {100: 10, 101: 20, 102: 30}
    assert data["root.sg.d2.t"] == {1: True, 2: False}


def test_gmqtt_default_mqtt5_connect(server: ServerProcess) -> None:
    async def run() -> None:
        # gmqtt keeps every QoS 1 message in the storage it is given until the PUBACK arrives.
        inflight = PersistentStorage()
        client = gmqtt.Client("gmqtt-1", persistent_storage=inflight)
        client.set_auth_credentials("root", "root")
        await asyncio.wait_for(client.connect(server.host, server.port), TIMEOUT)
        for t in range(10):
            client.publish("root/sg/d1", row(t), qos=1)
        await asyncio.wait_for(inflight.wait_empty(), TIMEOUT)
        await asyncio.wait_for(client.disconnect(), TIMEOUT)

    asyncio.run(run())
    assert stop_and_read(server, S1)[S1] == EXPECTED


def test_qos0_and_qos2_land(server: ServerProcess) -> None:
    publisher = PahoPublisher(server, "qos", mqtt.MQTTv311)
    publisher.publish_all([row(t) for t in range(5)], qos=0)
    publisher.publish_all([row(t) for t in range(5, 10)], qos=2)
    publisher.close()
    assert stop_and_read(server, S1)[S1] == EXPECTED


@pytest.mark.parametrize("level", [4, 5])
def test_qos2_resend_before_pubrel_is_written_once(server: ServerProcess, level: int) -> None:
    client = connected_raw(server, "qos2", level)
    client.publish_received(row(1, values=(1.0, 1)), packet_id=7)
    # The same packet id again, as a DUP resend, but with other content: it must not be written.
    client.publish_received(row(2, values=(2.0, 2)), packet_id=7, dup=True)
    client.send(PubRel(7))
    assert client.expect(PubComp).packet_id == 7
    # After PUBCOMP the id is free again and a new message with it is written.
    client.publish_received(row(3, values=(3.0, 3)), packet_id=7)
    client.send(PubRel(7))
    assert client.expect(PubComp).packet_id == 7
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.0, 3: 3.0}


def test_qos2_resend_after_reconnect_with_session_is_written_once(server: ServerProcess) -> None:
    client = connected_raw(server, "qos2-session", 4, clean_start=False)
    client.publish_received(row(1), packet_id=9)
    client.close()  # lost before PUBREL
    again = connected_raw(server, "qos2-session", 4, clean_start=False)
    again.publish_received(row(2), packet_id=9, dup=True)
    again.send(PubRel(9))
    assert again.expect(PubComp).packet_id == 9
    again.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_mqtt5_topic_alias_define_then_reuse(server: ServerProcess) -> None:
    client = connected_raw(server, "alias", 5)
    assert client.publish_acked(row(1), 1, properties=Properties(topic_alias=3)).reason_code == 0
    assert client.publish_acked(row(2), 2, topic="", properties=Properties(topic_alias=3)).reason_code == 0
    assert client.publish_acked(row(3), 3, topic="", properties=Properties(topic_alias=3)).reason_code == 0
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5, 2: 1.5, 3: 1.5}


def test_mqtt5_undefined_topic_alias_closes_with_protocol_error(server: ServerProcess) -> None:
    client = connected_raw(server, "alias-bad", 5)
    client.publish(row(1), 1, 1, topic="", properties=Properties(topic_alias=5))
    packets = client.wait_closed()
    assert [type(p).__name__ for p in packets] == ["Disconnect"]
    assert packets[0].reason_code == 0x82
