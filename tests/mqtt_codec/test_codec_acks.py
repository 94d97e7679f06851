"""CONNACK, PUBACK/PUBREC/PUBREL/PUBCOMP, SUBACK, UNSUBACK, PINGREQ/PINGRESP, DISCONNECT, AUTH."""

from __future__ import annotations

import pytest

from iotdb_mqtt.codec import (
    Auth,
    ConnAck,
    Disconnect,
    MalformedPacket,
    PingReq,
    PingResp,
    Properties,
    ProtocolViolation,
    PubAck,
    PubComp,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    UnsubAck,
    decode,
    encode,
)

ACKS = [(0x40, PubAck), (0x50, PubRec), (0x62, PubRel), (0x70, PubComp)]


@pytest.mark.parametrize(("first", "cls"), ACKS)
@pytest.mark.parametrize("level", [3, 4, 5])
def test_ack_short_form(first: int, cls: type[PubAck], level: int) -> None:
    wire = bytes((first,)) + bytes.fromhex("02 1234")
    assert decode(wire, level) == cls(0x1234)
    assert encode(cls(0x1234), level) == wire


@pytest.mark.parametrize(("first", "cls"), ACKS)
def test_ack_with_extra_bytes_is_malformed_in_311(first: int, cls: type[PubAck]) -> None:
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(bytes((first,)) + bytes.fromhex("03 0001 00"), 4)


@pytest.mark.parametrize(("first", "cls"), ACKS)
def test_ack_packet_identifier_zero(first: int, cls: type[PubAck]) -> None:
    with pytest.raises(MalformedPacket, match="non-zero"):
        decode(bytes((first,)) + bytes.fromhex("02 0000"), 4)


def test_mqtt5_puback_forms() -> None:
    assert decode(bytes.fromhex("40 03 0001 10"), 5) == PubAck(1, ReasonCode.NO_MATCHING_SUBSCRIBERS)
    assert encode(PubAck(1, 0x10), 5) == bytes.fromhex("40 03 0001 10")
    # Reason code and an empty property length are allowed even when they could be omitted.
    assert decode(bytes.fromhex("40 04 0001 00 00"), 5) == PubAck(1)
    with_reason_string = bytes.fromhex("40 0a 0001 80 06 1f 0003 626164")
    expected = PubAck(1, 0x80, Properties(reason_string="bad"))
    assert decode(with_reason_string, 5) == expected
    assert encode(expected, 5) == with_reason_string


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("40 03 0001 92", "reason code 0x92 is not valid in PUBACK"),
        ("62 03 0001 10", "reason code 0x10 is not valid in PUBREL"),
        ("70 03 0001 80", "reason code 0x80 is not valid in PUBCOMP"),
        ("40 09 0001 00 05 11 00000001", "Session Expiry Interval is not allowed in PUBACK"),
    ],
)
def test_mqtt5_ack_protocol_errors(wire: str, message: str) -> None:
    with pytest.raises(ProtocolViolation, match=message):
        decode(bytes.fromhex(wire), 5)


def test_pubrel_and_pubcomp_reason_codes() -> None:
    assert decode(bytes.fromhex("62 03 0001 92"), 5) == PubRel(1, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)
    assert decode(bytes.fromhex("70 03 0001 92"), 5) == PubComp(1, 0x92)


@pytest.mark.parametrize("code", range(6))
def test_connack_311_return_codes(code: int) -> None:
    wire = bytes.fromhex("20 02 00") + bytes((code,))
    assert decode(wire, 4) == ConnAck(False, code)
    assert encode(ConnAck(False, code), 4) == wire


def test_connack_311_rules() -> None:
    assert decode(bytes.fromhex("20 02 01 00"), 4) == ConnAck(True, 0)
    with pytest.raises(ProtocolViolation, match="0x06 is not valid"):
        decode(bytes.fromhex("20 02 00 06"), 4)
    with pytest.raises(MalformedPacket, match="reserved connect acknowledge flags"):
        decode(bytes.fromhex("20 02 02 00"), 4)
    with pytest.raises(ProtocolViolation, match="session present is set with a non-zero"):
        decode(bytes.fromhex("20 02 01 05"), 4)
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(bytes.fromhex("20 03 00 00 00"), 4)


def test_connack_mqtt5() -> None:
    wire = bytes.fromhex("20 0b 00 00 08 12 0001 61 24 01 25 00")
    expected = ConnAck(
        False, 0, Properties(assigned_client_identifier="a", maximum_qos=1, retain_available=0)
    )
    assert decode(wire, 5) == expected
    assert encode(expected, 5) == wire
    assert decode(bytes.fromhex("20 03 00 84 00"), 5) == ConnAck(
        False, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
    )
    with pytest.raises(ProtocolViolation, match="Maximum Qos has value 2"):
        decode(bytes.fromhex("20 05 00 00 02 24 02"), 5)
    with pytest.raises(ProtocolViolation, match="0x10 is not valid in CONNACK"):
        decode(bytes.fromhex("20 03 00 10 00"), 5)
    with pytest.raises(MalformedPacket, match="property length"):
        decode(bytes.fromhex("20 02 00 00"), 5)


def test_suback() -> None:
    assert decode(bytes.fromhex("90 05 0001 00 01 80"), 4) == SubAck(1, (0, 1, 0x80))
    assert decode(bytes.fromhex("90 05 0001 00 02 8f"), 5) == SubAck(1, (2, ReasonCode.TOPIC_FILTER_INVALID))
    with pytest.raises(ProtocolViolation, match="0x8F is not valid in SUBACK"):
        decode(bytes.fromhex("90 03 0001 8f"), 4)
    with pytest.raises(ProtocolViolation, match="0x03 is not valid in SUBACK") as info:
        decode(bytes.fromhex("90 04 0001 00 03"), 4)
    assert info.value.offset == 5
    with pytest.raises(ProtocolViolation, match="no reason code"):
        decode(bytes.fromhex("90 02 0001"), 4)


def test_unsuback() -> None:
    assert decode(bytes.fromhex("b0 02 0001"), 4) == UnsubAck(1)
    assert decode(bytes.fromhex("b0 05 0001 00 00 11"), 5) == UnsubAck(
        1, (0, ReasonCode.NO_SUBSCRIPTION_EXISTED)
    )
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(bytes.fromhex("b0 03 0001 00"), 4)
    with pytest.raises(ProtocolViolation, match="no reason code"):
        decode(bytes.fromhex("b0 03 0001 00"), 5)
    with pytest.raises(ProtocolViolation, match="0x01 is not valid in UNSUBACK"):
        decode(bytes.fromhex("b0 04 0001 00 01"), 5)


@pytest.mark.parametrize("level", [3, 4, 5])
def test_ping(level: int) -> None:
    assert decode(b"\xc0\x00", level) == PingReq()
    assert decode(b"\xd0\x00", level) == PingResp()
    assert encode(PingReq(), level) == b"\xc0\x00"
    assert encode(PingResp(), level) == b"\xd0\x00"
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(b"\xc0\x01\x00", level)


def test_disconnect() -> None:
    assert decode(b"\xe0\x00", 4) == Disconnect()
    with pytest.raises(MalformedPacket, match="trailing"):
        decode(b"\xe0\x01\x00", 4)
    assert decode(b"\xe0\x00", 5) == Disconnect()
    assert decode(b"\xe0\x01\x04", 5) == Disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)
    assert decode(b"\xe0\x02\x00\x00", 5) == Disconnect()
    with_props = bytes.fromhex("e0 07 8b 05 11 0000000a")
    expected = Disconnect(ReasonCode.SERVER_SHUTTING_DOWN, Properties(session_expiry_interval=10))
    assert decode(with_props, 5) == expected
    assert encode(expected, 5) == with_props
    assert encode(Disconnect(0x81), 5) == b"\xe0\x01\x81"
    with pytest.raises(ProtocolViolation, match="0x10 is not valid in DISCONNECT"):
        decode(b"\xe0\x01\x10", 5)
    with pytest.raises(ProtocolViolation, match="Topic Alias is not allowed in DISCONNECT"):
        decode(bytes.fromhex("e0 05 00 03 23 0001"), 5)


def test_auth() -> None:
    assert decode(b"\xf0\x00", 5) == Auth()
    wire = bytes.fromhex("f0 0a 18 08 15 0005 5343524144")
    expected = Auth(ReasonCode.CONTINUE_AUTHENTICATION, Properties(authentication_method="SCRAD"))
    assert decode(wire, 5) == expected
    assert encode(expected, 5) == wire
    with pytest.raises(MalformedPacket, match="property length"):
        decode(b"\xf0\x01\x18", 5)
    with pytest.raises(ProtocolViolation, match="0x80 is not valid in AUTH"):
        decode(b"\xf0\x02\x80\x00", 5)
