"""Live interoperability with paho-mqtt over loopback TCP.

The test plays a minimal server: it decodes what paho sends with PacketReader and answers with
packets from encode. paho's callbacks firing shows it accepts our encoding; re-encoding what we
decoded reproduces paho's bytes exactly.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    encode,
)

TIMEOUT = 5.0


def _reply(packet: Packet, level: int) -> bytes | None:
    if isinstance(packet, Connect):
        return encode(ConnAck(False, 0), level)
    if isinstance(packet, Publish) and packet.qos == 1:
        return encode(PubAck(packet.packet_id or 0), level)
    if isinstance(packet, Publish) and packet.qos == 2:
        return encode(PubRec(packet.packet_id or 0), level)
    if isinstance(packet, PubRel):
        return encode(PubComp(packet.packet_id), level)
    if isinstance(packet, Subscribe):
        return encode(SubAck(packet.packet_id, tuple(s.qos for s in packet.subscriptions)), level)
    if isinstance(packet, Unsubscribe):
        codes = (0,) * len(packet.topic_filters) if level == 5 else ()
        return encode(UnsubAck(packet.packet_id, codes), level)
    return None


class _Server:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.raw = bytearray()
        self.packets: list[Packet] = []
        self.level: int | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        reader = PacketReader()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                self.raw += data
                for packet in reader.feed(data):
                    self.packets.append(packet)
                    self.level = reader.protocol_level
                    reply = _reply(packet, self.level or 4)
                    if reply is not None:
                        conn.sendall(reply)
                    if isinstance(packet, Disconnect):
                        return


@contextmanager
def _server() -> Iterator[_Server]:
    server = _Server()
    server.thread.start()
    try:
        yield server
    finally:
        server.sock.close()
        server.thread.join(TIMEOUT)


PAHO_PROTOCOLS = {
    3: mqtt.MQTTProtocolVersion.MQTTv31,
    4: mqtt.MQTTProtocolVersion.MQTTv311,
    5: mqtt.MQTTProtocolVersion.MQTTv5,
}


@pytest.mark.parametrize("level", [3, 4, 5])
def test_paho_session(level: int) -> None:
    v5 = level == 5
    with _server() as server:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="dev-1", protocol=PAHO_PROTOCOLS[level]
        )
        client.username_pw_set("user", "pw")
        client.will_set("root/sg/will", b"bye", qos=1, retain=True)
        connected, subscribed, unsubscribed = threading.Event(), threading.Event(), threading.Event()
        client.on_connect = lambda *args: connected.set()
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_unsubscribe = lambda *args: unsubscribed.set()
        connect_props = publish_props = None
        if v5:
            connect_props = PahoProperties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = 30
            publish_props = PahoProperties(PacketTypes.PUBLISH)
            publish_props.UserProperty = ("k", "v")
        client.connect("127.0.0.1", server.port, 30, properties=connect_props)
        client.loop_start()
        try:
            assert connected.wait(TIMEOUT)
            for qos in (0, 1, 2):
                info = client.publish("root/sg/d1", b'{"t":%d}' % qos, qos=qos, properties=publish_props)
                info.wait_for_publish(TIMEOUT)
                assert info.is_published()
            client.subscribe([("root/sg/+", 1), ("root/#", 2)])
            assert subscribed.wait(TIMEOUT)
            client.unsubscribe("root/#")
            assert unsubscribed.wait(TIMEOUT)
            client.disconnect()
        finally:
            client.loop_stop()
        server.thread.join(TIMEOUT)

    assert server.level == level
    kinds = [type(p).__name__ for p in server.packets]
    assert kinds == [
        "Connect",
        "Publish",
        "Publish",
        "Publish",
        "PubRel",
        "Subscribe",
        "Unsubscribe",
        "Disconnect",
    ]
    publishes = [p for p in server.packets if isinstance(p, Publish)]
    assert [(p.topic, p.qos, p.payload) for p in publishes] == [
        ("root/sg/d1", q, b'{"t":%d}' % q) for q in (0, 1, 2)
    ]
    if v5:
        assert all(p.properties.user_properties == (("k", "v"),) for p in publishes)
    rewire = b"".join(encode(p, level) for p in server.packets)
    assert rewire == bytes(server.raw)
