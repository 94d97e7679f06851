"""SUBSCRIBE and UNSUBSCRIBE."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    InvalidTopicFilter,
    MalformedPacket,
    Properties,
    ProtocolViolation,
    Subscribe,
    Subscription,
    Unsubscribe,
    decode,
    encode,
)

# paho-mqtt 2.2: subscribe([("root/sg/+", 1), ("root/#", 2)]) and unsubscribe("root/#").
PAHO_SUBSCRIBE_V4 = bytes.fromhex("82 17 0004 0009 726f6f742f73672f2b 01 0006 726f6f742f23 02")
PAHO_SUBSCRIBE_V5 = bytes.fromhex("82 18 0004 00 0009 726f6f742f73672f2b 01 0006 726f6f742f23 02")
PAHO_UNSUBSCRIBE_V4 = bytes.fromhex("a2 0a 0005 0006 726f6f742f23")
PAHO_UNSUBSCRIBE_V5 = bytes.fromhex("a2 0b 0005 00 0006 726f6f742f23")

SUBS = (Subscription("root/sg/+", 1), Subscription("root/#", 2))


def _subscribe(level: int, options: int, topic_filter: bytes = b"a/b", props: bytes = b"\x00") -> bytes:
    body = b"\x00\x01" + (props if level == 5 else b"")
    body += len(topic_filter).to_bytes(2, "big") + topic_filter + bytes((options,))
    return bytes((0x82, len(body))) + body


@pytest.mark.parametrize(
    ("level", "wire"), [(3, PAHO_SUBSCRIBE_V4), (4, PAHO_SUBSCRIBE_V4), (5, PAHO_SUBSCRIBE_V5)]
)
def test_decode_paho_subscribe(level: int, wire: bytes) -> None:
    assert decode(wire, level) == Subscribe(4, SUBS)
    assert encode(Subscribe(4, SUBS), level) == wire


@pytest.mark.parametrize(("level", "wire"), [(4, PAHO_UNSUBSCRIBE_V4), (5, PAHO_UNSUBSCRIBE_V5)])
def test_decode_paho_unsubscribe(level: int, wire: bytes) -> None:
    assert decode(wire, level) == Unsubscribe(5, ("root/#",))
    assert encode(Unsubscribe(5, ("root/#",)), level) == wire


def test_mqtt5_subscription_options() -> None:
    packet = decode(_subscribe(5, 0x2D), 5)
    assert packet == Subscribe(
        1, (Subscription("a/b", 1, no_local=True, retain_as_published=True, retain_handling=2),)
    )
    assert encode(packet, 5) == _subscribe(5, 0x2D)


@pytest.mark.parametrize(
    ("level", "options"), [(3, 0x04), (4, 0x04), (4, 0x08), (4, 0x10), (4, 0x80), (5, 0x40), (5, 0x80)]
)
def test_subscription_options_reserved_bits(level: int, options: int) -> None:
    with pytest.raises(MalformedPacket, match="reserved subscription option bits") as info:
        decode(_subscribe(level, options), level)
    assert info.value.offset == (10 if level == 5 else 9)


@pytest.mark.parametrize("level", [4, 5])
def test_subscription_qos_3_is_malformed(level: int) -> None:
    with pytest.raises(MalformedPacket, match="maximum QoS bits are 11"):
        decode(_subscribe(level, 0x03), level)


def test_retain_handling_3_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolViolation, match="retain handling is 3"):
        decode(_subscribe(5, 0x30), 5)


def test_no_local_on_shared_subscription_is_a_protocol_error() -> None:
    assert decode(_subscribe(5, 0x01, b"$share/g/a"), 5) == Subscribe(1, (Subscription("$share/g/a", 1),))
    with pytest.raises(ProtocolViolation, match="no local is set on a shared subscription"):
        decode(_subscribe(5, 0x05, b"$share/g/a"), 5)


@pytest.mark.parametrize("level", [4, 5])
@pytest.mark.parametrize("topic_filter", [b"a/#/b", b"a+", b"", b"a#"])
def test_invalid_topic_filter(level: int, topic_filter: bytes) -> None:
    with pytest.raises(InvalidTopicFilter) as info:
        decode(_subscribe(level, 0, topic_filter), level)
    assert info.value.reason_code == 0x8F
    assert info.value.offset == (5 if level == 5 else 4)


def test_shared_syntax_only_in_mqtt5() -> None:
    assert decode(_subscribe(4, 0, b"$share/g"), 4) == Subscribe(1, (Subscription("$share/g"),))
    with pytest.raises(InvalidTopicFilter, match="ShareName"):
        decode(_subscribe(5, 0, b"$share/g"), 5)


def test_subscribe_without_topic_filters_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolViolation, match="SUBSCRIBE: contains no topic filter"):
        decode(bytes.fromhex("82 02 0001"), 4)
    with pytest.raises(ProtocolViolation, match="SUBSCRIBE: contains no topic filter"):
        decode(bytes.fromhex("82 03 0001 00"), 5)


def test_subscribe_truncated_options_and_packet_id_zero() -> None:
    with pytest.raises(MalformedPacket, match="subscription options is missing"):
        decode(bytes.fromhex("82 05 0001 0001 61"), 4)
    with pytest.raises(MalformedPacket, match="packet identifier must be non-zero"):
        decode(bytes.fromhex("82 06 0000 0001 61 00"), 4)


def test_subscription_identifier_appears_at_most_once() -> None:
    once = _subscribe(5, 0, props=bytes.fromhex("02 0b 07"))
    assert decode(once, 5) == Subscribe(1, (Subscription("a/b"),), Properties(subscription_identifiers=(7,)))
    with pytest.raises(ProtocolViolation, match="Subscription Identifier appears more than once"):
        decode(_subscribe(5, 0, props=bytes.fromhex("04 0b 07 0b 08")), 5)


def test_unsubscribe_rules() -> None:
    with pytest.raises(ProtocolViolation, match="UNSUBSCRIBE: contains no topic filter"):
        decode(bytes.fromhex("a2 02 0001"), 4)
    with pytest.raises(InvalidTopicFilter):
        decode(bytes.fromhex("a2 07 0001 0003 612b62"), 4)
    with pytest.raises(MalformedPacket, match="topic filter needs 3 bytes"):
        decode(bytes.fromhex("a2 06 0001 0003 6162"), 4)
    props = bytes.fromhex("a2 0d 0001 07 26 0001 6b 0001 76 0001 23")
    assert decode(props, 5) == Unsubscribe(1, ("#",), Properties(user_properties=(("k", "v"),)))
