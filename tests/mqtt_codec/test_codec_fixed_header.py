"""Fixed header rules: packet types, flag bits, Remaining Length, framing."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    MalformedPacket,
    MQTTProtocolError,
    PacketReader,
    ProtocolViolation,
    decode,
    read_fixed_header,
)

# A minimal valid MQTT 3.1.1 packet of each non-PUBLISH type, as (first byte, rest).
MINIMAL_V4 = {
    "CONNACK": (0x20, "02 00 00"),
    "PUBACK": (0x40, "02 00 01"),
    "PUBREC": (0x50, "02 00 01"),
    "PUBREL": (0x62, "02 00 01"),
    "PUBCOMP": (0x70, "02 00 01"),
    "SUBSCRIBE": (0x82, "06 0001 0001 61 00"),
    "SUBACK": (0x90, "03 0001 00"),
    "UNSUBSCRIBE": (0xA2, "05 0001 0001 61"),
    "UNSUBACK": (0xB0, "02 0001"),
    "PINGREQ": (0xC0, "00"),
    "PINGRESP": (0xD0, "00"),
    "DISCONNECT": (0xE0, "00"),
}


@pytest.mark.parametrize("name", list(MINIMAL_V4))
def test_fixed_header_flags_must_match_the_packet_type(name: str) -> None:
    first, rest = MINIMAL_V4[name]
    body = bytes.fromhex(rest)
    assert type(decode(bytes((first,)) + body, 4)).__name__.upper() == name
    for flags in range(16):
        if flags == first & 0x0F:
            continue
        wire = bytes(((first & 0xF0) | flags,)) + body
        with pytest.raises(MalformedPacket, match="fixed header flags must be") as info:
            decode(wire, 4)
        assert info.value.offset == 0
        assert info.value.reason_code == 0x81


def test_packet_type_0_is_reserved() -> None:
    with pytest.raises(MalformedPacket, match="packet type 0 is reserved"):
        decode(b"\x00\x00", 4)


@pytest.mark.parametrize("level", [3, 4])
def test_packet_type_15_is_reserved_before_mqtt5(level: int) -> None:
    with pytest.raises(MalformedPacket, match="packet type 15 is reserved"):
        decode(b"\xf0\x00", level)


def test_publish_qos_3_is_malformed() -> None:
    for level in (3, 4, 5):
        with pytest.raises(MalformedPacket, match="QoS 3"):
            decode(bytes.fromhex("36 07 0001 61 0001 78"), level)


def test_publish_dup_on_qos0_is_malformed_in_311_and_protocol_error_in_5() -> None:
    wire = bytes.fromhex("38 04 0001 61 78")
    with pytest.raises(MalformedPacket, match="DUP flag"):
        decode(wire, 4)
    with pytest.raises(ProtocolViolation, match="DUP flag") as info:
        decode(wire, 5)
    assert not isinstance(info.value, MalformedPacket)
    assert info.value.reason_code == 0x82


def test_remaining_length_fourth_byte_with_continuation_is_malformed() -> None:
    wire = bytes.fromhex("30 ff ff ff ff 01")
    with pytest.raises(MalformedPacket, match="remaining length is longer than 4 bytes"):
        decode(wire, 4)
    with pytest.raises(MalformedPacket, match="remaining length is longer than 4 bytes"):
        PacketReader(4).feed(wire[:5])


def test_remaining_length_must_be_minimal() -> None:
    with pytest.raises(MalformedPacket, match="not minimally encoded"):
        decode(bytes.fromhex("c0 80 00"), 4)


def test_largest_remaining_length_parses() -> None:
    assert read_fixed_header(bytes.fromhex("30 ff ff ff 7f")) == (0x30, 268_435_455, 5)
    assert read_fixed_header(b"\x30\xff\xff") is None
    assert read_fixed_header(b"") is None


def test_first_packet_must_be_connect_when_level_unknown() -> None:
    with pytest.raises(ProtocolViolation, match="first packet must be CONNECT"):
        decode(b"\xc0\x00")
    with pytest.raises(ProtocolViolation, match="first packet must be CONNECT"):
        PacketReader().feed(b"\x30")


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("", "empty input"),
        ("40", "remaining length is incomplete"),
        ("40 02 00", "truncated"),
        ("40 02 00 01 00", "trailing byte"),
        ("c0 01 00", "trailing byte"),
    ],
)
def test_framing_errors(wire: str, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode(bytes.fromhex(wire), 4)


def test_errors_are_one_family() -> None:
    for exc_type in (MalformedPacket, ProtocolViolation):
        assert issubclass(exc_type, MQTTProtocolError)


def test_bad_protocol_level_argument() -> None:
    with pytest.raises(ValueError, match="protocol_level"):
        decode(b"\xc0\x00", 6)
