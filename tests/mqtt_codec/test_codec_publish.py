"""PUBLISH in MQTT 3.1.1 and 5.0."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    InvalidTopicName,
    MalformedPacket,
    PacketReader,
    Properties,
    ProtocolViolation,
    Publish,
    decode,
    encode,
)

# paho-mqtt 2.2 publishing b'{"t":1}' to root/sg/d1 with QoS 0, 1 (id 2) and 2 (id 3).
PAHO_QOS0 = bytes.fromhex("30 13 000a 726f6f742f73672f6431 7b2274223a317d")
PAHO_QOS1 = bytes.fromhex("32 15 000a 726f6f742f73672f6431 0002 7b2274223a317d")
PAHO_QOS2 = bytes.fromhex("34 15 000a 726f6f742f73672f6431 0003 7b2274223a317d")
# paho's MQTTv5 QoS 1 publish with Message Expiry Interval 60 and User Property k=v.
PAHO_V5_QOS1 = bytes.fromhex(
    "32 22 000a 726f6f742f73672f6431 0002 0c 02 0000003c 26 0001 6b 0001 76 7b2274223a317d"
)

PAYLOAD = b'{"t":1}'


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (PAHO_QOS0, Publish("root/sg/d1", PAYLOAD)),
        (PAHO_QOS1, Publish("root/sg/d1", PAYLOAD, 1, packet_id=2)),
        (PAHO_QOS2, Publish("root/sg/d1", PAYLOAD, 2, packet_id=3)),
    ],
)
@pytest.mark.parametrize("level", [3, 4])
def test_decode_paho_publish(wire: bytes, expected: Publish, level: int) -> None:
    assert decode(wire, level) == expected
    assert PacketReader(level).feed(wire) == [expected]
    assert encode(expected, level) == wire


def test_decode_paho_publish_v5() -> None:
    expected = Publish(
        "root/sg/d1",
        PAYLOAD,
        1,
        packet_id=2,
        properties=Properties(message_expiry_interval=60, user_properties=(("k", "v"),)),
    )
    assert decode(PAHO_V5_QOS1, 5) == expected
    assert encode(expected, 5) == PAHO_V5_QOS1


def test_retain_and_dup_flags() -> None:
    packet = decode(bytes.fromhex("3b 06 0001 61 0007 78"), 4)
    assert packet == Publish("a", b"x", 1, retain=True, dup=True, packet_id=7)


def test_empty_payload() -> None:
    assert decode(bytes.fromhex("30 03 0001 61"), 4) == Publish("a", b"")


@pytest.mark.parametrize("topic", [b"a/+", b"#", b"a/b#"])
@pytest.mark.parametrize("level", [3, 4, 5])
def test_topic_name_must_not_contain_wildcards(topic: bytes, level: int) -> None:
    props = b"\x00" if level == 5 else b""
    body = len(topic).to_bytes(2, "big") + topic + props + b"x"
    wire = bytes((0x30, len(body))) + body
    for attempt in (lambda: decode(wire, level), lambda: PacketReader(level).feed(wire)):
        with pytest.raises(InvalidTopicName, match="wildcard") as info:
            attempt()
        assert info.value.reason_code == 0x90
        assert info.value.offset == 2


@pytest.mark.parametrize("level", [3, 4])
def test_empty_topic_is_invalid_before_mqtt5(level: int) -> None:
    with pytest.raises(InvalidTopicName, match="empty"):
        PacketReader(level).feed(bytes.fromhex("30 03 0000 78"))


def test_packet_identifier_must_be_non_zero() -> None:
    wire = bytes.fromhex("32 06 0001 61 0000 78")
    with pytest.raises(MalformedPacket, match="packet identifier must be non-zero") as info:
        PacketReader(4).feed(wire)
    assert info.value.offset == 5


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("30 03 0005 61", "topic name needs 5 bytes"),
        ("32 04 0001 61 00", "packet identifier needs 2 bytes"),
        ("30 04 0002 ff61", "not well-formed UTF-8"),
        ("30 04 0002 6100", "U\\+0000"),
        ("30 05 0003 eda080", "not well-formed UTF-8"),
        ("30 01 00", "length of topic name needs 2 bytes"),
    ],
)
def test_malformed_publish(wire: str, message: str) -> None:
    raw = bytes.fromhex(wire)
    with pytest.raises(MalformedPacket, match=message):
        decode(raw, 4)
    with pytest.raises(MalformedPacket, match=message):
        PacketReader(4).feed(raw)


def test_mqtt5_topic_alias() -> None:
    with_alias = bytes.fromhex("30 07 0000 03 23 0005 78")
    assert decode(with_alias, 5) == Publish("", b"x", properties=Properties(topic_alias=5))
    with pytest.raises(ProtocolViolation, match="Topic Alias has value 0") as info:
        decode(bytes.fromhex("30 07 0000 03 23 0000 78"), 5)
    assert info.value.reason_code == 0x94
    with pytest.raises(InvalidTopicName, match="empty and there is no topic alias"):
        decode(bytes.fromhex("30 04 0000 00 78"), 5)


def test_mqtt5_publish_may_repeat_subscription_identifier_and_user_property() -> None:
    wire = bytes.fromhex("30 18 0001 61 13 0b 01 0b 8001 26 0001 61 0001 62 26 0001 61 0001 63 78")
    assert decode(wire, 5) == Publish(
        "a",
        b"x",
        properties=Properties(subscription_identifiers=(1, 128), user_properties=(("a", "b"), ("a", "c"))),
    )
    assert encode(decode(wire, 5), 5) == wire


def test_mqtt5_publish_rejects_foreign_and_duplicate_properties() -> None:
    with pytest.raises(ProtocolViolation, match="Session Expiry Interval is not allowed in PUBLISH"):
        decode(bytes.fromhex("30 0a 0001 61 05 11 00000001 78"), 5)
    with pytest.raises(ProtocolViolation, match="Content Type appears more than once"):
        decode(bytes.fromhex("30 0b 0001 61 06 03 0000 03 0000 78"), 5)
    with pytest.raises(ProtocolViolation, match="Subscription Identifier has value 0"):
        decode(bytes.fromhex("30 07 0001 61 02 0b 00 78"), 5)
