"""Decoding of complete MQTT packets.

CONNECT is decoded from its own header, whatever protocol level it announces. Every other packet
needs the protocol level negotiated by CONNECT (3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0), because MQTT 5
packets carry properties and reason codes.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Final

from .errors import (
    InvalidTopicFilter,
    InvalidTopicName,
    MalformedPacket,
    ProtocolViolation,
    UnsupportedProtocolVersion,
)
from .packet_type import PacketType
from .packets import (
    PROTOCOL_NAMES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
    Will,
)
from .primitives import MAX_VARINT, Cursor, decode_varint
from .properties import EMPTY_PROPERTIES, Properties, PropertyOwner, decode_properties
from .reason_codes import (
    AUTH_CODES,
    CONNACK_CODES,
    CONNACK_V3_CODES,
    DISCONNECT_CODES,
    PUBACK_CODES,
    PUBCOMP_CODES,
    PUBREC_CODES,
    PUBREL_CODES,
    SUBACK_CODES,
    SUBACK_V3_CODES,
    UNSUBACK_CODES,
)
from .topics import is_shared_filter, topic_filter_problem, topic_name_problem

MAX_PACKET_SIZE: Final = 1 + 4 + MAX_VARINT
"""Largest packet MQTT can express: fixed header byte, 4-byte remaining length, maximal body."""

PROTOCOL_LEVELS: Final = frozenset(PROTOCOL_NAMES)

PACKET_NAMES: Final[tuple[str, ...]] = ("RESERVED", *(t.name for t in PacketType))

_FLAGS_0010: Final = frozenset({PacketType.PUBREL, PacketType.SUBSCRIBE, PacketType.UNSUBSCRIBE})


def check_protocol_level(protocol_level: int | None) -> None:
    if protocol_level is not None and protocol_level not in PROTOCOL_LEVELS:
        raise ValueError(f"protocol_level must be None, 3, 4 or 5, got {protocol_level!r}")


def check_first_byte(first: int, protocol_level: int | None) -> None:
    """Validate packet type and fixed-header flags [MQTT-2.2.2-1], [MQTT-2.2.2-2], [MQTT-3.3.1-4].

    This needs only the first byte, so a stream reader can reject a bad packet before its body
    arrives. With ``protocol_level`` ``None`` (no CONNECT seen yet) only CONNECT is acceptable.
    """
    ptype = first >> 4
    flags = first & 0x0F
    if ptype == 0:
        raise MalformedPacket("packet type 0 is reserved", offset=0)
    name = PACKET_NAMES[ptype]
    if protocol_level is None and ptype != PacketType.CONNECT:
        raise ProtocolViolation(f"{name} received before CONNECT: the first packet must be CONNECT", offset=0)
    if ptype == PacketType.PUBLISH:
        qos = (flags >> 1) & 3
        if qos == 3:
            raise MalformedPacket("PUBLISH: QoS bits are 11 (QoS 3 does not exist)", offset=0)
        if qos == 0 and flags & 8:
            error = ProtocolViolation if protocol_level == 5 else MalformedPacket
            raise error("PUBLISH: DUP flag is set on a QoS 0 message", offset=0)
        return
    if ptype == PacketType.AUTH and protocol_level is not None and protocol_level < 5:
        raise MalformedPacket(f"packet type 15 is reserved in protocol level {protocol_level}", offset=0)
    expected = 2 if ptype in _FLAGS_0010 else 0
    if flags != expected:
        raise MalformedPacket(f"{name}: fixed header flags must be {expected:04b}, got {flags:04b}", offset=0)


def read_fixed_header(data: bytes, pos: int = 0, end: int | None = None) -> tuple[int, int, int] | None:
    """Parse the fixed header at ``data[pos]``: ``(first byte, remaining length, header size)``.

    Returns ``None`` if the header is still incomplete; raises :class:`MalformedPacket` if the
    Remaining Length is longer than four bytes or not minimally encoded.
    """
    if end is None:
        end = len(data)
    if pos >= end:
        return None
    result = decode_varint(data, pos + 1, end, "remaining length", pos)
    if result is None:
        return None
    remaining, after = result
    return data[pos], remaining, after - pos


def _fail_code(cur: Cursor, code: int, offset: int) -> None:
    cur.fail(f"reason code 0x{code:02X} is not valid in {cur.packet}", offset=offset, error=ProtocolViolation)


def _packet_id(cur: Cursor) -> int:
    offset = cur.offset
    value = cur.u16("packet identifier")
    if not value:
        cur.fail("packet identifier must be non-zero", offset=offset)
    return value


def _properties(cur: Cursor, level: int, owner: PropertyOwner) -> Properties:
    return decode_properties(cur, owner) if level == 5 else EMPTY_PROPERTIES


def _connect(cur: Cursor, flags: int, level: int) -> Connect:
    name = cur.utf8("protocol name")
    level_offset = cur.offset
    level = cur.u8("protocol level")  # CONNECT's own level governs the rest of the packet
    if PROTOCOL_NAMES.get(level) != name:
        raise UnsupportedProtocolVersion(
            f"CONNECT: unsupported protocol name {name!r} with level {level}; "
            "supported are 'MQIsdp' level 3, 'MQTT' level 4 and 'MQTT' level 5",
            protocol_name=name,
            protocol_level=level,
            offset=level_offset,
        )
    flags_offset = cur.offset
    connect_flags = cur.u8("connect flags")
    if connect_flags & 0x01:
        cur.fail("reserved connect flag (bit 0) is set", offset=flags_offset)
    has_will = connect_flags & 0x04
    will_qos = (connect_flags >> 3) & 3
    will_retain = bool(connect_flags & 0x20)
    has_password = connect_flags & 0x40
    has_username = connect_flags & 0x80
    if will_qos == 3:
        cur.fail("will QoS bits are 11 (QoS 3 does not exist)", offset=flags_offset)
    if not has_will and (will_qos or will_retain):
        cur.fail("will QoS or will retain is set while the will flag is 0", offset=flags_offset)
    if has_password and not has_username and level < 5:
        cur.fail("password flag is set without the user name flag", offset=flags_offset)
    keep_alive = cur.u16("keep alive")
    properties = _properties(cur, level, PropertyOwner.CONNECT)
    client_id = cur.utf8("client identifier")
    will = None
    if has_will:
        will_properties = _properties(cur, level, PropertyOwner.WILL)
        topic_offset = cur.offset
        will_topic = cur.utf8("will topic")
        problem = topic_name_problem(will_topic)
        if problem is not None:
            raise InvalidTopicName(f"CONNECT: will {problem}", offset=topic_offset)
        will_payload = cur.binary("will payload")
        will = Will(will_topic, will_payload, will_qos, will_retain, will_properties)
    username = cur.utf8("user name") if has_username else None
    password = cur.binary("password") if has_password else None
    cur.expect_end()
    return Connect(
        client_id, level, bool(connect_flags & 0x02), keep_alive, username, password, will, properties
    )


def _connack(cur: Cursor, flags: int, level: int) -> ConnAck:
    flags_offset = cur.offset
    ack_flags = cur.u8("connect acknowledge flags")
    if ack_flags & 0xFE:
        cur.fail("reserved connect acknowledge flags (bits 7-1) are set", offset=flags_offset)
    code = _reason_code(cur, CONNACK_CODES) if level == 5 else _reason_code(cur, CONNACK_V3_CODES, "return code")
    if ack_flags and code:
        cur.fail(
            "session present is set with a non-zero reason code", offset=flags_offset, error=ProtocolViolation
        )
    properties = _properties(cur, level, PropertyOwner.CONNACK)
    cur.expect_end()
    return ConnAck(bool(ack_flags), code, properties)


def _publish(cur: Cursor, flags: int, level: int) -> Publish:
    qos = (flags >> 1) & 3
    topic_offset = cur.offset
    topic = cur.utf8("topic name")
    packet_id = _packet_id(cur) if qos else None
    properties = _properties(cur, level, PropertyOwner.PUBLISH)
    if topic or properties.topic_alias is None:
        problem = topic_name_problem(topic)
        if problem is not None:
            if not topic and level == 5:
                problem = "topic name is empty and there is no topic alias"
            raise InvalidTopicName(f"PUBLISH: {problem}", offset=topic_offset)
    return Publish(topic, cur.rest(), qos, bool(flags & 1), bool(flags & 8), packet_id, properties)


def _ack_decoder(
    cls: type[PubAck | PubRec | PubRel | PubComp], codes: frozenset[int]
) -> Callable[[Cursor, int, int], Packet]:
    owner = PropertyOwner.of(cls.packet_type)

    def decode_ack(cur: Cursor, flags: int, level: int) -> Packet:
        packet_id = _packet_id(cur)
        code, properties = _optional_reason(cur, level, codes, owner)
        cur.expect_end()
        return cls(packet_id, code, properties)

    return decode_ack


def _topic_filter(cur: Cursor, level: int) -> str:
    offset = cur.offset
    topic_filter = cur.utf8("topic filter")
    problem = topic_filter_problem(topic_filter, shared=level == 5)
    if problem is not None:
        raise InvalidTopicFilter(f"{cur.packet}: {problem}", offset=offset)
    return topic_filter


def _subscribe(cur: Cursor, flags: int, level: int) -> Subscribe:
    packet_id = _packet_id(cur)
    properties = _properties(cur, level, PropertyOwner.SUBSCRIBE)
    reserved_mask = 0xC0 if level == 5 else 0xFC
    subscriptions: list[Subscription] = []
    while cur.remaining():
        topic_filter = _topic_filter(cur, level)
        options_offset = cur.offset
        options = cur.u8("subscription options")
        if options & reserved_mask:
            cur.fail(f"reserved subscription option bits are set ({options:08b})", offset=options_offset)
        qos = options & 3
        if qos == 3:
            cur.fail("maximum QoS bits are 11 (QoS 3 does not exist)", offset=options_offset)
        retain_handling = (options >> 4) & 3
        if retain_handling == 3:
            cur.fail("retain handling is 3", offset=options_offset, error=ProtocolViolation)
        no_local = bool(options & 0x04)
        if no_local and is_shared_filter(topic_filter) and level == 5:
            cur.fail(
                "no local is set on a shared subscription", offset=options_offset, error=ProtocolViolation
            )
        subscriptions.append(Subscription(topic_filter, qos, no_local, bool(options & 0x08), retain_handling))
    if not subscriptions:
        cur.fail("contains no topic filter", error=ProtocolViolation)
    return Subscribe(packet_id, tuple(subscriptions), properties)


def _reason_codes(cur: Cursor, allowed: frozenset[int]) -> tuple[int, ...]:
    offset = cur.offset
    codes = tuple(cur.rest())
    if not codes:
        cur.fail("contains no reason code", error=ProtocolViolation)
    for index, code in enumerate(codes):
        if code not in allowed:
            _fail_code(cur, code, offset + index)
    return codes


def _suback(cur: Cursor, flags: int, level: int) -> SubAck:
    packet_id = _packet_id(cur)
    properties = _properties(cur, level, PropertyOwner.SUBACK)
    codes = _reason_codes(cur, SUBACK_CODES if level == 5 else SUBACK_V3_CODES)
    return SubAck(packet_id, codes, properties)


def _unsubscribe(cur: Cursor, flags: int, level: int) -> Unsubscribe:
    packet_id = _packet_id(cur)
    properties = _properties(cur, level, PropertyOwner.UNSUBSCRIBE)
    topic_filters: list[str] = []
    while cur.remaining():
        topic_filters.append(_topic_filter(cur, level))
    if not topic_filters:
        cur.fail("contains no topic filter", error=ProtocolViolation)
    return Unsubscribe(packet_id, tuple(topic_filters), properties)


def _unsuback(cur: Cursor, flags: int, level: int) -> UnsubAck:
    packet_id = _packet_id(cur)
    if level < 5:
        cur.expect_end()
        return UnsubAck(packet_id)
    properties = decode_properties(cur, PropertyOwner.UNSUBACK)
    return UnsubAck(packet_id, _reason_codes(cur, UNSUBACK_CODES), properties)


def _pingreq(cur: Cursor, flags: int, level: int) -> PingReq:
    cur.expect_end()
    return PingReq()


def _pingresp(cur: Cursor, flags: int, level: int) -> PingResp:
    cur.expect_end()
    return PingResp()


def _reason_code(cur: Cursor, codes: Container[int], what: str = "reason code") -> int:
    """Read a reason code byte; one not in ``codes`` is a malformed packet naming its offset."""
    offset = cur.offset
    code = cur.u8(what)
    if code not in codes:
        _fail_code(cur, code, offset)
    return code


def _optional_reason(cur: Cursor, level: int, codes: Container[int], owner: PropertyOwner) -> tuple[int, Properties]:
    """MQTT 5's reason code and properties, each of which may be left out at the end of a packet (0, none)."""
    if level != 5 or not cur.remaining():
        return 0, EMPTY_PROPERTIES
    code = _reason_code(cur, codes)
    return code, decode_properties(cur, owner) if cur.remaining() else EMPTY_PROPERTIES


def _disconnect(cur: Cursor, flags: int, level: int) -> Disconnect:
    code, properties = _optional_reason(cur, level, DISCONNECT_CODES, PropertyOwner.DISCONNECT)
    cur.expect_end()
    return Disconnect(code, properties)


def _auth(cur: Cursor, flags: int, level: int) -> Auth:
    if not cur.remaining():
        return Auth()
    code = _reason_code(cur, AUTH_CODES)
    properties = decode_properties(cur, PropertyOwner.AUTH)
    cur.expect_end()
    return Auth(code, properties)


_Decoder = Callable[[Cursor, int, int], Packet]

_DECODERS: Final[dict[int, _Decoder]] = {
    PacketType.CONNECT: _connect,
    PacketType.CONNACK: _connack,
    PacketType.PUBLISH: _publish,
    PacketType.PUBACK: _ack_decoder(PubAck, PUBACK_CODES),
    PacketType.PUBREC: _ack_decoder(PubRec, PUBREC_CODES),
    PacketType.PUBREL: _ack_decoder(PubRel, PUBREL_CODES),
    PacketType.PUBCOMP: _ack_decoder(PubComp, PUBCOMP_CODES),
    PacketType.SUBSCRIBE: _subscribe,
    PacketType.SUBACK: _suback,
    PacketType.UNSUBSCRIBE: _unsubscribe,
    PacketType.UNSUBACK: _unsuback,
    PacketType.PINGREQ: _pingreq,
    PacketType.PINGRESP: _pingresp,
    PacketType.DISCONNECT: _disconnect,
    PacketType.AUTH: _auth,
}


def decode_body(data: bytes, first: int, pos: int, end: int, *, base: int, protocol_level: int) -> Packet:
    """Decode the variable header and payload in ``data[pos:end]`` of the packet starting at ``base``.

    The caller has already validated ``first`` with :func:`check_first_byte`.
    """
    ptype = first >> 4
    cur = Cursor(data, pos, end, base, PACKET_NAMES[ptype])
    return _DECODERS[ptype](cur, first & 0x0F, protocol_level)


def decode(data: bytes | bytearray | memoryview, protocol_level: int | None = None) -> Packet:
    """Decode exactly one complete packet (fixed header included) from ``data``.

    ``protocol_level`` is the level negotiated by CONNECT (3, 4 or 5); ``None`` means no CONNECT
    has been seen, so only a CONNECT is accepted. Raises :class:`MQTTProtocolError` subclasses
    for anything invalid, including truncated input and trailing bytes.
    """
    check_protocol_level(protocol_level)
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if not size:
        raise MalformedPacket("empty input: a packet has at least a 2-byte fixed header")
    check_first_byte(data[0], protocol_level)
    header = read_fixed_header(data, 0, size)
    if header is None:
        raise MalformedPacket("fixed header is truncated: remaining length is incomplete", offset=size)
    first, remaining, header_size = header
    total = header_size + remaining
    if size < total:
        raise MalformedPacket(
            f"{PACKET_NAMES[first >> 4]}: packet is truncated: the fixed header announces {total} bytes, "
            f"got {size}",
            offset=size,
        )
    if size > total:
        raise MalformedPacket(f"{size - total} trailing byte(s) after the {total}-byte packet", offset=total)
    return decode_body(data, first, header_size, total, base=0, protocol_level=protocol_level or 0)
