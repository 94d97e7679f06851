"""Sans-I/O MQTT 3.1, 3.1.1 and 5.0 codec.

Bytes in, packet dataclasses out (:func:`decode`, :class:`PacketReader`), and back
(:func:`encode`). Nothing here performs I/O; invalid input raises only
:class:`MQTTProtocolError` subclasses.
"""

from .decode import MAX_PACKET_SIZE, decode, read_fixed_header
from .encode import encode, encode_unsupported_version_connack
from .errors import (
    InvalidTopicFilter,
    InvalidTopicName,
    MalformedPacket,
    MQTTProtocolError,
    PacketTooLarge,
    ProtocolViolation,
    UnsupportedProtocolVersion,
)
from .packet_type import PacketType
from .packets import (
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
from .properties import (
    EMPTY_PROPERTIES,
    PROPERTY_SPECS,
    Properties,
    PropertyId,
    PropertyOwner,
    PropertySpec,
    PropertyType,
    allowed_properties,
)
from .reason_codes import ConnectReturnCode, ReasonCode
from .stream import PacketReader
from .topics import validate_topic_filter, validate_topic_name

__all__ = [
    "EMPTY_PROPERTIES",
    "MAX_PACKET_SIZE",
    "PROPERTY_SPECS",
    "Auth",
    "ConnAck",
    "Connect",
    "ConnectReturnCode",
    "Disconnect",
    "InvalidTopicFilter",
    "InvalidTopicName",
    "MQTTProtocolError",
    "MalformedPacket",
    "Packet",
    "PacketReader",
    "PacketTooLarge",
    "PacketType",
    "PingReq",
    "PingResp",
    "Properties",
    "PropertyId",
    "PropertyOwner",
    "PropertySpec",
    "PropertyType",
    "ProtocolViolation",
    "PubAck",
    "PubComp",
    "PubRec",
    "PubRel",
    "Publish",
    "ReasonCode",
    "SubAck",
    "Subscribe",
    "Subscription",
    "UnsubAck",
    "Unsubscribe",
    "UnsupportedProtocolVersion",
    "Will",
    "allowed_properties",
    "decode",
    "encode",
    "encode_unsupported_version_connack",
    "read_fixed_header",
    "validate_topic_filter",
    "validate_topic_name",
]
