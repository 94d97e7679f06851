"""The codec's single exception family.

Every problem found in received bytes raises a subclass of :class:`MQTTProtocolError`. Its
``reason_code`` is the MQTT 5 reason code a server should put in the CONNACK or DISCONNECT it
sends before closing (an MQTT 3.1/3.1.1 server just closes the connection). ``offset`` is the
byte offset of the offending field, counted from the first byte of the packet's fixed header.
"""

from __future__ import annotations

from typing import Any

from .reason_codes import ReasonCode


class MQTTProtocolError(Exception):
    """Base class: the peer sent bytes that violate the MQTT specification."""

    reason_code: int = ReasonCode.PROTOCOL_ERROR

    def __init__(self, message: str, *, offset: int | None = None, reason_code: int | None = None) -> None:
        self.message = message
        self.offset = offset
        if reason_code is not None:
            self.reason_code = reason_code
        self.packets: list[Any] = []
        """Packets that :meth:`PacketReader.feed` decoded, in the same call, before this error."""
        text = message if offset is None else f"{message} (at byte offset {offset})"
        super().__init__(text)


class MalformedPacket(MQTTProtocolError):
    """The packet cannot be parsed according to the specification (reason code 0x81)."""

    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolViolation(MQTTProtocolError):
    """The packet parses but contains data the protocol does not allow (reason code 0x82)."""

    reason_code = ReasonCode.PROTOCOL_ERROR


class InvalidTopicName(ProtocolViolation):
    """A topic name is empty where not allowed or contains a wildcard (reason code 0x90)."""

    reason_code = ReasonCode.TOPIC_NAME_INVALID


class InvalidTopicFilter(ProtocolViolation):
    """A topic filter misuses ``+``, ``#`` or the ``$share`` syntax (reason code 0x8F)."""

    reason_code = ReasonCode.TOPIC_FILTER_INVALID


class PacketTooLarge(MQTTProtocolError):
    """The fixed header announces a packet larger than the receiver accepts (reason code 0x95)."""

    reason_code = ReasonCode.PACKET_TOO_LARGE

    def __init__(self, message: str, *, size: int, limit: int, offset: int | None = None) -> None:
        super().__init__(message, offset=offset)
        self.size = size
        self.limit = limit


class UnsupportedProtocolVersion(MQTTProtocolError):
    """CONNECT names a protocol name/level this codec does not speak (reason code 0x84).

    The server should answer with :func:`encode_unsupported_version_connack` and close.
    """

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(
        self, message: str, *, protocol_name: str, protocol_level: int, offset: int | None = None
    ) -> None:
        super().__init__(message, offset=offset)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level
