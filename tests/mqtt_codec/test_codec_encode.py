"""Encoder: exact bytes and refusal of values the protocol cannot carry."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Properties,
    PubAck,
    Publish,
    PubRel,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
    decode,
    encode,
)


def test_remaining_length_grows_with_the_payload() -> None:
    wire = encode(Publish("t", b"x" * 200), 4)
    assert wire[:3] == b"\x30\xcb\x01"
    assert decode(wire, 4) == Publish("t", b"x" * 200)


def test_mqtt5_shortest_forms() -> None:
    assert encode(PubAck(1), 5) == b"\x40\x02\x00\x01"
    assert encode(PubRel(1, 0x92), 5) == b"\x62\x03\x00\x01\x92"
    assert encode(Disconnect(), 5) == b"\xe0\x00"
    assert encode(Auth(), 5) == b"\xf0\x00"
    assert encode(Auth(0x19), 5) == b"\xf0\x02\x19\x00"


@pytest.mark.parametrize(
    ("packet", "level", "message"),
    [
        (Publish("t", qos=3), 4, "QoS must be 0, 1 or 2"),
        (Publish("t", qos=0, packet_id=1), 4, "QoS 0 PUBLISH has no packet identifier"),
        (Publish("t", qos=0, dup=True), 4, "QoS 0 PUBLISH has no packet identifier and no DUP"),
        (Publish("t", qos=1), 4, "needs a packet identifier"),
        (Publish("t", qos=1, packet_id=0), 4, "packet identifier must be in 1..65535"),
        (Publish("a/+"), 4, "wildcard"),
        (Publish(""), 4, "empty"),
        (Publish("t", properties=Properties(topic_alias=1)), 4, "require protocol level 5"),
        (Publish("t", properties=Properties(session_expiry_interval=1)), 5, "not allowed in PUBLISH"),
        (PubAck(1, 0x10), 4, "require protocol level 5"),
        (PubAck(1, 0x92), 5, "0x92 is not valid in PUBACK"),
        (ConnAck(True, 5), 4, "session_present must be False"),
        (ConnAck(False, 0x84), 4, "0x84 is not valid in CONNACK"),
        (Subscribe(1, ()), 4, "at least one subscription"),
        (Subscribe(1, (Subscription("a", no_local=True),)), 4, "require protocol level 5"),
        (Subscribe(1, (Subscription("$share/g/a", no_local=True),)), 5, "shared subscription"),
        (Subscribe(1, (Subscription("a/#/b"),)), 4, "'#' must be the whole last level"),
        (Subscribe(1, (Subscription("a", retain_handling=3),)), 5, "retain handling must be in 0..2"),
        (SubAck(1, ()), 4, "at least one reason code"),
        (Unsubscribe(1, ()), 4, "at least one topic filter"),
        (UnsubAck(1, (0,)), 4, "require protocol level 5"),
        (UnsubAck(1, ()), 5, "at least one reason code"),
        (Disconnect(0x81), 4, "require protocol level 5"),
        (Auth(), 4, "AUTH requires protocol level 5"),
        (PubAck(1), None, "protocol_level must be 3, 4 or 5"),
        (Connect("c", 4, password=b"p"), None, "password without a user name"),
        (Connect("c", 6), None, "protocol_level must be 3, 4 or 5"),
        (Connect("c", 4, will=Will("a/#")), None, "will topic"),
        (Connect("c", 4, keep_alive=70_000), None, "keep alive"),
        (Connect("c\x00"), None, "client identifier contains U\\+0000"),
        (Connect("c", 4), 5, "contradicts"),
    ],
)
def test_encoder_rejects(packet: object, level: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(packet, level)  # type: ignore[arg-type]


def test_encode_rejects_non_packets() -> None:
    with pytest.raises(TypeError, match="not an MQTT packet"):
        encode("PINGREQ", 4)  # type: ignore[arg-type]


def test_publish_is_mutable_for_in_place_rewrites() -> None:
    packet = decode(bytes.fromhex("30 07 0000 03 23 0005 78"), 5)
    assert isinstance(packet, Publish)
    packet.topic = "root/sg/d1"
    packet.properties = Properties()
    assert encode(packet, 4) == bytes.fromhex("30 0d 000a 726f6f742f73672f6431 78")
