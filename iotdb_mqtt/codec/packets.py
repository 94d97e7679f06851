"""One immutable dataclass per MQTT control packet.

Fields hold decoded values only; everything derivable from them (remaining length, flag bits,
property lengths, MQTT 3.1's protocol name) is computed by the encoder. Reason codes are plain
``int`` (compare with :class:`ReasonCode` members). For MQTT 3.1/3.1.1 the ``properties`` of a
packet are always empty and ``reason_code`` holds the 3.1.1 return code where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .packet_type import PacketType
from .properties import EMPTY_PROPERTIES, Properties

PROTOCOL_NAMES: dict[int, str] = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}
"""Protocol name that goes with each supported protocol level (3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0)."""


@dataclass(frozen=True, slots=True)
class Will:
    """The Will Message carried in CONNECT."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    packet_type: ClassVar[PacketType] = PacketType.CONNECT
    client_id: str = ""
    protocol_level: int = 4
    clean_start: bool = True
    """Clean Start in MQTT 5, Clean Session in 3.1/3.1.1."""
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = EMPTY_PROPERTIES

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol_level, "MQTT")


@dataclass(frozen=True, slots=True)
class ConnAck:
    packet_type: ClassVar[PacketType] = PacketType.CONNACK
    session_present: bool = False
    reason_code: int = 0
    """MQTT 5 reason code, or the 3.1/3.1.1 connect return code."""
    properties: Properties = EMPTY_PROPERTIES


@dataclass(slots=True)
class Publish:
    """An application message.

    Unlike the other packets it is mutable: it is built on the hot path of ingestion, where a
    frozen dataclass costs several times more to construct, and receivers rewrite it in place
    (resolving a topic alias, downgrading QoS, setting DUP on redelivery).
    """

    packet_type: ClassVar[PacketType] = PacketType.PUBLISH
    topic: str
    """May be empty in MQTT 5 when ``properties.topic_alias`` is set."""
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    """``None`` exactly when ``qos`` is 0."""
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class _Ack:
    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class PubAck(_Ack):
    packet_type: ClassVar[PacketType] = PacketType.PUBACK


@dataclass(frozen=True, slots=True)
class PubRec(_Ack):
    packet_type: ClassVar[PacketType] = PacketType.PUBREC


@dataclass(frozen=True, slots=True)
class PubRel(_Ack):
    packet_type: ClassVar[PacketType] = PacketType.PUBREL


@dataclass(frozen=True, slots=True)
class PubComp(_Ack):
    packet_type: ClassVar[PacketType] = PacketType.PUBCOMP


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE with its subscription options."""

    topic_filter: str
    qos: int = 0
    """Maximum QoS."""
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    """0: send retained messages on subscribe; 1: only for a new subscription; 2: never."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    packet_type: ClassVar[PacketType] = PacketType.SUBSCRIBE
    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_type: ClassVar[PacketType] = PacketType.SUBACK
    packet_id: int
    reason_codes: tuple[int, ...]
    """One per subscription: granted QoS (0-2) or a failure code (>= 0x80)."""
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    packet_type: ClassVar[PacketType] = PacketType.UNSUBSCRIBE
    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class UnsubAck:
    packet_type: ClassVar[PacketType] = PacketType.UNSUBACK
    packet_id: int
    reason_codes: tuple[int, ...] = ()
    """One per topic filter in MQTT 5; always empty in 3.1/3.1.1."""
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class PingReq:
    packet_type: ClassVar[PacketType] = PacketType.PINGREQ


@dataclass(frozen=True, slots=True)
class PingResp:
    packet_type: ClassVar[PacketType] = PacketType.PINGRESP


@dataclass(frozen=True, slots=True)
class Disconnect:
    packet_type: ClassVar[PacketType] = PacketType.DISCONNECT
    reason_code: int = 0
    """Always 0 in MQTT 3.1/3.1.1."""
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Auth:
    """MQTT 5 only."""

    packet_type: ClassVar[PacketType] = PacketType.AUTH
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


Packet: TypeAlias = (
    Connect
    | ConnAck
    | Publish
    | PubAck
    | PubRec
    | PubRel
    | PubComp
    | Subscribe
    | SubAck
    | Unsubscribe
    | UnsubAck
    | PingReq
    | PingResp
    | Disconnect
    | Auth
)

PACKET_CLASSES: dict[PacketType, type[Packet]] = {
    cls.packet_type: cls
    for cls in (
        Connect,
        ConnAck,
        Publish,
        PubAck,
        PubRec,
        PubRel,
        PubComp,
        Subscribe,
        SubAck,
        Unsubscribe,
        UnsubAck,
        PingReq,
        PingResp,
        Disconnect,
        Auth,
    )
}
