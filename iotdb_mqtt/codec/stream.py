"""Incremental decoding of a byte stream into packets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

from .decode import MAX_PACKET_SIZE, check_first_byte, check_protocol_level, decode_body
from .errors import MQTTProtocolError, PacketTooLarge, ProtocolViolation
from .packet_type import PacketType
from .packets import Connect, Packet, Publish
from .primitives import decode_varint
from .properties import EMPTY_PROPERTIES, Properties

_TOPIC_CACHE_SIZE: Final = 256

#: What the fast path builds for a PUBLISH: called as ``Publish`` is, with
#: ``(topic, payload, qos, retain, dup, packet_id, properties)``.
PublishType = Callable[[str, bytes, int, bool, bool, "int | None", Properties], Any]


class PacketReader:
    """Sans-I/O decoder for one connection: :meth:`feed` it bytes as they arrive, get packets back.

    ``protocol_level`` is 3, 4 or 5 when already known (a client after its own CONNECT). With
    ``None`` (a server) the stream must start with CONNECT, whose level then applies to the rest
    of the stream; a second CONNECT is a protocol error. ``max_packet_size`` bounds the total
    packet size (fixed header included); it is checked as soon as the fixed header is complete,
    before any of the body is buffered.

    ``publish_type`` lets a receiver get the PUBLISH packets the fast path accepts as its own objects,
    built straight from the wire (an ingesting client then needs no second object per message); it is
    called with :class:`Publish`'s fields in their order. PUBLISH packets the fast path leaves to the
    general decoder (with properties, for instance) are still :class:`Publish`.

    After an error the reader is finished: every later :meth:`feed` raises the same error.
    """

    __slots__ = ("_buffer", "_error", "_need", "_publish_type", "_topics", "max_packet_size", "protocol_level")

    def __init__(self, protocol_level: int | None = None, max_packet_size: int | None = None, *,
                 publish_type: PublishType = Publish) -> None:
        check_protocol_level(protocol_level)
        if max_packet_size is not None and max_packet_size < 2:
            raise ValueError(
                f"max_packet_size must be at least 2 (the smallest packet), got {max_packet_size}"
            )
        self.protocol_level = protocol_level
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()
        self._need = 0
        self._publish_type = publish_type
        self._error: MQTTProtocolError | None = None
        # Valid topic names by their wire bytes: devices publish to few topics over and over.
        self._topics: dict[bytes, str] = {}

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buffer)

    @property
    def error(self) -> MQTTProtocolError | None:
        """The error that finished this reader, if any."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Consume ``data`` and return the packets it completes, in stream order.

        Raises an :class:`MQTTProtocolError` subclass at the first invalid packet; the packets
        completed before it in this call are in the exception's ``packets`` attribute.
        """
        if self._error is not None:
            self._error.packets = []
            raise self._error
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif not data:
            return []
        elif type(data) is not bytes:
            data = bytes(data)
        packets: list[Packet] = []
        try:
            pos = self._parse(data, packets)
        except MQTTProtocolError as exc:
            exc.packets = packets
            self._error = exc
            raise
        if pos < len(data):
            buffer += memoryview(data)[pos:]
        return packets

    def _topic(self, raw: bytes) -> str | None:
        """Decode a PUBLISH topic name for the fast path; ``None`` if it is not valid."""
        try:
            topic = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not topic or "\x00" in topic or "+" in topic or "#" in topic:
            return None
        topics = self._topics
        if len(topics) >= _TOPIC_CACHE_SIZE:
            topics.clear()
        topics[raw] = topic
        return topic

    def _parse(self, data: bytes, out: list[Packet]) -> int:
        """Append the complete packets in ``data`` to ``out``; return where the incomplete rest starts.

        PUBLISH has an inlined path for the valid case (on protocol level 5, for a PUBLISH without
        properties). Anything it does not accept falls through to the general decoder, which is the
        one place that produces the errors.
        """
        size = len(data)
        pos = 0
        level = self.protocol_level
        limit = self.max_packet_size or MAX_PACKET_SIZE
        fast = level is not None
        properties_byte = level == 5  # MQTT 5: a property length of 0 (one byte) before the payload
        topics = self._topics
        append = out.append
        empty = EMPTY_PROPERTIES
        make_publish = self._publish_type
        while pos < size:
            first = data[pos]
            if pos + 1 < size and data[pos + 1] < 0x80:
                header = 2
                total = 2 + data[pos + 1]
            else:
                check_first_byte(first, level)
                result = decode_varint(data, pos + 1, size, "remaining length", pos)
                if result is None:
                    self._need = size - pos + 1
                    break
                header = result[1] - pos
                total = header + result[0]
            end = pos + total
            if fast and first & 0xF0 == 0x30 and total <= limit and end <= size:
                start = pos + header
                qos = (first >> 1) & 3
                packet_id = None
                payload_start = 0
                if start + 2 <= end:
                    topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
                    if qos == 0:
                        if not first & 0x08 and topic_end <= end:
                            payload_start = topic_end
                    elif qos != 3 and topic_end + 2 <= end:
                        packet_id = (data[topic_end] << 8) | data[topic_end + 1]
                        if packet_id:
                            payload_start = topic_end + 2
                    if properties_byte and payload_start:
                        payload_start = payload_start + 1 if payload_start < end and not data[payload_start] else 0
                if payload_start:
                    raw = data[start + 2 : topic_end]
                    topic = topics.get(raw) or self._topic(raw)
                    if topic is not None:
                        append(
                            make_publish(
                                topic,
                                data[payload_start:end],
                                qos,
                                bool(first & 1),
                                bool(first & 8),
                                packet_id,
                                empty,
                            )
                        )
                        pos = end
                        continue
            check_first_byte(first, level)
            if total > limit:
                raise PacketTooLarge(
                    f"{PacketType(first >> 4).name}: packet of {total} bytes exceeds the maximum packet "
                    f"size of {limit} bytes",
                    size=total,
                    limit=limit,
                    offset=0,
                )
            if end > size:
                self._need = total
                break
            if first >> 4 == PacketType.CONNECT:
                if level is not None:
                    raise ProtocolViolation(
                        "CONNECT received after the protocol level was established (a second CONNECT)",
                        offset=0,
                    )
                packet = decode_body(data, first, pos + header, end, base=pos, protocol_level=0)
                level = self.protocol_level = cast(Connect, packet).protocol_level
                fast = True
                properties_byte = level == 5
            else:
                packet = decode_body(data, first, pos + header, end, base=pos, protocol_level=level or 0)
            append(packet)
            pos = end
        return pos
