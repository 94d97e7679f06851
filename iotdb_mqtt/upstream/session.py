"""The client side of one upstream MQTT connection, without I/O: events in, actions out.

:class:`ClientSession` is the mirror of :class:`~iotdb_mqtt.protocol.ServerSession` for the connections this
server makes to an upstream broker: it is fed the events of one connection (the socket opened, bytes received,
a batch logged or durable, the clock) and acts through an :class:`UpstreamOutput` port (send bytes, write a
batch, pause or resume reading, close). The asyncio adapter (:mod:`iotdb_mqtt.upstream.client`) only carries
those out; tests drive a session directly, deterministically. Packets are encoded and decoded by the project's
codec (:mod:`iotdb_mqtt.codec`).

The rules:

- CONNECT asks for a persistent session (clean start 0; MQTT 5 with a Session Expiry Interval), so the broker
  queues messages while this node is away and redelivers the unacknowledged ones when it is back. MQTT 5 also
  announces a Receive Maximum, which bounds the QoS 1 and 2 messages the broker has in flight to us, and a
  Maximum Packet Size. After CONNACK the filters are subscribed (again: a subscription replaces itself).
- Publishes are written in batches, like a direct client's: whatever arrives while the previous batch is
  being written is the next batch. With a ``batch_delay``, a batch smaller than half the Receive Maximum waits
  until its first message is that old (or reading pauses) before it is written, so one write, one fsync and
  one acknowledgement packet serve many messages even when they trickle in; the delay costs latency only, as
  the broker's in-flight window is never left waiting on it. A PUBACK (QoS 1) or PUBREC (QoS 2) goes to the
  broker only once its batch is durable, in arrival order. A failed write acknowledges nothing and closes the
  connection; the broker redelivers after the reconnect. A QoS 2 message is written on every receipt (its
  points are idempotent per timestamp), and PUBREL is answered with PUBCOMP at once: its PUBREC was sent only
  after the write was durable.
- While more QoS 1 and 2 messages than the Receive Maximum, or more than :data:`BACKLOG_BYTES` of payload,
  wait to be written or acknowledged, the socket is not read (3.1.1 brokers are told no limit).
- Keep alive: a PINGREQ after ``keep_alive`` seconds without sending; no answer within another ``keep_alive``
  closes the connection, and so does a missing CONNACK after ``connect_timeout`` seconds.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    MQTTProtocolError,
    PacketReader,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    Subscription,
    encode,
)
from iotdb_mqtt.codec.packets import Packet
from iotdb_mqtt.codec.properties import EMPTY_PROPERTIES
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.ingest import InboundPublish

log = logging.getLogger("iotdb.mqtt.upstream")

#: Bytes of payload received and not yet acknowledged after which the socket is no longer read.
BACKLOG_BYTES = 16 * 1024 * 1024
_CONNACK_V3_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
_PINGREQ = encode(PingReq(), 4)


class State(Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    """CONNECT sent, waiting for CONNACK."""
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionOptions:
    """What a session connects and subscribes with."""

    client_id: str
    subscriptions: tuple[str, ...]
    qos: int = 1
    protocol_level: int = 5
    username: str | None = None
    password: bytes | None = None
    keep_alive: int = 60
    session_expiry: int = 86400
    receive_maximum: int = 1000
    max_packet_size: int = 1048576
    connect_timeout: float = 10.0
    batch_delay: float = 0.0
    """Seconds a batch smaller than half the Receive Maximum may wait for more messages (0: none)."""


class ReceivedPublish(InboundPublish):
    """A PUBLISH from the broker, already in the form the ingestor takes.

    The session's reader builds these straight from the wire (its ``publish_type``), so a message costs one
    object, not a :class:`Publish` and then an :class:`InboundPublish`. The retained flag is dropped: the
    upstream broker keeps the retained messages, not this node; DUP changes nothing here.
    """

    __slots__ = ()

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool, dup: bool, packet_id: int | None,
                 properties: Properties = EMPTY_PROPERTIES) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.packet_id = packet_id
        self.write = True
        self.retain = False
        self.properties = properties
        self.ingest = True
        self.refusal = 0
        self.rows = None


@dataclass(slots=True)
class UpstreamBatch:
    """Publishes received together, written and acknowledged together.

    What acknowledging takes is worked out when the batch is formed, so the publishes themselves are not needed
    once written: an adapter may let go of them while the batch waits to be durable.
    """

    publishes: list[InboundPublish]
    acks: bytes = b""
    """The PUBACK and PUBREC packets of the batch's QoS 1 and 2 messages, in order."""
    acknowledged: int = 0
    """How many messages ``acks`` acknowledges."""
    payload_bytes: int = 0
    """The payload bytes of those messages."""
    durable: bool = field(default=False)


class UpstreamOutput(Protocol):
    """The actions of a session, carried out by its adapter."""

    def send(self, data: bytes) -> None:
        """Write ``data`` to the socket."""

    def close(self) -> None:
        """Close the socket (the adapter then calls :meth:`ClientSession.connection_lost`)."""

    def pause_reading(self) -> None:
        """Stop reading the socket."""

    def resume_reading(self) -> None:
        """Read the socket again."""

    def submit(self, batch: UpstreamBatch) -> None:
        """Write ``batch``: call :meth:`ClientSession.batch_logged` once it is logged, then
        :meth:`ClientSession.batch_durable` once it is durable (or :meth:`ClientSession.batch_failed`)."""

    def call_later(self, delay: float) -> None:
        """Call :meth:`ClientSession.batch_due` in ``delay`` seconds (asked for only with a batch delay)."""

    def connected(self, session_present: bool) -> None:
        """The broker accepted the connection."""

    def subscribed(self, refused: list[tuple[str, int]]) -> None:
        """The broker answered the SUBSCRIBE; ``refused`` holds each refused filter with its code."""


class ClientSession:
    """The protocol rules of one upstream connection (see the module's docstring)."""

    def __init__(self, options: SessionOptions, output: UpstreamOutput, now: float = 0.0) -> None:
        self.options = options
        self.output = output
        self.level = options.protocol_level
        self.state = State.CONNECTING
        self.reader = PacketReader(self.level, max_packet_size=options.max_packet_size,
                                   publish_type=ReceivedPublish)
        #: Why the session closed, for the log (``None`` while open or after a normal close).
        self.close_reason: str | None = None
        #: Messages received (any QoS) since the session started.
        self.received = 0
        self._opened_at = now
        self._last_sent = now
        self._ping_sent_at: float | None = None
        self._pending: list[InboundPublish] = []
        #: When the oldest pending publish arrived.
        self._pending_since = now
        #: The time of the latest event given with one.
        self._clock = now
        #: Pending publishes that make a batch worth writing at once, whatever the batch delay.
        self._batch_target = max(1, options.receive_maximum // 2)
        self._timer_armed = False
        self._writing = False
        self._waiting: deque[UpstreamBatch] = deque()
        self._unacked = 0
        self._unacked_bytes = 0
        self._paused = False
        self._closing = False
        self._subscribe_id = 1

    # ------------------------------------------------------------------ events

    def start(self, now: float) -> None:
        """The socket is open: send CONNECT."""
        opts = self.options
        properties = Properties()
        if self.level == 5:
            properties = Properties(session_expiry_interval=opts.session_expiry,
                                    receive_maximum=opts.receive_maximum,
                                    maximum_packet_size=opts.max_packet_size)
        self._send(encode(Connect(client_id=opts.client_id, protocol_level=self.level, clean_start=False,
                                  keep_alive=opts.keep_alive, username=opts.username, password=opts.password,
                                  properties=properties), self.level), now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived from the broker."""
        if self.state is State.CLOSED:
            return
        try:
            packets = self.reader.feed(data)
        except MQTTProtocolError as exc:
            for packet in exc.packets:
                self._dispatch(packet, now)
            self._fail(f"the broker sent an invalid packet: {exc}")
            return
        on_publish = self._on_publish
        for packet in packets:
            if type(packet) is ReceivedPublish and self.state is State.CONNECTED:
                on_publish(packet, now)
                continue
            if self.state is State.CLOSED:
                return
            self._dispatch(packet, now)
        self._submit_when_due(now)

    def tick(self, now: float) -> None:
        """Check the time-outs and the keep alive."""
        if self.state is State.CLOSED:
            return
        if self.state is State.CONNECTING:
            if now - self._opened_at >= self.options.connect_timeout:
                self._fail(f"no CONNACK within {self.options.connect_timeout:g} s")
            return
        keep_alive = self.options.keep_alive
        if not keep_alive:
            return
        if self._ping_sent_at is not None:
            if now - self._ping_sent_at >= keep_alive:
                self._fail(f"no PINGRESP within {keep_alive} s")
        elif now - self._last_sent >= keep_alive:
            self._ping_sent_at = now
            self._send(_PINGREQ, now)

    def batch_logged(self, batch: UpstreamBatch, now: float | None = None) -> None:
        """``batch`` is logged; its durability is awaited. The next batch may be written (``now`` defaults to the
        time of the latest event the session was given)."""
        self._writing = False
        if self.state is State.CLOSED:
            return
        self._waiting.append(batch)
        self._submit_when_due(self._clock if now is None else now)

    def batch_due(self, now: float) -> None:
        """The batch delay asked for with :meth:`UpstreamOutput.call_later` has passed."""
        self._timer_armed = False
        self._submit_when_due(now)

    def batch_durable(self, batch: UpstreamBatch, now: float) -> int:
        """``batch`` is durable: acknowledge it, and every earlier durable batch, in arrival order; return the
        number of messages acknowledged to the broker now."""
        batch.durable = True
        acks: list[bytes] = []
        acknowledged = payload_bytes = 0
        waiting = self._waiting
        while waiting and waiting[0].durable:
            done = waiting.popleft()
            acks.append(done.acks)
            acknowledged += done.acknowledged
            payload_bytes += done.payload_bytes
        self._unacked -= acknowledged
        self._unacked_bytes -= payload_bytes
        sent = 0
        if acknowledged and self.state is not State.CLOSED:
            self._send(b"".join(acks), now)
            sent = acknowledged
        self._resume_if_room()
        self._finish_closing(now)
        return sent

    def batch_failed(self, batch: UpstreamBatch, error: BaseException) -> None:
        """``batch`` could not be written: acknowledge nothing more; the broker redelivers after the reconnect."""
        self._fail(f"write failed, the messages stay unacknowledged at the broker: {error}")

    def connection_lost(self) -> None:
        """The socket closed."""
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            if self.close_reason is None and not self._closing:
                self.close_reason = "the broker closed the connection"

    def disconnect(self, now: float) -> None:
        """Leave cleanly: stop reading, finish writing and acknowledging what arrived, then DISCONNECT (the session
        stays at the broker for its expiry interval)."""
        if self.state is State.CLOSED:
            return
        self._closing = True
        if not self._paused:
            self._paused = True
            self.output.pause_reading()
        self._submit_when_due(now)
        self._finish_closing(now)

    # ------------------------------------------------------------------ state for the adapter

    @property
    def has_work(self) -> bool:
        """True while publishes are queued, being written or waiting to be acknowledged."""
        return bool(self._pending) or self._writing or bool(self._waiting)

    @property
    def in_flight(self) -> int:
        """QoS 1 and 2 messages received and not yet acknowledged."""
        return self._unacked

    # ------------------------------------------------------------------ packets

    def _dispatch(self, packet: Packet, now: float) -> None:
        if self.state is State.CONNECTING:
            if isinstance(packet, ConnAck):
                self._on_connack(packet, now)
            else:
                self._fail(f"the broker sent {_name(packet)} before CONNACK")
            return
        if isinstance(packet, ReceivedPublish):
            self._on_publish(packet, now)
        elif isinstance(packet, Publish):  # one the reader's fast path left to the general decoder
            if packet.properties.topic_alias is not None:
                self._fail("the broker used a topic alias, which this client does not allow (Topic Alias Maximum 0)")
                return
            self._on_publish(ReceivedPublish(packet.topic, packet.payload, packet.qos, packet.retain, packet.dup,
                                             packet.packet_id, packet.properties), now)
        elif isinstance(packet, PubRel):
            self._send(encode(PubComp(packet.packet_id), self.level), now)
        elif isinstance(packet, PingResp):
            self._ping_sent_at = None
        elif isinstance(packet, SubAck):
            self._on_suback(packet)
        elif isinstance(packet, Disconnect):
            reason = packet.properties.reason_string
            self._fail(f"the broker disconnected with reason 0x{packet.reason_code:02X} "
                       f"({_reason_name(packet.reason_code)})" + (f": {reason}" if reason else ""))
        elif isinstance(packet, (PubAck, PubRec, PubComp)):
            self._fail(f"the broker sent {type(packet).__name__} for a message this client never published")
        else:
            self._fail(f"the broker sent an unexpected {type(packet).__name__}")

    def _on_connack(self, connack: ConnAck, now: float) -> None:
        if connack.reason_code:
            if self.level == 5:
                reason = _reason_name(connack.reason_code)
                detail = connack.properties.reason_string
                why = f"0x{connack.reason_code:02X} ({reason})" + (f": {detail}" if detail else "")
            else:
                why = f"return code {connack.reason_code} ({_CONNACK_V3_REASONS.get(connack.reason_code, '?')})"
            self._fail(f"the broker refused the connection: {why}")
            return
        self.state = State.CONNECTED
        self.output.connected(connack.session_present)
        opts = self.options
        subscriptions = tuple(Subscription(topic_filter, opts.qos, retain_handling=1 if self.level == 5 else 0)
                              for topic_filter in opts.subscriptions)
        self._send(encode(Subscribe(self._subscribe_id, subscriptions), self.level), now)

    def _on_suback(self, suback: SubAck) -> None:
        if suback.packet_id != self._subscribe_id:
            self._fail(f"the broker sent SUBACK for packet id {suback.packet_id}, which was not subscribed")
            return
        filters = self.options.subscriptions
        refused = [(topic_filter, code) for topic_filter, code in zip(filters, suback.reason_codes, strict=False)
                   if code >= 0x80]
        self.output.subscribed(refused)

    def _on_publish(self, publish: ReceivedPublish, now: float) -> None:
        self.received += 1
        if publish.qos:
            self._unacked += 1
            self._unacked_bytes += len(publish.payload)
        if not self._pending:
            self._pending_since = now
        self._pending.append(publish)
        if not self._paused and (self._unacked >= self.options.receive_maximum
                                 or self._unacked_bytes >= BACKLOG_BYTES):
            self._paused = True
            self.output.pause_reading()

    # ------------------------------------------------------------------ helpers

    def _submit_when_due(self, now: float) -> None:
        """Hand the pending publishes over as the next batch when no batch is being written, unless the batch
        delay lets them wait for more: they are fewer than the batch target, the first has waited less than the
        delay, and reading is not paused (a paused socket brings nothing more)."""
        self._clock = now
        if not self._pending or self._writing or self.state is State.CLOSED:
            return
        delay = self.options.batch_delay
        waited = now - self._pending_since
        if delay <= 0 or self._paused or len(self._pending) >= self._batch_target or waited >= delay:
            self._submit()
        elif not self._timer_armed:
            self._timer_armed = True
            self.output.call_later(delay - waited)

    def _submit(self) -> None:
        pending = self._pending
        acks: list[bytes] = []
        append = acks.append
        payload_bytes = 0
        for publish in pending:
            qos = publish.qos
            if qos:
                payload_bytes += len(publish.payload)
                assert publish.packet_id is not None
                append((b"\x40\x02" if qos == 1 else b"\x50\x02") + publish.packet_id.to_bytes(2, "big"))
        batch = UpstreamBatch(pending, b"".join(acks), len(acks), payload_bytes)
        self._pending = []
        self._writing = True
        self.output.submit(batch)

    def _resume_if_room(self) -> None:
        if (self._paused and not self._closing and self.state is not State.CLOSED
                and self._unacked < self.options.receive_maximum and self._unacked_bytes < BACKLOG_BYTES):
            self._paused = False
            self.output.resume_reading()

    def _finish_closing(self, now: float) -> None:
        if self._closing and not self.has_work and self.state is not State.CLOSED:
            if self.state is State.CONNECTED:
                self._send(encode(Disconnect(), self.level), now)
            self.state = State.CLOSED
            self.output.close()

    def _send(self, data: bytes, now: float) -> None:
        self._last_sent = now
        self.output.send(data)

    def _fail(self, reason: str) -> None:
        """Close the connection without acknowledging anything more."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_reason = reason
        self._pending = []
        self._waiting.clear()
        self.output.close()


def _name(packet: Packet) -> str:
    return "Publish" if isinstance(packet, ReceivedPublish) else type(packet).__name__


def _reason_name(code: int) -> str:
    try:
        return ReasonCode(code).name.replace("_", " ").lower()
    except ValueError:
        return "unknown reason code"
