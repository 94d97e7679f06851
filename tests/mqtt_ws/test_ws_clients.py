"""MQTT over WebSocket with real clients: paho-mqtt (``transport="websockets"``) and raw frames.

The WebSocket connection is the TCP connection's MQTT logic over another transport, so these tests check
what must hold over both: data lands, the byte stream may be cut anywhere, and authentication, connection
limits, keep alive, wills and shutdown behave as over TCP.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Connect, Disconnect, Properties, PubAck, Publish, Will, encode

from .conftest import (
    DEVICE,
    TIMEOUT,
    TOPIC,
    StartServer,
    WsRawClient,
    assert_healthy,
    row,
    stop_and_read,
    wait_until,
)

S1 = f"{DEVICE}.s1"


class PahoWs:
    """A paho-mqtt client over WebSocket on its network thread; records the CONNACK and the acknowledged mids."""

    def __init__(self, server: ServerProcess, client_id: str, protocol: mqtt.MQTTProtocolVersion,
                 *, password: str = "root", transport: str = "websockets") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                  transport=transport)  # type: ignore[arg-type]
        self.client.username_pw_set("root", password)
        self.connack: mqtt.ReasonCode | None = None
        self.acks: dict[int, int] = {}
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        if transport == "websockets":
            self.client.ws_set_options(path=server.ws_path)
            self.client.connect(server.ws_host, server.ws_port)
        else:
            self.client.connect(server.host, server.port)
        self.client.loop_start()
        assert wait_until(lambda: self.connack is not None), "no CONNACK"

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: mqtt.ReasonCode, _props: Any) -> None:
        self.connack = reason

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason: mqtt.ReasonCode, _props: Any) -> None:
        self.acks[mid] = reason.value

    def publish_all(self, payloads: list[bytes], qos: int, topic: str = TOPIC) -> list[int]:
        infos = [self.client.publish(topic, payload, qos=qos) for payload in payloads]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), f"message {info.mid} not sent or not acknowledged"
        return [info.mid for info in infos]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5], ids=["v31", "v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1])
def test_paho_over_websocket_lands(server: ServerProcess, protocol: mqtt.MQTTProtocolVersion, qos: int) -> None:
    publisher = PahoWs(server, "paho-ws", protocol)
    assert publisher.connack is not None and publisher.connack.value == 0
    mids = publisher.publish_all([row(t, value=t) for t in range(20)], qos)
    if qos:
        assert [publisher.acks[mid] for mid in mids] == [0] * 20
    publisher.close()
    assert stop_and_read(server, S1)[S1] == {t: float(t) for t in range(20)}


def test_tcp_and_websocket_clients_share_one_server(server: ServerProcess) -> None:
    over_tcp = PahoWs(server, "paho-tcp", mqtt.MQTTv311, transport="tcp")
    over_ws = PahoWs(server, "paho-ws", mqtt.MQTTv5)
    over_tcp.publish_all([row(t, "root.sg.tcp") for t in range(10)], 1)
    over_ws.publish_all([row(t, "root.sg.ws") for t in range(10)], 1)
    over_tcp.close()
    over_ws.close()
    data = stop_and_read(server, "root.sg.tcp.s1", "root.sg.ws.s1")
    assert data == {"root.sg.tcp.s1": {t: 1.5 for t in range(10)}, "root.sg.ws.s1": {t: 1.5 for t in range(10)}}


@pytest.mark.parametrize(("protocol", "code"), [(mqtt.MQTTv311, 134), (mqtt.MQTTv5, 134)], ids=["v311", "v5"])
def test_bad_password_over_websocket_is_refused(server: ServerProcess, protocol: mqtt.MQTTProtocolVersion,
                                                code: int) -> None:
    # paho reports CONNACK return code 4 of MQTT 3.1.1 as its MQTT 5 equivalent 0x86 (134).
    client = PahoWs(server, "paho-bad", protocol, password="wrong")
    assert client.connack is not None and client.connack.value == code
    client.close()
    assert "bad user name or password" in server.output
    assert_healthy(server)


def test_packets_may_be_cut_anywhere_across_messages(server: ServerProcess) -> None:
    """One packet over many messages, many packets in one message [MQTT-6.0.0-2]."""
    with WsRawClient(server) as client:
        connect = encode(Connect("ws-stream", 5, True, 60, "root", b"root"), 5)
        for index in range(len(connect)):
            client.send_frame(0x2, connect[index:index + 1])
        assert client.recv().reason_code == 0
        publishes = [Publish(TOPIC, row(t), 1, packet_id=t + 1) for t in range(3)]
        client.send(*publishes)
        assert [client.expect(PubAck).packet_id for _ in range(3)] == [1, 2, 3]
        last = encode(Publish(TOPIC, row(3), 1, packet_id=4), 5)
        client.send_frame(0x2, last[:1])
        client.send_frame(0x2, last[1:7])
        client.send_frame(0x2, last[7:] + encode(Publish(TOPIC, row(4), 0), 5)[:3])
        assert client.expect(PubAck).packet_id == 4
        client.send_frame(0x2, encode(Publish(TOPIC, row(4), 0), 5)[3:] + encode(Disconnect(), 5))
        _, code = client.wait_closed()
        assert code == 1000
    assert stop_and_read(server, S1)[S1] == {t: 1.5 for t in range(5)}


def test_connection_limit_counts_both_transports(start_server: StartServer) -> None:
    server = start_server(mqtt_max_connections=1)
    first = PahoWs(server, "first", mqtt.MQTTv311, transport="tcp")
    with WsRawClient(server) as refused:
        ack = refused.connect("second")
        assert ack.reason_code == 0x97  # quota exceeded
        _, code = refused.wait_closed()
        assert code == 1000
    first.close()
    assert_healthy(server)


def test_keep_alive_and_will_over_websocket(server: ServerProcess) -> None:
    will = Will("root/sg/will", row(7, "root.sg.will"), 0, False)
    with WsRawClient(server) as client:
        started = time.monotonic()  # the server counts the silence from the CONNECT on
        assert client.connect("ws-silent", keep_alive=1, will=will).reason_code == 0
        packets, code = client.wait_closed(timeout=5)
        assert 1.5 <= time.monotonic() - started < 5
        assert [type(p).__name__ for p in packets] == ["Disconnect"]
        assert packets[0].reason_code == 0x8D  # keep alive timeout
        assert code == 1000
    assert stop_and_read(server, "root.sg.will.s1")["root.sg.will.s1"] == {7: 1.5}


def test_shutdown_disconnects_websocket_clients_and_keeps_their_data(server: ServerProcess) -> None:
    with WsRawClient(server) as client:
        assert client.connect("ws-shutdown").reason_code == 0
        client.send(Publish(TOPIC, row(1), 1, packet_id=1))
        assert client.expect(PubAck).packet_id == 1
        server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        packets, code = client.wait_closed()
        assert [p.reason_code for p in packets] == [0x8B]  # server shutting down
        assert code == 1000
        client.send_frame(0x8, code.to_bytes(2, "big"))  # the close reply lets the server finish at once
        assert server.process.wait(TIMEOUT) == 0  # type: ignore[union-attr]
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_websocket_can_be_turned_off(start_server: StartServer) -> None:
    server = start_server(mqtt_ws_port=-1)
    assert "over WebSocket" not in server.output
    publisher = PahoWs(server, "tcp-only", mqtt.MQTTv5, transport="tcp")
    publisher.publish_all([row(1)], 1)
    publisher.close()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_reason_string_reaches_websocket_client(start_server: StartServer) -> None:
    """An MQTT 5 protocol violation over WebSocket gets the DISCONNECT with reason code and reason string."""
    server = start_server()
    with WsRawClient(server) as client:
        assert client.connect("ws-alias").reason_code == 0
        client.send(Publish("", row(1), 0, properties=Properties(topic_alias=5)))
        packets, code = client.wait_closed()
        assert [p.reason_code for p in packets] == [0x82]  # protocol error: alias never defined
        assert "topic alias 5 was never defined" in (packets[0].properties.reason_string or "")
        assert code == 1000
    assert_healthy(server)


def test_pipeline_past_the_backlog_bound_pauses_and_resumes_reading(server: ServerProcess) -> None:
    """12,000 QoS 1 publishes sent before reading any PUBACK: past 5,000 unwritten the server stops taking
    WebSocket messages until the backlog is written, then goes on; every publish is acknowledged in order."""
    count, per_message = 12000, 500
    with WsRawClient(server, level=4, timeout=TIMEOUT * 3) as client:
        assert client.connect("ws-pipeline").reason_code == 0
        for start in range(0, count, per_message):
            client.send(*(Publish(TOPIC, row(t), 1, packet_id=t % 65535 + 1)
                          for t in range(start, start + per_message)))
        assert [client.expect(PubAck).packet_id for _ in range(count)] == [t % 65535 + 1 for t in range(count)]
    assert len(stop_and_read(server, S1)[S1]) == count
