"""Sending application messages to one subscriber, without I/O.

An :class:`OutboundQueue` is the sender half of one client id's session: the messages routed to it,
the QoS 1 and 2 messages sent and not yet acknowledged (the in-flight window), and the packet ids
those use. It never touches a socket: while its client is connected it hands encoded packets to a
``sink`` callable the connection supplies, and it reacts to PUBACK, PUBREC and PUBCOMP calls. So the
delivery rules are tested in process, deterministically, and a session outlives its connection
(MQTT 3.1.1 clean session 0, MQTT 5 session expiry) simply by keeping its queue.

Rules kept here:

- the delivery QoS is the subscription's granted QoS capped at the publish QoS (the router decides it);
- at most Receive Maximum (MQTT 5) or ``max_inflight`` (3.1.x) QoS 1 and 2 messages are unacknowledged;
  a QoS 2 message counts until its PUBCOMP, or a PUBREC with a failure code [MQTT-4.9.0-2];
- messages leave in the order they were routed; a reconnect first resends the unacknowledged ones with
  DUP set, and PUBREL for those already received, in their original order [MQTT-4.4.0-1];
- Message Expiry Interval is counted down to what remains when the message leaves, and an expired message
  is not sent [MQTT-3.3.2-5, MQTT-3.3.2-6];
- a packet larger than the client's Maximum Packet Size is discarded, not sent [MQTT-3.1.2-25];
- the queue of unsent messages is bounded in count and bytes: beyond it QoS 0 messages are dropped first,
  then the new message; every drop is counted and reported through ``on_drop``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from iotdb_core.formatter import Formatted
from iotdb_mqtt.codec.primitives import encode_varint
from iotdb_mqtt.codec.properties import EMPTY_PROPERTIES, Properties, PropertyOwner, encode_properties

#: Receive Maximum of an MQTT 5 client that announces none.
DEFAULT_RECEIVE_MAXIMUM = 65535
_PUBREL_V5 = 0x62


@dataclass(frozen=True, slots=True)
class ApplicationMessage:
    """A message as the router passes it on: what the publisher sent, minus what only concerned its hop.

    ``properties`` keep only what is forwarded (Payload Format Indicator, Content Type, Response Topic,
    Correlation Data, User Properties); the Message Expiry Interval lives in ``expires_at`` (wall-clock
    seconds, so it also counts down across a restart) and is recomputed for each send.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES
    expires_at: float | None = None
    publisher_id: str | None = None
    topic_bytes: bytes = field(default=b"", repr=False, compare=False)
    encoded: dict[tuple[int, bool], bytes] = field(default_factory=dict, repr=False, compare=False)
    """QoS 0 PUBLISH packets of this message by (protocol level, retain flag): a fan-out encodes each once."""
    rows: Sequence[Formatted] | None = field(default=None, repr=False, compare=False)
    """The rows the formatter read from the payload of an ingested publish (empty when it rejected the payload,
    None when unknown): the series whose READ_DATA a subscriber needs (:mod:`iotdb_mqtt.reads`)."""

    def __post_init__(self) -> None:
        if not self.topic_bytes:
            object.__setattr__(self, "topic_bytes", self.topic.encode("utf-8"))

    @classmethod
    def received(cls, topic: str, payload: bytes, qos: int, retain: bool, properties: Properties,
                 publisher_id: str | None, now: float | None = None,
                 rows: Sequence[Formatted] | None = None) -> ApplicationMessage:
        """The message of a PUBLISH (or a will) as received, its expiry fixed from now."""
        expiry = properties.message_expiry_interval
        forwarded = EMPTY_PROPERTIES
        if properties is not EMPTY_PROPERTIES and properties != EMPTY_PROPERTIES:
            forwarded = Properties(
                payload_format_indicator=properties.payload_format_indicator,
                content_type=properties.content_type,
                response_topic=properties.response_topic,
                correlation_data=properties.correlation_data,
                user_properties=properties.user_properties,
            )
            if forwarded == EMPTY_PROPERTIES:
                forwarded = EMPTY_PROPERTIES
        expires_at = None if expiry is None else (time.time() if now is None else now) + expiry
        return cls(topic, payload, qos, retain, forwarded, expires_at, publisher_id, rows=rows)

    def remaining_expiry(self, now: float) -> int | None:
        """Whole seconds of life left (at least 1 while alive), ``None`` without expiry, 0 once expired."""
        if self.expires_at is None:
            return None
        left = self.expires_at - now
        return math.ceil(left) if left > 0 else 0

    @property
    def size(self) -> int:
        """Bytes this message holds in a queue (payload and topic)."""
        return len(self.payload) + len(self.topic_bytes)


@dataclass(slots=True)
class Outgoing:
    """One message on its way to one client."""

    message: ApplicationMessage
    qos: int
    retain: bool
    identifiers: tuple[int, ...] = ()
    packet_id: int = 0
    sent: bool = False
    """Sent at least once: a resend carries DUP [MQTT-3.3.1-1]."""
    message_id: int = 0
    """Its id in the durable session log, or 0 when the session is not persistent (or the QoS is 0)."""


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Bounds of one session's queue (``mqtt_max_queued_messages``, ``mqtt_max_queued_bytes``,
    ``mqtt_max_inflight_messages``)."""

    max_queued: int = 1000
    max_queued_bytes: int = 16 * 1024 * 1024
    max_inflight: int = 20


def encode_publish(outgoing: Outgoing, level: int, now: float, dup: bool = False) -> bytes | None:
    """The PUBLISH packet of ``outgoing`` for a client of protocol ``level``; ``None`` once expired."""
    message = outgoing.message
    qos = outgoing.qos
    shared = not qos and not outgoing.identifiers and message.expires_at is None
    if shared:
        cached = message.encoded.get((level, outgoing.retain))
        if cached is not None:
            return cached
    first = 0x30 | (qos << 1) | (0x01 if outgoing.retain else 0) | (0x08 if dup and qos else 0)
    topic = message.topic_bytes
    parts = [len(topic).to_bytes(2, "big"), topic]
    if qos:
        parts.append(outgoing.packet_id.to_bytes(2, "big"))
    remaining = message.remaining_expiry(now)
    if remaining == 0:
        return None
    if level == 5:
        properties = message.properties
        if remaining is not None or outgoing.identifiers:
            properties = replace(properties, message_expiry_interval=remaining,
                                 subscription_identifiers=outgoing.identifiers)
        parts.append(encode_properties(properties, PropertyOwner.PUBLISH))
    parts.append(message.payload)
    body = b"".join(parts)
    packet = bytes((first,)) + encode_varint(len(body)) + body
    if shared:
        message.encoded[(level, outgoing.retain)] = packet
    return packet


def encode_pubrel(packet_id: int) -> bytes:
    """PUBREL with reason Success, the same bytes for every protocol level."""
    return bytes((_PUBREL_V5, 2)) + packet_id.to_bytes(2, "big")


class OutboundQueue:
    """The sender state of one subscriber session (see the module docstring)."""

    def __init__(self, client_id: str, limits: QueueLimits,
                 on_drop: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 on_finished: Callable[[str, Outgoing], None] | None = None,
                 on_released: Callable[[str, Outgoing], None] | None = None) -> None:
        self.client_id = client_id
        self.limits = limits
        self._on_drop = on_drop
        self._clock = clock
        #: Told when a message leaves the session for good (acknowledged, dropped, a failure PUBREC) and when a
        #: QoS 2 message's PUBREC came back: the durable session log follows both.
        self._on_finished = on_finished
        self._on_released = on_released
        self._sink: Callable[[bytes], None] | None = None
        self.level = 4
        self.receive_maximum = limits.max_inflight
        self.max_packet_size: int | None = None
        self.writable = True
        self._queue: deque[Outgoing] = deque()
        self._queued_bytes = 0
        #: Sent QoS 1 and 2 messages awaiting PUBACK / PUBREC, by packet id, in send order.
        self._inflight: dict[int, Outgoing] = {}
        #: QoS 2 messages whose PUBREC came back, by packet id: PUBREL sent, awaiting PUBCOMP, in order.
        self._released: dict[int, Outgoing] = {}
        self._next_id = 1
        self.sent = 0
        self.dropped = 0

    # ------------------------------------------------------------------ connection

    @property
    def online(self) -> bool:
        """True while a connection receives for this session."""
        return self._sink is not None

    def attach(self, sink: Callable[[bytes], None], level: int, receive_maximum: int | None,
               max_packet_size: int | None) -> None:
        """A connection takes this session: resend what is unacknowledged (DUP), then send what waits."""
        self._sink = sink
        self.level = level
        if level == 5:
            self.receive_maximum = receive_maximum or DEFAULT_RECEIVE_MAXIMUM
        else:
            self.receive_maximum = self.limits.max_inflight
        self.max_packet_size = max_packet_size
        self.writable = True
        now = self._clock()
        for packet_id, outgoing in list(self._inflight.items()):
            data = encode_publish(outgoing, level, now, dup=True)
            if data is None or not self._fits(data):
                # Expired while the client was away, or too large for its new Maximum Packet Size.
                del self._inflight[packet_id]
                self._drop(outgoing, "expired" if data is None else "larger than the client's Maximum Packet Size")
                continue
            sink(data)
        for packet_id in self._released:
            sink(encode_pubrel(packet_id))
        self.pump()

    def detach(self) -> None:
        """The connection closed; QoS 0 messages not yet sent are dropped, QoS 1 and 2 ones wait."""
        self._sink = None
        if any(outgoing.qos == 0 for outgoing in self._queue):
            kept = deque(outgoing for outgoing in self._queue if outgoing.qos)
            self._queued_bytes = sum(outgoing.message.size for outgoing in kept)
            self._queue = kept

    def set_writable(self, writable: bool) -> None:
        """Follow the transport's write buffer: while it is full nothing more is handed over."""
        self.writable = writable
        if writable:
            self.pump()

    # ------------------------------------------------------------------ messages

    def offer(self, message: ApplicationMessage, qos: int, retain: bool, identifiers: tuple[int, ...] = (),
              message_id: int = 0) -> bool:
        """Queue ``message`` at delivery ``qos`` and send what the window allows; False if it was dropped."""
        if not qos and not self.online:
            return False  # a disconnected session keeps QoS 1 and 2 messages only [MQTT-3.1.2-5]
        outgoing = Outgoing(message, qos, retain, identifiers, message_id=message_id)
        if not self._make_room(outgoing):
            self._drop(outgoing, "the session's queue is full")
            return False
        self._queue.append(outgoing)
        self._queued_bytes += message.size
        self.pump()
        return True

    def _make_room(self, outgoing: Outgoing) -> bool:
        limits = self.limits
        size = outgoing.message.size
        while len(self._queue) >= limits.max_queued or self._queued_bytes + size > limits.max_queued_bytes:
            if not outgoing.qos or not self._drop_oldest_qos0():
                return False
        return True

    def _drop_oldest_qos0(self) -> bool:
        for index, queued in enumerate(self._queue):
            if not queued.qos:
                del self._queue[index]
                self._queued_bytes -= queued.message.size
                self._drop(queued, "the session's queue is full")
                return True
        return False

    def pump(self) -> None:
        """Send queued messages while connected, writable and within the in-flight window."""
        sink = self._sink
        if sink is None:
            return
        queue = self._queue
        now = self._clock()
        while queue and self.writable:
            head = queue[0]
            if head.qos and len(self._inflight) + len(self._released) >= self.receive_maximum:
                return
            queue.popleft()
            self._queued_bytes -= head.message.size
            if head.qos:
                head.packet_id = self._allocate_id()
            data = encode_publish(head, self.level, now, dup=head.sent)
            if data is None:
                self._drop(head, "expired")
                continue
            if not self._fits(data):
                self._drop(head, "larger than the client's Maximum Packet Size")
                continue
            if head.qos:
                head.sent = True
                self._inflight[head.packet_id] = head
            self.sent += 1
            sink(data)

    def _fits(self, data: bytes) -> bool:
        return self.max_packet_size is None or len(data) <= self.max_packet_size

    def _allocate_id(self) -> int:
        """The next packet id not in use by an unfinished exchange of this session."""
        candidate = self._next_id
        for _ in range(65535):
            if candidate not in self._inflight and candidate not in self._released:
                self._next_id = candidate % 65535 + 1
                return candidate
            candidate = candidate % 65535 + 1
        raise RuntimeError("no free packet identifier")  # unreachable: the window is at most 65535

    def restore(self, outgoing: Outgoing) -> None:
        """Put back a message of a session recovered from its durable log (sent before, so resent with DUP)."""
        outgoing.sent = True
        self._queue.append(outgoing)
        self._queued_bytes += outgoing.message.size

    def restore_released(self, outgoing: Outgoing) -> None:
        """Put back a QoS 2 message of a recovered session whose PUBREC had come back: its PUBREL (with
        ``outgoing.packet_id``) is resent when the client attaches, and PUBCOMP finishes it."""
        self._released[outgoing.packet_id] = outgoing

    def _finished(self, outgoing: Outgoing) -> None:
        if outgoing.message_id and self._on_finished is not None:
            self._on_finished(self.client_id, outgoing)

    def _drop(self, outgoing: Outgoing, why: str) -> None:
        self._finished(outgoing)
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(self.client_id, f"message on {outgoing.message.topic!r} (QoS {outgoing.qos}) dropped: {why}")

    # ------------------------------------------------------------------ acknowledgements

    def on_puback(self, packet_id: int) -> bool:
        """PUBACK for a QoS 1 message; False when no QoS 1 message has that id (it is then ignored)."""
        outgoing = self._inflight.get(packet_id)
        if outgoing is None or outgoing.qos != 1:
            return False
        del self._inflight[packet_id]
        self._finished(outgoing)
        self.pump()
        return True

    def on_pubrec(self, packet_id: int, reason_code: int = 0) -> bytes | None:
        """PUBREC for a QoS 2 message: the PUBREL to send, or ``None`` (a failure code ends the exchange).

        A PUBREC for an id already released is answered with PUBREL again; one for an unknown id gets a
        PUBREL too, MQTT 5 expecting the client then to answer 0x92 (Packet Identifier not found).
        """
        outgoing = self._inflight.get(packet_id)
        if outgoing is not None and outgoing.qos == 2:
            del self._inflight[packet_id]
            if reason_code >= 0x80:
                self._finished(outgoing)
                self.pump()
                return None
            self._released[packet_id] = outgoing
            if outgoing.message_id and self._on_released is not None:
                self._on_released(self.client_id, outgoing)
            return encode_pubrel(packet_id)
        if reason_code >= 0x80:
            return None
        return encode_pubrel(packet_id)

    def on_pubcomp(self, packet_id: int) -> bool:
        """PUBCOMP ends a QoS 2 exchange; False for an id that awaited none."""
        outgoing = self._released.pop(packet_id, None)
        if outgoing is None:
            return False
        self._finished(outgoing)
        self.pump()
        return True

    # ------------------------------------------------------------------ inspection

    @property
    def queued(self) -> int:
        """Messages waiting to be sent."""
        return len(self._queue)

    @property
    def inflight(self) -> int:
        """QoS 1 and 2 messages sent and not completed."""
        return len(self._inflight) + len(self._released)

    def pending_messages(self) -> list[Outgoing]:
        """Unfinished QoS 1 and 2 messages (in flight first, then queued), for persisting the session."""
        return [*self._inflight.values(), *(outgoing for outgoing in self._queue if outgoing.qos)]
