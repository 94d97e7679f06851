"""The MQTT 5 property table and generic property rules."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    PROPERTY_SPECS,
    InvalidTopicName,
    MalformedPacket,
    Properties,
    PropertyId,
    PropertyOwner,
    PropertyType,
    ProtocolViolation,
    allowed_properties,
    decode,
)
from iotdb_mqtt.codec.primitives import Cursor
from iotdb_mqtt.codec.properties import decode_properties, encode_properties

B, U16, U32, VBI, STR, BIN, PAIR = (
    PropertyType.BYTE,
    PropertyType.TWO_BYTE_INTEGER,
    PropertyType.FOUR_BYTE_INTEGER,
    PropertyType.VARIABLE_BYTE_INTEGER,
    PropertyType.UTF8_STRING,
    PropertyType.BINARY_DATA,
    PropertyType.UTF8_STRING_PAIR,
)

# MQTT 5.0 section 2.2.2.2, table 2-4.
SPEC_TABLE = {
    0x01: (B, "PUBLISH WILL"),
    0x02: (U32, "PUBLISH WILL"),
    0x03: (STR, "PUBLISH WILL"),
    0x08: (STR, "PUBLISH WILL"),
    0x09: (BIN, "PUBLISH WILL"),
    0x0B: (VBI, "PUBLISH SUBSCRIBE"),
    0x11: (U32, "CONNECT CONNACK DISCONNECT"),
    0x12: (STR, "CONNACK"),
    0x13: (U16, "CONNACK"),
    0x15: (STR, "CONNECT CONNACK AUTH"),
    0x16: (BIN, "CONNECT CONNACK AUTH"),
    0x17: (B, "CONNECT"),
    0x18: (U32, "WILL"),
    0x19: (B, "CONNECT"),
    0x1A: (STR, "CONNACK"),
    0x1C: (STR, "CONNACK DISCONNECT"),
    0x1F: (STR, "CONNACK PUBACK PUBREC PUBREL PUBCOMP SUBACK UNSUBACK DISCONNECT AUTH"),
    0x21: (U16, "CONNECT CONNACK"),
    0x22: (U16, "CONNECT CONNACK"),
    0x23: (U16, "PUBLISH"),
    0x24: (B, "CONNACK"),
    0x25: (B, "CONNACK"),
    0x26: (
        PAIR,
        "CONNECT CONNACK PUBLISH WILL PUBACK PUBREC PUBREL PUBCOMP SUBSCRIBE SUBACK UNSUBSCRIBE "
        "UNSUBACK DISCONNECT AUTH",
    ),
    0x27: (U32, "CONNECT CONNACK"),
    0x28: (B, "CONNACK"),
    0x29: (B, "CONNACK"),
    0x2A: (B, "CONNACK"),
}


def test_property_table_matches_the_specification() -> None:
    assert {int(s.id) for s in PROPERTY_SPECS} == set(SPEC_TABLE)
    for spec in PROPERTY_SPECS:
        wire_type, owners = SPEC_TABLE[spec.id]
        assert spec.type is wire_type, spec
        assert {o.name for o in spec.owners} == set(owners.split()), spec
        assert hasattr(Properties(), spec.attr)
    assert [s.id for s in PROPERTY_SPECS] == sorted(s.id for s in PROPERTY_SPECS)
    assert len(Properties.__slots__) == len(PROPERTY_SPECS)


def test_allowed_properties() -> None:
    assert allowed_properties(PropertyOwner.PUBREL) == {PropertyId.REASON_STRING, PropertyId.USER_PROPERTY}
    assert PropertyId.TOPIC_ALIAS in allowed_properties(PropertyOwner.PUBLISH)
    assert PropertyId.WILL_DELAY_INTERVAL not in allowed_properties(PropertyOwner.CONNECT)


def _decode(raw: str, owner: PropertyOwner = PropertyOwner.PUBLISH) -> Properties:
    data = bytes.fromhex(raw)
    cur = Cursor(data, 0, len(data), 0, owner.name)
    props = decode_properties(cur, owner)
    cur.expect_end()
    return props


def test_every_wire_type_decodes() -> None:
    props = _decode("1d 01 01 02 0000012c 03 0001 6a 09 0002 0102 23 0010 0b ffff7f 26 0001 61 0000")
    assert props == Properties(
        payload_format_indicator=1,
        message_expiry_interval=300,
        content_type="j",
        correlation_data=b"\x01\x02",
        topic_alias=16,
        subscription_identifiers=(2_097_151,),
        user_properties=(("a", ""),),
    )


def test_encoding_is_in_identifier_order_and_keeps_user_property_order() -> None:
    props = Properties(user_properties=(("z", "1"), ("a", "2")), topic_alias=1, payload_format_indicator=0)
    wire = encode_properties(props, PropertyOwner.PUBLISH)
    assert wire == bytes.fromhex("13 01 00 23 0001 26 0001 7a 0001 31 26 0001 61 0001 32")
    assert _decode(wire.hex()) == props


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ("01 04", MalformedPacket, "unknown property identifier 0x04"),
        ("02 80 00", MalformedPacket, "not minimally encoded"),
        ("05 02 0000", MalformedPacket, "property length 5 runs"),
        ("03 02 0000", MalformedPacket, "Message Expiry Interval needs 4 bytes but only 2 remain"),
        ("04 01 00 01 01", ProtocolViolation, "Payload Format Indicator appears more than once"),
        ("02 01 02", ProtocolViolation, "Payload Format Indicator has value 2"),
        ("03 11 0000", ProtocolViolation, "Session Expiry Interval is not allowed in PUBLISH"),
        ("05 08 0002 612b", InvalidTopicName, "Response Topic: topic name 'a\\+' contains a wildcard"),
        ("04 03 0001 ff", MalformedPacket, "Content Type is not well-formed UTF-8"),
    ],
)
def test_property_errors(raw: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _decode(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("03 21 0000", "Receive Maximum has value 0"),
        ("05 27 00000000", "Maximum Packet Size has value 0"),
        ("02 17 02", "Request Problem Information has value 2"),
        ("02 19 05", "Request Response Information has value 5"),
        ("06 26 0001 61 0001", "User Property value needs"),
    ],
)
def test_connect_property_errors(raw: str, message: str) -> None:
    with pytest.raises((ProtocolViolation, MalformedPacket), match=message):
        _decode(raw, PropertyOwner.CONNECT)


def test_connack_availability_flags_are_booleans() -> None:
    for ident in ("25", "28", "29", "2a", "24"):
        with pytest.raises(ProtocolViolation, match="has value 2"):
            _decode(f"02 {ident} 02", PropertyOwner.CONNACK)


def test_encoder_rejects_properties_the_packet_cannot_carry() -> None:
    with pytest.raises(ValueError, match="Topic Alias is not allowed in CONNECT"):
        encode_properties(Properties(topic_alias=1), PropertyOwner.CONNECT)
    with pytest.raises(ValueError, match="Subscription Identifier may appear only once in SUBSCRIBE"):
        encode_properties(Properties(subscription_identifiers=(1, 2)), PropertyOwner.SUBSCRIBE)
    with pytest.raises(ValueError, match=r"Receive Maximum must be in 1\.\.65535"):
        encode_properties(Properties(receive_maximum=0), PropertyOwner.CONNECT)


def test_property_offsets_are_packet_relative() -> None:
    with pytest.raises(ProtocolViolation) as info:
        decode(bytes.fromhex("30 0a 0001 61 05 11 00000001 78"), 5)
    assert info.value.offset == 6
