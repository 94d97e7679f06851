"""MQTT 5.0 properties (spec section 2.2.2): identifiers, wire types, where each may appear,
value constraints, and their encoding and decoding.

Properties are carried in the typed, immutable :class:`Properties`. Properties that may occur
more than once (User Property everywhere, Subscription Identifier in PUBLISH) are tuples; every
other one is ``None`` when absent. The encoder writes properties in ascending identifier order,
keeping the relative order of repeated ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Final

from .errors import InvalidTopicName, ProtocolViolation
from .packet_type import PacketType
from .primitives import (
    MAX_U16,
    MAX_U32,
    MAX_VARINT,
    U16,
    U32,
    Cursor,
    check_range,
    encode_binary,
    encode_string,
    encode_varint,
)
from .reason_codes import ReasonCode
from .topics import topic_name_problem


class PropertyType(Enum):
    """Wire representation of a property value."""

    BYTE = "Byte"
    TWO_BYTE_INTEGER = "Two Byte Integer"
    FOUR_BYTE_INTEGER = "Four Byte Integer"
    VARIABLE_BYTE_INTEGER = "Variable Byte Integer"
    UTF8_STRING = "UTF-8 Encoded String"
    BINARY_DATA = "Binary Data"
    UTF8_STRING_PAIR = "UTF-8 String Pair"


class PropertyId(IntEnum):
    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


class PropertyOwner(IntEnum):
    """Where a property set appears: a packet (same value as :class:`PacketType`) or a CONNECT's Will."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    DISCONNECT = 14
    AUTH = 15
    WILL = 16

    @classmethod
    def of(cls, packet_type: PacketType) -> PropertyOwner:
        return cls(int(packet_type))


@dataclass(frozen=True, slots=True, repr=False)
class Properties:
    """The MQTT 5 properties of one packet or Will; absent properties are ``None`` / ``()``."""

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[tuple[str, str], ...] = field(default=())
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __repr__(self) -> str:
        present = ", ".join(
            f"{name}={value!r}"
            for name in self.__slots__
            if (value := getattr(self, name)) is not None and value != ()
        )
        return f"Properties({present})"


EMPTY_PROPERTIES: Final = Properties()


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One row of the property table (spec section 2.2.2.2)."""

    id: PropertyId
    attr: str
    """Attribute of :class:`Properties` holding the value."""
    type: PropertyType
    owners: frozenset[PropertyOwner]
    """Packets (or the Will) that may carry this property; anywhere else it is a Protocol Error."""
    repeatable_in: frozenset[PropertyOwner] = frozenset()
    """Owners in which the property may occur more than once."""
    valid_range: tuple[int, int] | None = None
    """Allowed integer range (inclusive); values outside it are a Protocol Error."""
    invalid_reason: int = ReasonCode.PROTOCOL_ERROR

    @property
    def label(self) -> str:
        return self.id.name.replace("_", " ").title()

    @property
    def is_tuple(self) -> bool:
        """True when the :class:`Properties` attribute is a tuple of occurrences."""
        return bool(self.repeatable_in)


_O = PropertyOwner
_T = PropertyType
_ALL_PACKETS = frozenset(o for o in PropertyOwner if o is not _O.WILL)
_MESSAGE = frozenset({_O.PUBLISH, _O.WILL})

PROPERTY_SPECS: Final[tuple[PropertySpec, ...]] = (
    PropertySpec(
        PropertyId.PAYLOAD_FORMAT_INDICATOR, "payload_format_indicator", _T.BYTE, _MESSAGE, valid_range=(0, 1)
    ),
    PropertySpec(
        PropertyId.MESSAGE_EXPIRY_INTERVAL, "message_expiry_interval", _T.FOUR_BYTE_INTEGER, _MESSAGE
    ),
    PropertySpec(PropertyId.CONTENT_TYPE, "content_type", _T.UTF8_STRING, _MESSAGE),
    PropertySpec(PropertyId.RESPONSE_TOPIC, "response_topic", _T.UTF8_STRING, _MESSAGE),
    PropertySpec(PropertyId.CORRELATION_DATA, "correlation_data", _T.BINARY_DATA, _MESSAGE),
    PropertySpec(
        PropertyId.SUBSCRIPTION_IDENTIFIER,
        "subscription_identifiers",
        _T.VARIABLE_BYTE_INTEGER,
        frozenset({_O.PUBLISH, _O.SUBSCRIBE}),
        repeatable_in=frozenset({_O.PUBLISH}),
        valid_range=(1, MAX_VARINT),
    ),
    PropertySpec(
        PropertyId.SESSION_EXPIRY_INTERVAL,
        "session_expiry_interval",
        _T.FOUR_BYTE_INTEGER,
        frozenset({_O.CONNECT, _O.CONNACK, _O.DISCONNECT}),
    ),
    PropertySpec(
        PropertyId.ASSIGNED_CLIENT_IDENTIFIER,
        "assigned_client_identifier",
        _T.UTF8_STRING,
        frozenset({_O.CONNACK}),
    ),
    PropertySpec(
        PropertyId.SERVER_KEEP_ALIVE, "server_keep_alive", _T.TWO_BYTE_INTEGER, frozenset({_O.CONNACK})
    ),
    PropertySpec(
        PropertyId.AUTHENTICATION_METHOD,
        "authentication_method",
        _T.UTF8_STRING,
        frozenset({_O.CONNECT, _O.CONNACK, _O.AUTH}),
    ),
    PropertySpec(
        PropertyId.AUTHENTICATION_DATA,
        "authentication_data",
        _T.BINARY_DATA,
        frozenset({_O.CONNECT, _O.CONNACK, _O.AUTH}),
    ),
    PropertySpec(
        PropertyId.REQUEST_PROBLEM_INFORMATION,
        "request_problem_information",
        _T.BYTE,
        frozenset({_O.CONNECT}),
        valid_range=(0, 1),
    ),
    PropertySpec(
        PropertyId.WILL_DELAY_INTERVAL, "will_delay_interval", _T.FOUR_BYTE_INTEGER, frozenset({_O.WILL})
    ),
    PropertySpec(
        PropertyId.REQUEST_RESPONSE_INFORMATION,
        "request_response_information",
        _T.BYTE,
        frozenset({_O.CONNECT}),
        valid_range=(0, 1),
    ),
    PropertySpec(
        PropertyId.RESPONSE_INFORMATION, "response_information", _T.UTF8_STRING, frozenset({_O.CONNACK})
    ),
    PropertySpec(
        PropertyId.SERVER_REFERENCE,
        "server_reference",
        _T.UTF8_STRING,
        frozenset({_O.CONNACK, _O.DISCONNECT}),
    ),
    PropertySpec(
        PropertyId.REASON_STRING,
        "reason_string",
        _T.UTF8_STRING,
        frozenset(
            {
                _O.CONNACK,
                _O.PUBACK,
                _O.PUBREC,
                _O.PUBREL,
                _O.PUBCOMP,
                _O.SUBACK,
                _O.UNSUBACK,
                _O.DISCONNECT,
                _O.AUTH,
            }
        ),
    ),
    PropertySpec(
        PropertyId.RECEIVE_MAXIMUM,
        "receive_maximum",
        _T.TWO_BYTE_INTEGER,
        frozenset({_O.CONNECT, _O.CONNACK}),
        valid_range=(1, MAX_U16),
    ),
    PropertySpec(
        PropertyId.TOPIC_ALIAS_MAXIMUM,
        "topic_alias_maximum",
        _T.TWO_BYTE_INTEGER,
        frozenset({_O.CONNECT, _O.CONNACK}),
    ),
    PropertySpec(
        PropertyId.TOPIC_ALIAS,
        "topic_alias",
        _T.TWO_BYTE_INTEGER,
        frozenset({_O.PUBLISH}),
        valid_range=(1, MAX_U16),
        invalid_reason=ReasonCode.TOPIC_ALIAS_INVALID,
    ),
    PropertySpec(PropertyId.MAXIMUM_QOS, "maximum_qos", _T.BYTE, frozenset({_O.CONNACK}), valid_range=(0, 1)),
    PropertySpec(
        PropertyId.RETAIN_AVAILABLE, "retain_available", _T.BYTE, frozenset({_O.CONNACK}), valid_range=(0, 1)
    ),
    PropertySpec(
        PropertyId.USER_PROPERTY,
        "user_properties",
        _T.UTF8_STRING_PAIR,
        _ALL_PACKETS | {_O.WILL},
        repeatable_in=_ALL_PACKETS | {_O.WILL},
    ),
    PropertySpec(
        PropertyId.MAXIMUM_PACKET_SIZE,
        "maximum_packet_size",
        _T.FOUR_BYTE_INTEGER,
        frozenset({_O.CONNECT, _O.CONNACK}),
        valid_range=(1, MAX_U32),
    ),
    PropertySpec(
        PropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE,
        "wildcard_subscription_available",
        _T.BYTE,
        frozenset({_O.CONNACK}),
        valid_range=(0, 1),
    ),
    PropertySpec(
        PropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        "subscription_identifier_available",
        _T.BYTE,
        frozenset({_O.CONNACK}),
        valid_range=(0, 1),
    ),
    PropertySpec(
        PropertyId.SHARED_SUBSCRIPTION_AVAILABLE,
        "shared_subscription_available",
        _T.BYTE,
        frozenset({_O.CONNACK}),
        valid_range=(0, 1),
    ),
)

SPECS_BY_ID: Final[dict[int, PropertySpec]] = {int(spec.id): spec for spec in PROPERTY_SPECS}
SPECS_BY_ATTR: Final[dict[str, PropertySpec]] = {spec.attr: spec for spec in PROPERTY_SPECS}

del _O, _T


def allowed_properties(owner: PropertyOwner) -> frozenset[PropertyId]:
    """The property identifiers that may appear in ``owner``."""
    return frozenset(spec.id for spec in PROPERTY_SPECS if owner in spec.owners)


_TYPE_RANGE: Final[dict[PropertyType, int]] = {
    PropertyType.BYTE: 0xFF,
    PropertyType.TWO_BYTE_INTEGER: MAX_U16,
    PropertyType.FOUR_BYTE_INTEGER: MAX_U32,
    PropertyType.VARIABLE_BYTE_INTEGER: MAX_VARINT,
}

_READERS: Final[dict[PropertyType, Callable[[Cursor, str], Any]]] = {
    PropertyType.BYTE: Cursor.u8,
    PropertyType.TWO_BYTE_INTEGER: Cursor.u16,
    PropertyType.FOUR_BYTE_INTEGER: Cursor.u32,
    PropertyType.VARIABLE_BYTE_INTEGER: Cursor.varint,
    PropertyType.UTF8_STRING: Cursor.utf8,
    PropertyType.BINARY_DATA: Cursor.binary,
    PropertyType.UTF8_STRING_PAIR: lambda cur, name: (cur.utf8(f"{name} key"), cur.utf8(f"{name} value")),
}


def decode_properties(cur: Cursor, owner: PropertyOwner) -> Properties:
    """Read a Property Length and the properties that follow, validating them for ``owner``."""
    length = cur.varint("property length")
    if not length:
        return EMPTY_PROPERTIES
    end = cur.pos + length
    if end > cur.end:
        cur.fail(f"property length {length} runs {end - cur.end} byte(s) past the end of the packet")
    outer_end = cur.end
    cur.end = end
    values: dict[str, Any] = {}
    while cur.pos < end:
        start = cur.offset
        ident = cur.varint("property identifier")
        spec = SPECS_BY_ID.get(ident)
        if spec is None:
            cur.fail(f"unknown property identifier 0x{ident:02X}", offset=start)
        label = spec.label
        if owner not in spec.owners:
            cur.fail(
                f"property {label} is not allowed in {owner.name}", offset=start, error=ProtocolViolation
            )
        value = _READERS[spec.type](cur, label)
        valid = spec.valid_range
        if valid is not None and not valid[0] <= value <= valid[1]:
            raise ProtocolViolation(
                f"{cur.packet}: property {label} has value {value}, allowed {valid[0]}..{valid[1]}",
                offset=start,
                reason_code=spec.invalid_reason,
            )
        if spec.id is PropertyId.RESPONSE_TOPIC:
            problem = topic_name_problem(value)
            if problem is not None:
                raise InvalidTopicName(f"{cur.packet}: {label}: {problem}", offset=start)
        attr = spec.attr
        if spec.is_tuple:
            occurrences = values.setdefault(attr, [])
            if occurrences and owner not in spec.repeatable_in:
                cur.fail(f"property {label} appears more than once", offset=start, error=ProtocolViolation)
            occurrences.append(value)
        elif attr in values:
            cur.fail(f"property {label} appears more than once", offset=start, error=ProtocolViolation)
        else:
            values[attr] = value
    cur.end = outer_end
    for attr, value in values.items():
        if isinstance(value, list):
            values[attr] = tuple(value)
    return Properties(**values)


def _encode_value(spec: PropertySpec, value: Any) -> bytes:
    kind = spec.type
    label = spec.label
    if kind in _TYPE_RANGE:
        low, high = spec.valid_range or (0, _TYPE_RANGE[kind])
        check_range(value, low, high, f"property {label}")
        if kind is PropertyType.BYTE:
            return bytes((value,))
        if kind is PropertyType.TWO_BYTE_INTEGER:
            return U16.pack(value)
        if kind is PropertyType.FOUR_BYTE_INTEGER:
            return U32.pack(value)
        return encode_varint(value)
    if kind is PropertyType.UTF8_STRING:
        if spec.id is PropertyId.RESPONSE_TOPIC:
            problem = topic_name_problem(value)
            if problem is not None:
                raise ValueError(f"property {label}: {problem}")
        return encode_string(value, f"property {label}")
    if kind is PropertyType.BINARY_DATA:
        return encode_binary(value, f"property {label}")
    key, val = value
    return encode_string(key, f"property {label} key") + encode_string(val, f"property {label} value")


def encode_properties(props: Properties, owner: PropertyOwner) -> bytes:
    """Encode Property Length and properties; raises ``ValueError`` for a property ``owner`` may not carry."""
    if props is EMPTY_PROPERTIES:
        return b"\x00"
    parts: list[bytes] = []
    for spec in PROPERTY_SPECS:
        value = getattr(props, spec.attr)
        if value is None or value == ():
            continue
        if owner not in spec.owners:
            raise ValueError(f"property {spec.label} is not allowed in {owner.name}")
        ident = bytes((spec.id,))
        if spec.is_tuple:
            if len(value) > 1 and owner not in spec.repeatable_in:
                raise ValueError(f"property {spec.label} may appear only once in {owner.name}")
            parts.extend(ident + _encode_value(spec, item) for item in value)
        else:
            parts.append(ident + _encode_value(spec, value))
    body = b"".join(parts)
    return encode_varint(len(body)) + body
