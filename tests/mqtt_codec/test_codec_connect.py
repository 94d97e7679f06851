"""CONNECT in MQTT 3.1, 3.1.1 and 5.0, and the reply to unsupported versions."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    InvalidTopicName,
    MalformedPacket,
    PacketReader,
    Properties,
    ProtocolViolation,
    UnsupportedProtocolVersion,
    Will,
    decode,
    encode,
    encode_unsupported_version_connack,
)

# Bytes written by paho-mqtt 2.2: client id "dev-1", user "user", password "pw", keep alive 30,
# clean session, will "root/sg/will" = "bye" QoS 1 retained.
PAHO_V31 = bytes.fromhex(
    "10 30 0006 4d5149736470 03 ee 001e 0005 6465762d31 000c 726f6f742f73672f77696c6c 0003 627965"
    " 0004 75736572 0002 7077"
)
PAHO_V311 = bytes.fromhex(
    "10 2e 0004 4d515454 04 ee 001e 0005 6465762d31 000c 726f6f742f73672f77696c6c 0003 627965"
    " 0004 75736572 0002 7077"
)
# The same from paho's MQTTv5 client, with Session Expiry Interval 30 in the CONNECT properties.
PAHO_V5 = bytes.fromhex(
    "10 35 0004 4d515454 05 ee 001e 05 11 0000001e 0005 6465762d31 00 000c 726f6f742f73672f77696c6c"
    " 0003 627965 0004 75736572 0002 7077"
)

WILL = Will("root/sg/will", b"bye", qos=1, retain=True)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (PAHO_V31, Connect("dev-1", 3, True, 30, "user", b"pw", WILL)),
        (PAHO_V311, Connect("dev-1", 4, True, 30, "user", b"pw", WILL)),
        (PAHO_V5, Connect("dev-1", 5, True, 30, "user", b"pw", WILL, Properties(session_expiry_interval=30))),
    ],
)
def test_decode_paho_connect(wire: bytes, expected: Connect) -> None:
    assert decode(wire) == expected
    assert decode(wire, 4) == expected  # CONNECT ignores the caller's level
    assert encode(expected) == wire


def test_protocol_name_follows_level() -> None:
    assert Connect(protocol_level=3).protocol_name == "MQIsdp"
    assert Connect(protocol_level=4).protocol_name == "MQTT"
    assert Connect(protocol_level=5).protocol_name == "MQTT"


def test_minimal_connect() -> None:
    wire = bytes.fromhex("10 0c 0004 4d515454 04 02 003c 0000")
    assert decode(wire) == Connect("", 4, True, 60)


def test_mqtt5_will_properties_and_password_without_username() -> None:
    will = Will("t", b"", 0, False, Properties(will_delay_interval=5, content_type="json"))
    packet = Connect("c", 5, False, 0, None, b"secret", will, Properties(receive_maximum=10))
    wire = encode(packet)
    assert wire[9] == 0x44  # password + will, no user name
    assert decode(wire) == packet


def _v4_connect(flags: int, payload: str = "0001 63") -> bytes:
    body = bytes.fromhex("0004 4d515454 04") + bytes((flags,)) + bytes.fromhex("003c" + payload)
    return bytes((0x10, len(body))) + body


def test_reserved_connect_flag_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="reserved connect flag") as info:
        decode(_v4_connect(0x03))
    assert info.value.offset == 9


@pytest.mark.parametrize(
    ("flags", "message"),
    [(0x0A, "will QoS or will retain"), (0x22, "will QoS or will retain"), (0x1E, "will QoS bits are 11")],
)
def test_will_flag_rules(flags: int, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode(_v4_connect(flags))


@pytest.mark.parametrize("level", [3, 4])
def test_password_without_username_is_malformed_before_mqtt5(level: int) -> None:
    wire = bytearray(encode(Connect("c", 5, password=b"pw")))
    name = b"\x00\x06MQIsdp" if level == 3 else b"\x00\x04MQTT"
    body = name + bytes((level,)) + wire[9:10] + wire[10:12] + wire[13:]  # drop the property length
    with pytest.raises(MalformedPacket, match="password flag is set without the user name flag"):
        decode(bytes((0x10, len(body))) + body)


def test_will_topic_must_be_a_topic_name() -> None:
    wire = _v4_connect(0x06, "0001 63 0003 612f2b 0000")
    with pytest.raises(InvalidTopicName, match="will topic name"):
        decode(wire)


def test_trailing_bytes_after_connect_are_malformed() -> None:
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(_v4_connect(0x02, "0001 63 ff"))


def test_truncated_payload_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="user name"):
        decode(_v4_connect(0x82))


def test_client_id_must_be_utf8() -> None:
    with pytest.raises(MalformedPacket, match="client identifier is not well-formed UTF-8") as info:
        decode(_v4_connect(0x02, "0002 c328"))
    assert info.value.offset == 14


@pytest.mark.parametrize(
    ("name", "level"), [("MQTT", 3), ("MQTT", 6), ("MQIsdp", 4), ("HTTP", 4), ("mqtt", 4), ("MQTT", 0)]
)
def test_unsupported_protocol_version(name: str, level: int) -> None:
    raw = name.encode()
    body = len(raw).to_bytes(2, "big") + raw + bytes((level,)) + b"\xff\xff"  # the rest is never read
    wire = bytes((0x10, len(body))) + body
    with pytest.raises(UnsupportedProtocolVersion) as info:
        decode(wire)
    assert info.value.reason_code == 0x84
    assert info.value.protocol_name == name
    assert info.value.protocol_level == level
    with pytest.raises(UnsupportedProtocolVersion):
        PacketReader().feed(wire)


def test_unsupported_version_connack_is_the_311_form() -> None:
    assert encode_unsupported_version_connack() == b"\x20\x02\x00\x01"
    assert encode(ConnAck(False, 1), 4) == encode_unsupported_version_connack()
    assert decode(encode_unsupported_version_connack(), 4) == ConnAck(False, 1)


def test_mqtt5_connect_property_rules() -> None:
    topic_alias = bytes.fromhex("10 11 0004 4d515454 05 02 003c 03 23 0001 0001 63")
    with pytest.raises(ProtocolViolation, match="Topic Alias is not allowed in CONNECT"):
        decode(topic_alias)
    receive_max_zero = bytes.fromhex("10 11 0004 4d515454 05 02 003c 03 21 0000 0001 63")
    with pytest.raises(ProtocolViolation, match="Receive Maximum has value 0"):
        decode(receive_max_zero)
    delay_on_connect = bytes.fromhex("10 13 0004 4d515454 05 02 003c 05 18 00000001 0001 63")
    with pytest.raises(ProtocolViolation, match="Will Delay Interval is not allowed in CONNECT"):
        decode(delay_on_connect)
