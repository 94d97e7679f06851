"""PacketReader: incremental decoding, limits, protocol level negotiation, error behaviour."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    Connect,
    MalformedPacket,
    PacketReader,
    PacketTooLarge,
    PingReq,
    Properties,
    ProtocolViolation,
    PubAck,
    Publish,
    UnsupportedProtocolVersion,
    decode,
    encode,
)

from .test_codec_connect import PAHO_V5, PAHO_V311
from .test_codec_publish import PAHO_QOS0, PAHO_QOS1, PAHO_QOS2, PAHO_V5_QOS1

STREAM_V4 = PAHO_V311 + PAHO_QOS0 + PAHO_QOS1 + PAHO_QOS2 + b"\x62\x02\x00\x03\xc0\x00\xe0\x00"


def _expected_v4() -> list[object]:
    return [
        decode(PAHO_V311),
        decode(PAHO_QOS0, 4),
        decode(PAHO_QOS1, 4),
        decode(PAHO_QOS2, 4),
        decode(b"\x62\x02\x00\x03", 4),
        PingReq(),
        decode(b"\xe0\x00", 4),
    ]


def test_whole_stream_in_one_chunk() -> None:
    reader = PacketReader()
    assert reader.feed(STREAM_V4) == _expected_v4()
    assert reader.protocol_level == 4
    assert reader.buffered == 0


def test_byte_by_byte() -> None:
    reader = PacketReader()
    packets: list[object] = []
    for index in range(len(STREAM_V4)):
        packets.extend(reader.feed(STREAM_V4[index : index + 1]))
    assert packets == _expected_v4()


def test_partial_packet_is_buffered() -> None:
    reader = PacketReader(4)
    assert reader.feed(PAHO_QOS1[:7]) == []
    assert reader.buffered == 7
    assert reader.feed(b"") == []
    assert reader.feed(bytearray(PAHO_QOS1[7:]) + PAHO_QOS0[:1]) == [decode(PAHO_QOS1, 4)]
    assert reader.buffered == 1
    assert reader.feed(memoryview(PAHO_QOS0[1:])) == [decode(PAHO_QOS0, 4)]


def test_large_packet_in_small_chunks() -> None:
    packet = Publish("big", bytes(range(256)) * 2000, 1, packet_id=9)
    wire = encode(packet, 4)
    reader = PacketReader(4)
    got: list[object] = []
    for start in range(0, len(wire), 1000):
        got.extend(reader.feed(wire[start : start + 1000]))
    assert got == [packet]


def test_connect_sets_the_level_for_the_rest_of_the_chunk() -> None:
    reader = PacketReader()
    packets = reader.feed(PAHO_V5 + PAHO_V5_QOS1)
    assert reader.protocol_level == 5
    assert packets[1] == Publish(
        "root/sg/d1",
        b'{"t":1}',
        1,
        packet_id=2,
        properties=Properties(message_expiry_interval=60, user_properties=(("k", "v"),)),
    )


def test_second_connect_is_a_protocol_error() -> None:
    reader = PacketReader()
    reader.feed(PAHO_V311)
    with pytest.raises(ProtocolViolation, match="second CONNECT"):
        reader.feed(PAHO_V311)


def test_first_packet_must_be_connect() -> None:
    with pytest.raises(ProtocolViolation, match="PUBLISH received before CONNECT"):
        PacketReader().feed(PAHO_QOS0)


def test_unsupported_version_through_the_reader() -> None:
    wire = bytes.fromhex("10 0c 0004 4d515454 06 02 003c 0000")
    with pytest.raises(UnsupportedProtocolVersion) as info:
        PacketReader().feed(wire)
    assert info.value.protocol_level == 6


def test_packet_too_large_is_raised_from_the_fixed_header_alone() -> None:
    reader = PacketReader(4, max_packet_size=1000)
    assert reader.feed(b"\x32") == []
    assert reader.feed(b"\xff") == []
    with pytest.raises(PacketTooLarge, match="16386 bytes exceeds the maximum packet size of 1000") as info:
        reader.feed(b"\x7f")
    assert info.value.reason_code == 0x95
    assert info.value.size == 16_386
    assert info.value.limit == 1000


@pytest.mark.parametrize("level", [4, 5])
def test_packet_size_limit_is_inclusive(level: int) -> None:
    wire = encode(Publish("t", b"x" * 95), level)
    assert PacketReader(level, max_packet_size=len(wire)).feed(wire) == [decode(wire, level)]
    with pytest.raises(PacketTooLarge):
        PacketReader(level, max_packet_size=len(wire) - 1).feed(wire[:2])


def test_limit_applies_to_connect() -> None:
    with pytest.raises(PacketTooLarge):
        PacketReader(max_packet_size=20).feed(PAHO_V311[:2])


def test_error_keeps_preceding_packets_and_is_sticky() -> None:
    reader = PacketReader(4)
    ack = b"\x40\x02\x00\x01"
    with pytest.raises(MalformedPacket) as info:
        reader.feed(ack + PAHO_QOS0 + b"\x40\x02\x00\x00" + ack)
    assert info.value.packets == [PubAck(1), decode(PAHO_QOS0, 4)]
    assert reader.error is info.value
    with pytest.raises(MalformedPacket) as again:
        reader.feed(ack)
    assert again.value.packets == []


def test_header_errors_are_raised_before_the_body_arrives() -> None:
    with pytest.raises(MalformedPacket, match="fixed header flags"):
        PacketReader(4).feed(b"\x41")
    with pytest.raises(MalformedPacket, match="QoS 3"):
        PacketReader(4).feed(b"\x36\xff")


def test_many_distinct_topics_beyond_the_topic_cache() -> None:
    packets = [Publish(f"root/sg/d{i}", b"v", 1, packet_id=i + 1) for i in range(700)]
    wire = b"".join(encode(p, 4) for p in packets)
    reader = PacketReader(4)
    assert reader.feed(wire) == packets
    assert reader.feed(wire) == packets


def test_fast_path_flags() -> None:
    packets = [
        Publish("a/b", b"1", 0, retain=True),
        Publish("a/b", b"2", 1, True, True, 5),
        Publish("a/b", b"", 2, False, True, 65535),
    ]
    wire = b"".join(encode(p, 3) for p in packets)
    assert PacketReader(3).feed(wire) == packets


def test_mqtt5_publishes_with_and_without_properties() -> None:
    packets = [
        Publish("a/b", b"1", 0),
        Publish("a/b", b"2", 1, True, True, 5),
        Publish("a/b", b"", 2, packet_id=65535),
        Publish("a/b", b"3", 1, packet_id=6, properties=Properties(topic_alias=1)),
        Publish("", b"4", 0, properties=Properties(topic_alias=1)),
        Publish("a/b", b"5", 0, properties=Properties(user_properties=(("k", "v"),))),
    ]
    wire = b"".join(encode(p, 5) for p in packets)
    assert PacketReader(5).feed(wire) == packets == [decode(encode(p, 5), 5) for p in packets]


@pytest.mark.parametrize("qos", [0, 1])
def test_mqtt5_publish_without_its_property_length_is_malformed(qos: int) -> None:
    wire = bytearray(encode(Publish("a/b", b"", qos, packet_id=qos or None), 5))
    del wire[-1]  # the property length byte, the last byte of a PUBLISH with an empty payload
    wire[1] -= 1
    with pytest.raises(MalformedPacket) as expected:
        decode(bytes(wire), 5)
    with pytest.raises(MalformedPacket) as through_reader:
        PacketReader(5).feed(bytes(wire))
    assert str(through_reader.value) == str(expected.value)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="protocol_level"):
        PacketReader(2)
    with pytest.raises(ValueError, match="max_packet_size"):
        PacketReader(4, max_packet_size=1)


def test_client_side_reader_with_known_level() -> None:
    reader = PacketReader(5)
    assert reader.feed(b"\x20\x03\x00\x00\x00\xd0\x00") == [
        decode(b"\x20\x03\x00\x00\x00", 5),
        decode(b"\xd0\x00", 5),
    ]
    with pytest.raises(ProtocolViolation):
        reader.feed(encode(Connect("x", 5)))
