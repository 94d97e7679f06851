"""One MQTT connection: the protocol rules of a receiving server over the sans-I/O codec.

Publishes are written in batches on the ingest executor: whatever a connection delivers while its
previous batch is being written becomes the next batch, so the order of one connection's
publishes is kept and one WAL append serves many messages. A QoS 1 PUBACK or QoS 2 PUBREC is sent
only once its batch is durable per ``wal_mode``; the wait for the fsync happens on a separate
thread, so the ingest thread formats and logs the next batch meanwhile. When a connection's unwritten
backlog grows past a bound, the socket stops being read until the backlog drains (backpressure).

A QoS 2 resend is not written again, and its PUBREC waits until the first receipt's write is durable:
that write may still be under way for a connection that was dropped or taken over. Acknowledgements
of later batches wait behind it, so a connection's acknowledgements keep the order of its publishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iotdb_core.formatter import FormatContext
from iotdb_mqtt.codec import (
    Auth,
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
    UnsubAck,
    Unsubscribe,
    UnsupportedProtocolVersion,
    encode,
    encode_unsupported_version_connack,
)
from iotdb_mqtt.codec.packets import Packet, Will
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.ingest import InboundPublish, IngestedBatch, PublishOutcome
from iotdb_mqtt.sessions import NEVER_EXPIRES, SessionState

if TYPE_CHECKING:
    from iotdb_mqtt.server import MqttServer

log = logging.getLogger("iotdb.mqtt")

#: Topic aliases a client may define (MQTT 5 Topic Alias Maximum announced in CONNACK).
TOPIC_ALIAS_MAXIMUM = 1024
#: Unwritten publishes (or bytes of payload) after which the socket is no longer read.
BACKLOG_MESSAGES = 5000
BACKLOG_BYTES = 16 * 1024 * 1024
#: QoS 1 and 2 publishes an MQTT 5 client may have unacknowledged (Receive Maximum, announced in CONNACK and
#: enforced): the backlog bound, so a client keeping to it is not paused for its QoS 1 and 2 publishes alone.
RECEIVE_MAXIMUM = BACKLOG_MESSAGES
_PINGRESP = encode(PingResp(), 4)
_CONNACK_CODES_V3 = {
    ReasonCode.UNSUPPORTED_PROTOCOL_VERSION: 1,
    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID: 2,
    ReasonCode.SERVER_UNAVAILABLE: 3,
    ReasonCode.QUOTA_EXCEEDED: 3,
    ReasonCode.BAD_AUTHENTICATION_METHOD: 4,
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: 4,
    ReasonCode.NOT_AUTHORIZED: 5,
}


@dataclass(slots=True)
class _Batch:
    """Publishes written together, with the first-write outcomes of their QoS 2 messages."""

    publishes: list[InboundPublish]
    first_writes: dict[int, asyncio.Future[PublishOutcome | None]]
    """By index in ``publishes``, each QoS 2 message's entry of ``SessionState.qos2_pending``: this batch
    resolves it for a first receipt (``write`` is True); a resend's acknowledgement waits for it."""


class MqttConnection(asyncio.Protocol):
    """The server side of one client connection."""

    def __init__(self, server: MqttServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.reader = PacketReader(None, server.settings.mqtt_max_message_size)
        self.level = 4
        self.client_id = ""
        self.username: str | None = None
        self.context = FormatContext(client_id="")
        self.session = SessionState()
        self.connected = False
        self.closed = False
        self._authenticating = False
        self._early: list[Packet] = []
        self._will: Will | None = None
        self.keep_alive = 0
        self.opened_at = time.monotonic()
        self.last_activity = self.opened_at
        self._aliases: dict[int, str] = {}
        self._pending: list[InboundPublish] = []
        self._pending_bytes = 0
        self._pending_first_writes: dict[int, asyncio.Future[PublishOutcome | None]] = {}
        self._writing = False
        self._durability_waits = 0
        #: Durable batches not acknowledged yet: the first holds a resend whose first write is unfinished.
        self._durable_batches: deque[tuple[_Batch, list[PublishOutcome]]] = deque()
        self._awaited: asyncio.Future[PublishOutcome | None] | None = None
        self._paused = False
        #: In flight for Receive Maximum: QoS 1 publishes without PUBACK, QoS 2 ids without PUBCOMP (or a
        #: failure PUBREC), both received on this connection.
        self._unacked = 0
        self._unreleased: set[int] = set()
        #: MQTT 5 Request Problem Information: when 0, no reason strings on PUBACK, PUBREC or SUBACK [MQTT-3.1.2-29].
        self._problem_information = True

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        self.server.counters.add("mqtt_bytes_received", len(data))
        try:
            packets = self.reader.feed(data)
        except MQTTProtocolError as exc:
            self._handle(exc.packets)
            self._protocol_error(exc)
            return
        if packets:
            self._handle(packets)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            # A refused CONNECT or a close before CONNECT does not go through _close_session: without this
            # the socket would stay counted and, beyond the connection limit, lock every new client out.
            self.server.connection_closed(self)
            return
        self.closed = True
        self._close_session(abnormal=True)

    # ------------------------------------------------------------------ packets

    def _handle(self, packets: list[Packet]) -> None:
        publishes = 0
        for packet in packets:
            if self.closed:
                break
            if not self.connected:
                if self._authenticating:
                    self._early.append(packet)
                elif isinstance(packet, Connect):
                    self._on_connect(packet)
                continue
            kind = type(packet)
            if kind is Publish:
                publishes += 1
                self._on_publish(packet)  # type: ignore[arg-type]
            elif kind is PubRel:
                self._on_pubrel(packet)  # type: ignore[arg-type]
            elif kind is PingReq:
                self._write(_PINGRESP)
            elif kind is Disconnect:
                self._on_disconnect(packet)  # type: ignore[arg-type]
            elif kind is Subscribe:
                self._on_subscribe(packet)  # type: ignore[arg-type]
            elif kind is Unsubscribe:
                self._on_unsubscribe(packet)  # type: ignore[arg-type]
            elif kind is Auth:
                self._violation(ReasonCode.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
            else:
                self._violation(ReasonCode.PROTOCOL_ERROR, f"a client must not send {kind.__name__}")
        if publishes:
            self.server.counters.add("mqtt_publishes_received", publishes)
        if self._pending and not self._writing:
            self._submit()

    def _on_connect(self, connect: Connect) -> None:
        self.level = connect.protocol_level
        server = self.server
        client_id = connect.client_id
        assigned: str | None = None
        if self.level == 3 and not 1 <= len(client_id) <= 23:
            self._refuse(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "MQTT 3.1 client ids have 1 to 23 characters")
            return
        if not client_id:
            if not connect.clean_start:
                self._refuse(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                             "an empty client id needs a clean session")
                return
            client_id = assigned = "auto-" + uuid.uuid4().hex
        if self.level == 5 and connect.properties.authentication_method is not None:
            self._refuse(ReasonCode.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
            return
        if not server.has_room_for(client_id):
            self._refuse(ReasonCode.QUOTA_EXCEEDED, "the server has reached mqtt_max_connections")
            return
        self.client_id = client_id
        self.username = connect.username
        self._authenticating = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(server.auth_executor, server.authenticate, connect.username, connect.password)
        future.add_done_callback(lambda done: self._authenticated(connect, assigned, done))

    def _authenticated(self, connect: Connect, assigned: str | None, done: asyncio.Future[bool]) -> None:
        self._authenticating = False
        if self.closed:
            return
        if done.cancelled() or done.exception() is not None or not done.result():
            reason = "user name or password missing" if connect.password is None else "bad user name or password"
            self._refuse(ReasonCode.BAD_USER_NAME_OR_PASSWORD, reason)
            return
        server = self.server
        server.take_over(self, clean_start=connect.clean_start)
        self.session, present = server.sessions.take(self.client_id, clean_start=connect.clean_start)
        if self.level == 5:
            self.session.expiry_interval = connect.properties.session_expiry_interval or 0
        else:
            self.session.expiry_interval = 0 if connect.clean_start else NEVER_EXPIRES
        self.keep_alive = connect.keep_alive
        self._will = connect.will
        self._problem_information = connect.properties.request_problem_information != 0
        self.context = FormatContext(client_id=self.client_id, username=connect.username, qos=0,
                                     protocol_level=self.level)
        self.connected = True
        properties = Properties()
        if self.level == 5:
            properties = Properties(
                maximum_packet_size=server.settings.mqtt_max_message_size,
                topic_alias_maximum=TOPIC_ALIAS_MAXIMUM,
                receive_maximum=RECEIVE_MAXIMUM,
                assigned_client_identifier=assigned,
                wildcard_subscription_available=0,
                subscription_identifier_available=0,
                shared_subscription_available=0,
            )
        self._write(encode(ConnAck(session_present=present and self.level > 3, reason_code=0,
                                   properties=properties), self.level))
        server.counters.add("mqtt_connections_total")
        early, self._early = self._early, []
        if early:
            self._handle(early)

    def _on_publish(self, publish: Publish) -> None:
        topic = publish.topic
        alias = publish.properties.topic_alias if self.level == 5 else None
        if alias is not None:
            if not 1 <= alias <= TOPIC_ALIAS_MAXIMUM:
                self._violation(ReasonCode.TOPIC_ALIAS_INVALID,
                                f"topic alias {alias} is outside 1-{TOPIC_ALIAS_MAXIMUM}")
                return
            if topic:
                self._aliases[alias] = topic
            else:
                known = self._aliases.get(alias)
                if known is None:
                    self._violation(ReasonCode.PROTOCOL_ERROR, f"topic alias {alias} was never defined")
                    return
                topic = known
        elif not topic:
            self._violation(ReasonCode.PROTOCOL_ERROR, "a PUBLISH needs a topic name or a topic alias")
            return
        qos = publish.qos
        packet_id = publish.packet_id
        if qos and not self._count_in_flight(qos, packet_id):  # type: ignore[arg-type]
            return
        write = True
        if qos == 2:
            first_write, write = self._qos2_receipt(packet_id)  # type: ignore[arg-type]
            self._pending_first_writes[len(self._pending)] = first_write
        self._pending.append(InboundPublish(topic, publish.payload, qos, packet_id, write))
        self._pending_bytes += len(publish.payload)
        if not self._paused and (len(self._pending) > BACKLOG_MESSAGES or self._pending_bytes > BACKLOG_BYTES):
            self._paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def _count_in_flight(self, qos: int, packet_id: int) -> bool:
        """Count a QoS 1 or 2 publish as unacknowledged; False, closing, when it exceeds Receive Maximum."""
        if qos == 1:
            self._unacked += 1
        else:
            self._unreleased.add(packet_id)
        if self.level == 5 and self._unacked + len(self._unreleased) > RECEIVE_MAXIMUM:
            self._violation(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
                            f"more than {RECEIVE_MAXIMUM} QoS 1 and 2 publishes unacknowledged")
            return False
        return True

    def _qos2_receipt(self, packet_id: int) -> tuple[asyncio.Future[PublishOutcome | None], bool]:
        """The outcome of QoS 2 message ``packet_id``'s first write, and whether this receipt is the first.

        A resend (its id still awaits PUBREL in the session) is not written again.
        """
        pending = self.session.qos2_pending
        first_write = pending.get(packet_id)
        if first_write is not None:
            return first_write, False
        first_write = pending[packet_id] = asyncio.get_running_loop().create_future()
        return first_write, True

    def _on_pubrel(self, pubrel: PubRel) -> None:
        self._unreleased.discard(pubrel.packet_id)
        if self.session.qos2_pending.pop(pubrel.packet_id, None) is not None:
            code = 0
        else:
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.level == 5 else 0
        self._write(encode(PubComp(pubrel.packet_id, code), self.level))

    def _on_subscribe(self, subscribe: Subscribe) -> None:
        code = ReasonCode.NOT_AUTHORIZED if self.level == 5 else 0x80
        problem = self.level == 5 and self._problem_information
        reason = Properties(reason_string="this server accepts publishes only") if problem else Properties()
        codes = tuple(code for _ in subscribe.subscriptions)
        self._write(encode(SubAck(subscribe.packet_id, codes, properties=reason), self.level))

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        codes = tuple(ReasonCode.NO_SUBSCRIPTION_EXISTED for _ in unsubscribe.topic_filters) if self.level == 5 else ()
        self._write(encode(UnsubAck(unsubscribe.packet_id, codes), self.level))

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        if self.level == 5:
            if disconnect.reason_code != ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
                self._will = None
            expiry = disconnect.properties.session_expiry_interval
            if expiry is not None:
                self.session.expiry_interval = expiry
        else:
            self._will = None
        self.closed = True
        # A will still set here was asked for (MQTT 5 reason 0x04, Disconnect with Will Message): it is
        # published as after an abnormal close.
        self._close_session(abnormal=self._will is not None)
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ writing and acknowledging

    def _submit(self) -> None:
        batch = _Batch(self._pending, self._pending_first_writes)
        self._pending, self._pending_bytes, self._pending_first_writes = [], 0, {}
        self._writing = True
        future = self.server.submit(self.context, batch.publishes)
        future.add_done_callback(lambda done: self._written(batch, done))

    def _written(self, batch: _Batch, done: asyncio.Future[IngestedBatch]) -> None:
        """The batch is logged: wait for its durability off the ingest thread, and start the next batch."""
        self._writing = False
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._write_failed(batch, error)
            return
        self._durability_waits += 1
        durable = self.server.await_durable(done.result())
        durable.add_done_callback(lambda finished: self._durable(batch, finished))
        if self._pending:
            self._submit()
        elif self._paused and not self.closed and self.transport is not None and not self.server.stopping:
            # Not once the server is stopping: a publisher that keeps sending would keep shutdown waiting.
            self._paused = False
            self.transport.resume_reading()

    def _durable(self, batch: _Batch, done: asyncio.Future[list[PublishOutcome]]) -> None:
        """The batch is durable (batches of one connection become durable in order): acknowledge it."""
        self._durability_waits -= 1
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._write_failed(batch, error)
            return
        outcomes = done.result()
        for index, first_write in batch.first_writes.items():
            if batch.publishes[index].write:
                first_write.set_result(outcomes[index])
        if not self.closed:
            self._durable_batches.append((batch, outcomes))
            self._acknowledge_durable()
        self.server.batch_done(self)

    def _write_failed(self, batch: _Batch, error: BaseException) -> None:
        # Nothing of the batch is acknowledged: QoS 1 and 2 publishers resend it after reconnecting,
        # so the QoS 2 ids must not be taken for already stored — nor resends waiting for this write.
        log.error("write for client %r failed, its publishes stay unacknowledged: %s", self.client_id, error)
        pending = self.session.qos2_pending
        for index, first_write in batch.first_writes.items():
            publish = batch.publishes[index]
            if publish.write:
                first_write.set_result(None)
                if pending.get(publish.packet_id) is first_write:  # type: ignore[arg-type]
                    del pending[publish.packet_id]  # type: ignore[arg-type]
        self._violation(ReasonCode.SERVER_BUSY, f"write failed: {error}")
        if self._pending and not self._writing:
            self._submit()  # what arrived later (a will, QoS 0 data) still gets its chance
        self.server.batch_done(self)

    def _acknowledge_durable(self) -> None:
        """Acknowledge the durable batches in order, stopping at one whose resend waits for its first write."""
        queue = self._durable_batches
        while queue:
            batch, outcomes = queue[0]
            if batch.first_writes and not self._settle_resends(batch, outcomes):
                return
            queue.popleft()
            self._acknowledge(batch.publishes, outcomes)

    def _settle_resends(self, batch: _Batch, outcomes: list[PublishOutcome]) -> bool:
        """Give each resend in ``batch`` the outcome of its first write; False while one of them is unfinished.

        If one of those writes failed, the resend was not stored either: the connection is closed without
        acknowledging it, and the client's next resend is written (the failure forgot the id).
        """
        for index, first_write in batch.first_writes.items():
            publish = batch.publishes[index]
            if publish.write:
                continue
            if not first_write.done():
                if first_write is not self._awaited:
                    self._awaited = first_write
                    first_write.add_done_callback(self._first_write_done)
                return False
            outcome = first_write.result()
            if outcome is None:
                self._violation(ReasonCode.SERVER_BUSY,
                                f"the first write of resent QoS 2 message {publish.packet_id} failed")
                return False
            outcomes[index] = outcome
        return True

    def _first_write_done(self, first_write: asyncio.Future[PublishOutcome | None]) -> None:
        if self._awaited is first_write:
            self._awaited = None
        self._acknowledge_durable()
        self.server.batch_done(self)

    def _acknowledge(self, publishes: list[InboundPublish], outcomes: list[PublishOutcome]) -> None:
        acks: list[bytes] = []
        level = self.level
        for publish, outcome in zip(publishes, outcomes, strict=True):
            if not publish.qos:
                continue
            packet_id = publish.packet_id
            assert packet_id is not None
            if publish.qos == 1:
                self._unacked -= 1
            if outcome.reason_code and level == 5:
                properties = Properties(reason_string=outcome.reason if self._problem_information else None)
                ack = PubAck if publish.qos == 1 else PubRec
                acks.append(encode(ack(packet_id, outcome.reason_code, properties), 5))
                if publish.qos == 2:
                    # A failure PUBREC ends the exchange: no PUBREL follows and the client may reuse the
                    # id at once [MQTT-4.3.3], so it must not mark the next message as a resend.
                    self._unreleased.discard(packet_id)
                    self.session.qos2_pending.pop(packet_id, None)
            else:
                acks.append((b"\x40\x02" if publish.qos == 1 else b"\x50\x02") + packet_id.to_bytes(2, "big"))
        if acks:
            self._write(b"".join(acks))

    @property
    def authenticating(self) -> bool:
        """True while a received CONNECT waits for its password check (queued behind others on the auth thread)."""
        return self._authenticating

    def has_work(self) -> bool:
        """True while publishes of this connection are queued, being written, awaiting durability or
        awaiting the first write of a QoS 2 resend."""
        return self._writing or bool(self._pending) or self._durability_waits > 0 or bool(self._durable_batches)

    # ------------------------------------------------------------------ closing

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.server.counters.add("mqtt_bytes_sent", len(data))

    def _refuse(self, code: ReasonCode, reason: str) -> None:
        """Answer CONNECT with a failure and close."""
        self.server.counters.add("mqtt_connections_refused")
        log.info("refused MQTT connection from %s (client %r): %s", self._peer(), self.client_id, reason)
        if self.level == 5:
            self._write(encode(ConnAck(reason_code=code, properties=Properties(reason_string=reason)), 5))
        else:
            self._write(encode(ConnAck(reason_code=_CONNACK_CODES_V3.get(code, 3)), self.level))
        self._will = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _protocol_error(self, exc: MQTTProtocolError) -> None:
        if self.closed:
            return
        if isinstance(exc, UnsupportedProtocolVersion) and not self.connected:
            self.server.counters.add("mqtt_connections_refused")
            self._write(encode_unsupported_version_connack())
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self._violation(exc.reason_code, str(exc))

    def _violation(self, code: int, reason: str) -> None:
        """Close after a protocol violation; MQTT 5 clients are told why in a DISCONNECT."""
        if self.closed:
            return
        log.info("closing MQTT connection from %s (client %r): %s", self._peer(), self.client_id, reason)
        if self.connected and self.level == 5:
            self._write(encode(Disconnect(code, Properties(reason_string=reason[:200])), 5))
        self.closed = True
        self._close_session(abnormal=True)
        if self.transport is not None:
            self.transport.close()

    def close_for(self, code: int, reason: str) -> None:
        """Close on the server's initiative (takeover, keep-alive timeout, shutdown)."""
        if self.closed:
            return
        if not self.connected:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            return
        self._violation(code, reason)

    def _close_session(self, *, abnormal: bool) -> None:
        if self.connected:
            if abnormal and self._will is not None:
                self._publish_will(self._will)
            self._will = None
            self._durable_batches.clear()  # nothing more is acknowledged
            self.server.sessions.keep(self.client_id, self.session)
        if self._pending and not self._writing:
            self._submit()
        self.server.connection_closed(self)

    def _publish_will(self, will: Will) -> None:
        """Write the will now, or — MQTT 5 — once its Will Delay Interval or the session ends, whichever is first.

        A delayed will is left to the server, which drops it if the client id connects again before it is
        due [MQTT-3.1.2-8].
        """
        delay = min(will.properties.will_delay_interval or 0, self.session.expiry_interval)
        if delay:
            self.server.delay_will(self.context, will, delay)
        else:
            self._pending.append(InboundPublish(will.topic, will.payload, 0, None))

    def _peer(self) -> str:
        if self.transport is None:
            return "?"
        peer = self.transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
