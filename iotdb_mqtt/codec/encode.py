"""Encoding of packets to their exact wire bytes.

The encoder always writes the canonical form: minimal Variable Byte Integers, MQTT 5 properties
in ascending identifier order, and the shortest allowed form of acknowledgements and DISCONNECT
(reason code and property length omitted when they are 0 / empty). Values the protocol cannot
carry, or that the decoder would reject, raise ``ValueError``; a non-packet raises ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

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
    UnsubAck,
    Unsubscribe,
)
from .primitives import MAX_U16, U16, check_range, encode_binary, encode_string, encode_varint
from .properties import EMPTY_PROPERTIES, Properties, PropertyOwner, encode_properties
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
    ConnectReturnCode,
)
from .topics import topic_filter_problem, topic_name_problem

_u16 = U16.pack

UNSUPPORTED_VERSION_CONNACK: Final = b"\x20\x02\x00" + bytes(
    (ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,)
)


def encode_unsupported_version_connack() -> bytes:
    """The MQTT 3.1.1 CONNACK with return code 1 (unacceptable protocol version).

    A server answers any CONNECT it cannot speak with these four bytes and closes the connection
    [MQTT-3.1.2-2]; clients of every version understand this form.
    """
    return UNSUPPORTED_VERSION_CONNACK


def _frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def _properties(props: Properties, level: int, owner: PropertyOwner) -> bytes:
    if level == 5:
        return encode_properties(props, owner)
    if props is not EMPTY_PROPERTIES and props != EMPTY_PROPERTIES:
        raise ValueError(f"{owner.name} properties require protocol level 5, not {level}")
    return b""


def _packet_id(value: int | None, name: str) -> bytes:
    if value is None:
        raise ValueError(f"{name} needs a packet identifier")
    return _u16(check_range(value, 1, MAX_U16, f"{name} packet identifier"))


def _check_code(code: int, allowed: frozenset[int], name: str) -> None:
    if code not in allowed:
        raise ValueError(f"reason code 0x{code:02X} is not valid in {name}")


def _check_topic_name(topic: str, field: str) -> None:
    problem = topic_name_problem(topic)
    if problem is not None:
        raise ValueError(f"{field}: {problem}")


def _connect(p: Connect, level: int) -> bytes:
    level = p.protocol_level
    name = PROTOCOL_NAMES.get(level)
    if name is None:
        raise ValueError(f"CONNECT protocol_level must be 3, 4 or 5, got {level!r}")
    flags = 0x02 if p.clean_start else 0
    will = p.will
    if will is not None:
        check_range(will.qos, 0, 2, "will QoS")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if p.password is not None:
        if p.username is None and level < 5:
            raise ValueError("a password without a user name requires protocol level 5")
        flags |= 0x40
    if p.username is not None:
        flags |= 0x80
    parts = [
        encode_string(name, "protocol name"),
        bytes((level, flags)),
        _u16(check_range(p.keep_alive, 0, MAX_U16, "keep alive")),
        _properties(p.properties, level, PropertyOwner.CONNECT),
        encode_string(p.client_id, "client identifier"),
    ]
    if will is not None:
        _check_topic_name(will.topic, "will topic")
        parts.append(_properties(will.properties, level, PropertyOwner.WILL))
        parts.append(encode_string(will.topic, "will topic"))
        parts.append(encode_binary(will.payload, "will payload"))
    if p.username is not None:
        parts.append(encode_string(p.username, "user name"))
    if p.password is not None:
        parts.append(encode_binary(p.password, "password"))
    return _frame(0x10, b"".join(parts))


def _connack(p: ConnAck, level: int) -> bytes:
    _check_code(p.reason_code, CONNACK_CODES if level == 5 else CONNACK_V3_CODES, "CONNACK")
    if p.session_present and p.reason_code:
        raise ValueError("CONNACK session_present must be False with a non-zero reason code")
    body = bytes((1 if p.session_present else 0, p.reason_code))
    return _frame(0x20, body + _properties(p.properties, level, PropertyOwner.CONNACK))


def _publish(p: Publish, level: int) -> bytes:
    qos = p.qos
    props = p.properties
    if qos not in (0, 1, 2):
        raise ValueError(f"PUBLISH QoS must be 0, 1 or 2, got {qos!r}")
    if p.topic or level < 5 or props.topic_alias is None:
        _check_topic_name(p.topic, "PUBLISH topic")
    topic = p.topic.encode("utf-8")
    first = 0x30 | (qos << 1) | (0x01 if p.retain else 0)
    if qos:
        packet_id = _packet_id(p.packet_id, "PUBLISH")
        if p.dup:
            first |= 0x08
    elif p.packet_id is not None or p.dup:
        raise ValueError("a QoS 0 PUBLISH has no packet identifier and no DUP flag")
    else:
        packet_id = b""
    body = b"".join(
        (_u16(len(topic)), topic, packet_id, _properties(props, level, PropertyOwner.PUBLISH), p.payload)
    )
    return _frame(first, body)


def _ack_encoder(first: int, codes: frozenset[int], owner: PropertyOwner) -> Callable[[Any, int], bytes]:
    def encode_ack(p: PubAck | PubRec | PubRel | PubComp, level: int) -> bytes:
        body = _packet_id(p.packet_id, owner.name)
        props = p.properties
        code = p.reason_code
        if level == 5:
            _check_code(code, codes, owner.name)
            if props is not EMPTY_PROPERTIES and props != EMPTY_PROPERTIES:
                body += bytes((code,)) + encode_properties(props, owner)
            elif code:
                body += bytes((code,))
        elif code or props != EMPTY_PROPERTIES:
            raise ValueError(f"{owner.name} reason code and properties require protocol level 5")
        return _frame(first, body)

    return encode_ack


def _filter(topic_filter: str, level: int) -> bytes:
    problem = topic_filter_problem(topic_filter, shared=level == 5)
    if problem is not None:
        raise ValueError(problem)
    return encode_string(topic_filter, "topic filter")


def _subscribe(p: Subscribe, level: int) -> bytes:
    if not p.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one subscription")
    parts = [_packet_id(p.packet_id, "SUBSCRIBE"), _properties(p.properties, level, PropertyOwner.SUBSCRIBE)]
    for sub in p.subscriptions:
        options = check_range(sub.qos, 0, 2, "subscription QoS")
        if level == 5:
            options |= check_range(sub.retain_handling, 0, 2, "retain handling") << 4
            options |= (0x04 if sub.no_local else 0) | (0x08 if sub.retain_as_published else 0)
            if sub.no_local and sub.topic_filter.startswith("$share/"):
                raise ValueError("no_local cannot be set on a shared subscription")
        elif sub.no_local or sub.retain_as_published or sub.retain_handling:
            raise ValueError("no_local, retain_as_published and retain_handling require protocol level 5")
        parts.append(_filter(sub.topic_filter, level))
        parts.append(bytes((options,)))
    return _frame(0x82, b"".join(parts))


def _codes(codes: tuple[int, ...], allowed: frozenset[int], name: str) -> bytes:
    if not codes:
        raise ValueError(f"{name} needs at least one reason code")
    for code in codes:
        _check_code(code, allowed, name)
    return bytes(codes)


def _suback(p: SubAck, level: int) -> bytes:
    body = _packet_id(p.packet_id, "SUBACK") + _properties(p.properties, level, PropertyOwner.SUBACK)
    return _frame(
        0x90, body + _codes(p.reason_codes, SUBACK_CODES if level == 5 else SUBACK_V3_CODES, "SUBACK")
    )


def _unsubscribe(p: Unsubscribe, level: int) -> bytes:
    if not p.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    parts = [
        _packet_id(p.packet_id, "UNSUBSCRIBE"),
        _properties(p.properties, level, PropertyOwner.UNSUBSCRIBE),
    ]
    parts.extend(_filter(topic_filter, level) for topic_filter in p.topic_filters)
    return _frame(0xA2, b"".join(parts))


def _unsuback(p: UnsubAck, level: int) -> bytes:
    body = _packet_id(p.packet_id, "UNSUBACK")
    if level == 5:
        body += encode_properties(p.properties, PropertyOwner.UNSUBACK)
        body += _codes(p.reason_codes, UNSUBACK_CODES, "UNSUBACK")
    elif p.reason_codes or p.properties != EMPTY_PROPERTIES:
        raise ValueError("UNSUBACK reason codes and properties require protocol level 5")
    return _frame(0xB0, body)


def _pingreq(p: PingReq, level: int) -> bytes:
    return b"\xc0\x00"


def _pingresp(p: PingResp, level: int) -> bytes:
    return b"\xd0\x00"


def _disconnect(p: Disconnect, level: int) -> bytes:
    code = p.reason_code
    props = p.properties
    if level < 5:
        if code or props != EMPTY_PROPERTIES:
            raise ValueError("DISCONNECT reason code and properties require protocol level 5")
        return b"\xe0\x00"
    _check_code(code, DISCONNECT_CODES, "DISCONNECT")
    if props is not EMPTY_PROPERTIES and props != EMPTY_PROPERTIES:
        return _frame(0xE0, bytes((code,)) + encode_properties(props, PropertyOwner.DISCONNECT))
    return _frame(0xE0, bytes((code,))) if code else b"\xe0\x00"


def _auth(p: Auth, level: int) -> bytes:
    if level < 5:
        raise ValueError(f"AUTH requires protocol level 5, not {level}")
    _check_code(p.reason_code, AUTH_CODES, "AUTH")
    if not p.reason_code and p.properties == EMPTY_PROPERTIES:
        return b"\xf0\x00"
    return _frame(0xF0, bytes((p.reason_code,)) + encode_properties(p.properties, PropertyOwner.AUTH))


_ENCODERS: Final[dict[type, Callable[[Any, int], bytes]]] = {
    ConnAck: _connack,
    Publish: _publish,
    PubAck: _ack_encoder(0x40, PUBACK_CODES, PropertyOwner.PUBACK),
    PubRec: _ack_encoder(0x50, PUBREC_CODES, PropertyOwner.PUBREC),
    PubRel: _ack_encoder(0x62, PUBREL_CODES, PropertyOwner.PUBREL),
    PubComp: _ack_encoder(0x70, PUBCOMP_CODES, PropertyOwner.PUBCOMP),
    Subscribe: _subscribe,
    SubAck: _suback,
    Unsubscribe: _unsubscribe,
    UnsubAck: _unsuback,
    PingReq: _pingreq,
    PingResp: _pingresp,
    Disconnect: _disconnect,
    Auth: _auth,
}


def encode(packet: Packet, protocol_level: int | None = None) -> bytes:
    """Encode ``packet`` for the given protocol level (3, 4 or 5).

    CONNECT carries its own level in ``Connect.protocol_level``, so ``protocol_level`` may be
    omitted for it (if given, it must match); every other packet requires it.
    """
    if isinstance(packet, Connect):
        if protocol_level is not None and protocol_level != packet.protocol_level:
            raise ValueError(
                f"protocol_level {protocol_level} contradicts Connect.protocol_level {packet.protocol_level}"
            )
        return _connect(packet, packet.protocol_level)
    encoder = _ENCODERS.get(type(packet))
    if encoder is None:
        raise TypeError(f"not an MQTT packet: {packet!r}")
    if protocol_level not in PROTOCOL_NAMES:
        raise ValueError(
            f"protocol_level must be 3, 4 or 5 to encode {type(packet).__name__}, got {protocol_level!r}"
        )
    return encoder(packet, protocol_level)
