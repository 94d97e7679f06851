"""One MQTT connection: the protocol rules of a receiving server over the sans-I/O codec.

Publishes are written in batches on the ingest executor: whatever a connection delivers while its
previous batch is being written becomes the next batch, so the order of one connection's
publishes is kept and one WAL append serves many messages. A QoS 1 PUBACK or QoS 2 PUBREC is sent
only once its batch is durable per ``wal_mode``; the wait for the fsync happens on a separate
thread, so the ingest thread formats and logs the next batch meanwhile. When a connection's unwritten
backlog grows past a bound, the socket stops being read until the backlog drains (backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
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
        self._writing = False
        self._durability_waits = 0
        self._paused = False
        self._unacked = 0
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
        server.take_over(self)
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
        write = True
        if qos == 2:
            pending = self.session.qos2_pending
            if publish.packet_id in pending:
                write = False
            else:
                pending.add(publish.packet_id)  # type: ignore[arg-type]
        if qos:
            self._unacked += 1
        self._pending.append(InboundPublish(topic, publish.payload, qos, publish.packet_id, write))
        self._pending_bytes += len(publish.payload)
        if not self._paused and (len(self._pending) > BACKLOG_MESSAGES or self._pending_bytes > BACKLOG_BYTES):
            self._paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def _on_pubrel(self, pubrel: PubRel) -> None:
        pending = self.session.qos2_pending
        if pubrel.packet_id in pending:
            pending.discard(pubrel.packet_id)
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
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._writing = True
        future = self.server.submit(self.context, batch)
        future.add_done_callback(lambda done: self._written(batch, done))

    def _written(self, batch: list[InboundPublish], done: asyncio.Future[IngestedBatch]) -> None:
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

    def _durable(self, batch: list[InboundPublish], done: asyncio.Future[list[PublishOutcome]]) -> None:
        """The batch is durable (batches of one connection become durable in order): acknowledge it."""
        self._durability_waits -= 1
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._write_failed(batch, error)
            return
        if not self.closed:
            self._acknowledge(batch, done.result())
        self.server.batch_done(self)

    def _write_failed(self, batch: list[InboundPublish], error: BaseException) -> None:
        # Nothing of the batch is acknowledged: QoS 1 and 2 publishers resend it after reconnecting,
        # so the QoS 2 ids must not be taken for already stored.
        log.error("write for client %r failed, its publishes stay unacknowledged: %s", self.client_id, error)
        for publish in batch:
            if publish.qos == 2 and publish.write:
                self.session.qos2_pending.discard(publish.packet_id)  # type: ignore[arg-type]
        self._violation(ReasonCode.SERVER_BUSY, f"write failed: {error}")
        if self._pending and not self._writing:
            self._submit()  # what arrived later (a will, QoS 0 data) still gets its chance
        self.server.batch_done(self)

    def _acknowledge(self, batch: list[InboundPublish], outcomes: list[PublishOutcome]) -> None:
        acks: list[bytes] = []
        level = self.level
        for publish, outcome in zip(batch, outcomes, strict=True):
            if not publish.qos:
                continue
            self._unacked -= 1
            packet_id = publish.packet_id
            assert packet_id is not None
            if outcome.reason_code and level == 5:
                properties = Properties(reason_string=outcome.reason if self._problem_information else None)
                ack = PubAck if publish.qos == 1 else PubRec
                acks.append(encode(ack(packet_id, outcome.reason_code, properties), 5))
                if publish.qos == 2:
                    # A failure PUBREC ends the exchange: no PUBREL follows and the client may reuse the
                    # id at once [MQTT-4.3.3], so it must not mark the next message as a resend.
                    self.session.qos2_pending.discard(packet_id)
            else:
                acks.append((b"\x40\x02" if publish.qos == 1 else b"\x50\x02") + packet_id.to_bytes(2, "big"))
        if acks:
            self._write(b"".join(acks))

    @property
    def authenticating(self) -> bool:
        """True while a received CONNECT waits for its password check (queued behind others on the auth thread)."""
        return self._authenticating

    def has_work(self) -> bool:
        """True while publishes of this connection are queued, being written or awaiting durability."""
        return self._writing or bool(self._pending) or self._durability_waits > 0

    # ------------------------------------------------------------------ closing

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.server.counters.add("mqtt_bytes_sent", len(data))

    def _refuse(self, code: int, reason: str) -> None:
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
                will = self._will
                self._pending.append(InboundPublish(will.topic, will.payload, 0, None))
                if not self._writing:
                    self._submit()
            self._will = None
            self.server.sessions.keep(self.client_id, self.session)
        if self._pending and not self._writing:
            self._submit()
        self.server.connection_closed(self)

    def _peer(self) -> str:
        if self.transport is None:
            return "?"
        peer = self.transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
