"""The protocol rules of one MQTT connection, without I/O: events in, actions out.

:class:`ServerSession` is to an MQTT connection what h11's ``Connection`` is to HTTP: it is fed the
events of one connection — bytes received, the password check's result, a batch logged or durable,
the transport's write buffer filling or draining, the connection lost, a time-out — and answers with
actions on an :class:`Output` port: bytes to send, a password to check, a batch to write, reading to
pause or resume, the connection to close. The asyncio adapter (:mod:`iotdb_mqtt.connection`) only carries
those out; tests drive a session directly with a recording port, deterministically.

What the session needs from the server — the router, the topic ACL, the stored sessions, takeovers,
delayed wills — is typed as :class:`Host`.

Inbound publishes are written in batches: whatever arrives while the previous batch is being written
becomes the next batch, so the order of one connection's publishes is kept and one WAL append serves
many messages. A QoS 1 PUBACK or QoS 2 PUBREC is sent only once its batch is durable per ``wal_mode``;
once durable, the batch's messages are routed to subscribers, so a subscriber never sees data the
database could lose. When the unwritten backlog grows past a bound, reading stops until it drains.

A QoS 2 resend is not written again, and its PUBREC waits until the first receipt's write is durable:
that write may still be under way for a connection that was dropped or taken over. Acknowledgements of
later batches wait behind it, so a connection's acknowledgements keep the order of its publishes.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from iotdb_core.config import Settings
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import ServiceCounters
from iotdb_core.storage.errors import ReadOnlyError, StorageFullError
from iotdb_mqtt.acl import TopicAcl
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
    Subscription,
    UnsubAck,
    Unsubscribe,
    UnsupportedProtocolVersion,
    encode,
    encode_unsupported_version_connack,
)
from iotdb_mqtt.codec.packets import Packet, Will
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.delivery import ApplicationMessage
from iotdb_mqtt.ingest import InboundPublish, IngestedBatch, PublishOutcome
from iotdb_mqtt.router import NEVER_EXPIRES, Router, SubscriberSession
from iotdb_mqtt.sessions import FirstWrite, SessionState, SessionStore

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
#: Publish topics whose ACL answer one connection remembers; beyond it the memo starts again.
_ACL_MEMO_SIZE = 1024
#: SUBACK code of a refused subscription for MQTT 3.1.1 (and 3.1, which has none: the same byte is sent).
_SUBACK_FAILURE_V3 = 0x80


class Host(Protocol):
    """What a session needs from the server it belongs to."""

    settings: Settings
    counters: ServiceCounters
    router: Router
    acl: TopicAcl
    sessions: SessionStore

    @property
    def stopping(self) -> bool: ...

    def has_room_for(self, client_id: str) -> bool: ...

    def take_over(self, session: ServerSession, *, clean_start: bool) -> None: ...

    def delay_will(self, context: FormatContext, will: Will, delay: float) -> None: ...

    def should_ingest(self, topic: str) -> bool: ...

    def closed(self, session: ServerSession) -> None: ...

    def batch_done(self, session: ServerSession) -> None: ...


class Output(Protocol):
    """The actions a session asks of its connection; results come back as events on the session."""

    def send(self, data: bytes) -> None: ...

    def close(self, *, abort: bool = False) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def authenticate(self, username: str | None, password: bytes | None) -> None:
        """Check the credentials (or the client certificate's identity); answer with
        :meth:`ServerSession.authenticated`."""

    def submit(self, batch: Batch) -> None:
        """Format and log ``batch``; answer with :meth:`ServerSession.batch_logged`."""

    def await_durable(self, batch: Batch, ingested: IngestedBatch) -> None:
        """Wait until ``ingested`` is durable; answer with :meth:`ServerSession.batch_durable`."""

    def report_counters(self) -> None:
        """Add what the connection counted locally (bytes sent) to the shared counters."""

    def sync_sessions(self, done: Callable[[], None]) -> None:
        """Make the session log durable (:meth:`Router.sync`) off the event loop, then call ``done`` on it."""


@dataclass(slots=True)
class _Durable:
    """A durable batch waiting to be acknowledged; ``synced`` once the session log holds its routed copies."""

    batch: Batch
    outcomes: list[PublishOutcome]
    synced: bool = True


@dataclass(slots=True)
class Batch:
    """Publishes written together, with the first-write records of their QoS 2 messages."""

    publishes: list[InboundPublish]
    first_writes: dict[int, FirstWrite] = field(default_factory=dict)
    """By index in ``publishes``, each QoS 2 message's entry of ``SessionState.qos2_pending``: this batch
    settles it for a first receipt (``write`` is True); a resend's acknowledgement waits for it."""


class ServerSession:
    """The server side of one client connection (see the module docstring)."""

    def __init__(self, host: Host, output: Output, peer: str = "?", now: float = 0.0) -> None:
        self.host = host
        self.output = output
        self.peer = peer
        self.reader = PacketReader(None, host.settings.mqtt_max_message_size)
        self.level = 4
        self.client_id = ""
        self.username: str | None = None
        self.context = FormatContext(client_id="")
        self.session = SessionState()
        self.subscriber: SubscriberSession | None = None
        self.connected = False
        self.closed = False
        self.authenticating = False
        self._early: list[Packet] = []
        self._will: Will | None = None
        self.keep_alive = 0
        self.opened_at = now
        self.last_activity = now
        self._connect_expiry = 0
        #: A DISCONNECT arrived: the connection closes once the publishes before it are acknowledged.
        self._disconnecting = False
        self._connect: Connect | None = None
        self._assigned: str | None = None
        self._aliases: dict[int, str] = {}
        self._pending: list[InboundPublish] = []
        self._pending_bytes = 0
        self._pending_first_writes: dict[int, FirstWrite] = {}
        self._writing = False
        self._durability_waits = 0
        #: Durable batches not acknowledged yet: the first holds a resend whose first write is unfinished.
        self._durable_batches: deque[_Durable] = deque()
        self._awaited: FirstWrite | None = None
        self._paused = False
        #: In flight for Receive Maximum: QoS 1 publishes without PUBACK, QoS 2 ids without PUBCOMP (or a
        #: failure PUBREC), both received on this connection.
        self._unacked = 0
        self._unreleased: set[int] = set()
        #: MQTT 5 Request Problem Information: when 0, no reason strings on PUBACK, PUBREC or SUBACK [MQTT-3.1.2-29].
        self._problem_information = True
        #: Reason Strings on failure PUBACK / PUBREC: only when configured (``mqtt_ack_reason_strings``), as
        #: clients that expect an acknowledgement of at most four bytes, as Mosquitto sends, reject longer ones.
        self._ack_reason_strings = False
        self.messages_in = 0
        #: The topic ACL's answers for this client's publish topics, valid while ``acl.generation`` is unchanged.
        self._publish_allowed: dict[str, bool] = {}
        self._acl_generation = -1

    # ------------------------------------------------------------------ events

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived from the client."""
        self.last_activity = now
        self.host.counters.add("mqtt_bytes_received", len(data))
        try:
            packets = self.reader.feed(data)
        except MQTTProtocolError as exc:
            self._handle(exc.packets)
            self._protocol_error(exc)
            return
        if packets:
            self._handle(packets)

    def connection_lost(self) -> None:
        """The transport closed (by the peer, or after a close this session asked for)."""
        if self.closed:
            # A refused CONNECT or a close before CONNECT does not go through _close_session: without this
            # the socket would stay counted and, beyond the connection limit, lock every new client out.
            self.host.closed(self)
            return
        self.closed = True
        self._close_session(abnormal=True)

    def writable(self, writable: bool) -> None:
        """The transport's write buffer filled (False) or drained (True)."""
        if self.subscriber is not None and not self.closed:
            self.subscriber.queue.set_writable(writable)

    def check_timeouts(self, now: float, connect_timeout: float) -> None:
        """Close for a missing CONNECT, an expired keep alive or a packet left incomplete."""
        if self.closed:
            return
        if not self.connected:
            # The time-out is for sending CONNECT: one that arrived in time is answered, however long
            # its password check waits behind others.
            if not self.authenticating and now - self.opened_at > connect_timeout:
                self.close_for(ReasonCode.MAXIMUM_CONNECT_TIME, "no CONNECT in time")
            return
        silent = now - self.last_activity
        if self.keep_alive and silent > 1.5 * self.keep_alive:
            self.close_for(ReasonCode.KEEP_ALIVE_TIMEOUT,
                           f"nothing received for 1.5 x keep alive ({self.keep_alive} s)")
        elif self.reader.buffered and silent > connect_timeout:
            self.close_for(ReasonCode.MALFORMED_PACKET, "a packet was left incomplete")

    # ------------------------------------------------------------------ packets

    def _handle(self, packets: list[Packet]) -> None:
        before = self.messages_in
        for packet in packets:
            if self.closed or self._disconnecting:
                break
            if not self.connected:
                if self.authenticating:
                    self._early.append(packet)
                elif isinstance(packet, Connect):
                    self._on_connect(packet)
                continue
            self._dispatch(packet)
        if self.messages_in != before:
            self.host.counters.add("mqtt_publishes_received", self.messages_in - before)
        if self._pending and not self._writing:
            self._submit()

    def _dispatch(self, packet: Packet) -> None:
        """Hand one packet of a connected client to its rule (PUBLISH first: it is by far the most common)."""
        match packet:
            case Publish():
                self._on_publish(packet)
            case PubAck():
                self._on_puback(packet)
            case PubRel():
                self._on_pubrel(packet)
            case PubRec():
                self._on_pubrec(packet)
            case PubComp():
                self._on_pubcomp(packet)
            case PingReq():
                self.output.send(_PINGRESP)
            case Subscribe():
                self._on_subscribe(packet)
            case Unsubscribe():
                self._on_unsubscribe(packet)
            case Disconnect():
                self._on_disconnect(packet)
            case Auth():
                self._violation(ReasonCode.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
            case _:
                self._violation(ReasonCode.PROTOCOL_ERROR, f"a client must not send {type(packet).__name__}")

    def _on_connect(self, connect: Connect) -> None:
        self.level = connect.protocol_level
        host = self.host
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
        if not host.has_room_for(client_id):
            self._refuse(ReasonCode.QUOTA_EXCEEDED, "the server has reached mqtt_max_connections")
            return
        self.client_id = client_id
        self.username = connect.username
        self.authenticating = True
        self._connect = connect
        self._assigned = assigned
        self.output.authenticate(connect.username, connect.password)

    def authenticated(self, ok: bool, identity: str | None = None) -> None:
        """The password check of the CONNECT finished; ``identity`` is the user name a client certificate gave,
        which replaces the CONNECT's (``mqtt_use_identity_as_username``)."""
        self.authenticating = False
        if identity is not None:
            self.username = identity
        if self.closed:
            return
        connect, assigned = self._connect, self._assigned
        assert connect is not None
        if not ok:
            reason = "user name or password missing" if connect.password is None else "bad user name or password"
            self._refuse(ReasonCode.BAD_USER_NAME_OR_PASSWORD, reason)
            return
        host = self.host
        host.take_over(self, clean_start=connect.clean_start)
        self.session, present = host.sessions.take(self.client_id, clean_start=connect.clean_start)
        if self.level == 5:
            self._connect_expiry = connect.properties.session_expiry_interval or 0
        else:
            self._connect_expiry = 0 if connect.clean_start else NEVER_EXPIRES
        self.session.expiry_interval = self._connect_expiry
        self.subscriber, routed_present = host.router.open_session(self.client_id, clean_start=connect.clean_start,
                                                                  expiry_interval=self._connect_expiry,
                                                                  user=connect.username)
        self.keep_alive = connect.keep_alive
        self._will = connect.will
        self._problem_information = connect.properties.request_problem_information != 0
        self._ack_reason_strings = self._problem_information and bool(host.settings.mqtt_ack_reason_strings)
        self.context = FormatContext(client_id=self.client_id, username=self.username, qos=0,
                                     protocol_level=self.level)
        self.connected = True
        properties = Properties()
        if self.level == 5:
            properties = Properties(
                maximum_packet_size=host.settings.mqtt_max_message_size,
                topic_alias_maximum=TOPIC_ALIAS_MAXIMUM,
                receive_maximum=RECEIVE_MAXIMUM,
                assigned_client_identifier=assigned,
            )
        session_present = (present or routed_present) and self.level > 3
        self.output.send(encode(ConnAck(session_present=session_present, reason_code=0,
                                        properties=properties), self.level))
        host.counters.add("mqtt_connections_total")
        self.subscriber.queue.attach(self._send, self.level, connect.properties.receive_maximum,
                                     connect.properties.maximum_packet_size)
        early, self._early = self._early, []
        if early:
            self._handle(early)

    def _on_publish(self, publish: Publish) -> None:
        self.messages_in += 1
        topic = publish.topic
        properties = publish.properties
        if self.level == 5 and properties.subscription_identifiers:
            self._violation(ReasonCode.PROTOCOL_ERROR, "a PUBLISH from a client must not carry a Subscription "
                            "Identifier [MQTT-3.3.4-6]")
            return
        alias = properties.topic_alias if self.level == 5 else None
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
        host = self.host
        refusal = 0
        if not self._may_publish(topic):
            refusal = ReasonCode.NOT_AUTHORIZED
            log.info("client %r (user %r) may not publish to %r: not routed, not written",
                     self.client_id, self.username, topic)
        self._pending.append(InboundPublish(topic, publish.payload, qos, packet_id, write, publish.retain,
                                            properties, host.should_ingest(topic), refusal))
        self._pending_bytes += len(publish.payload)
        if not self._paused and (len(self._pending) > BACKLOG_MESSAGES or self._pending_bytes > BACKLOG_BYTES):
            self._paused = True
            self.output.pause_reading()

    def _may_publish(self, topic: str) -> bool:
        """The topic ACL's answer for this client, remembered per topic until the rules change."""
        acl = self.host.acl
        if self._acl_generation != acl.generation:
            self._acl_generation = acl.generation
            self._publish_allowed.clear()
        allowed = self._publish_allowed.get(topic)
        if allowed is None:
            if len(self._publish_allowed) >= _ACL_MEMO_SIZE:
                self._publish_allowed.clear()
            allowed = self._publish_allowed[topic] = acl.may_publish(self.username, self.client_id, topic)
        return allowed

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

    def _qos2_receipt(self, packet_id: int) -> tuple[FirstWrite, bool]:
        """The first write of QoS 2 message ``packet_id``, and whether this receipt is the first.

        A resend (its id still awaits PUBREL in the session) is not written again.
        """
        pending = self.session.qos2_pending
        first_write = pending.get(packet_id)
        if first_write is not None:
            return first_write, False
        first_write = pending[packet_id] = FirstWrite()
        return first_write, True

    def _on_pubrel(self, pubrel: PubRel) -> None:
        self._unreleased.discard(pubrel.packet_id)
        if self.session.qos2_pending.pop(pubrel.packet_id, None) is not None:
            code = 0
        else:
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.level == 5 else 0
        self.output.send(encode(PubComp(pubrel.packet_id, code), self.level))

    def _on_puback(self, puback: PubAck) -> None:
        assert self.subscriber is not None
        self.subscriber.queue.on_puback(puback.packet_id)

    def _on_pubrec(self, pubrec: PubRec) -> None:
        assert self.subscriber is not None
        pubrel = self.subscriber.queue.on_pubrec(pubrec.packet_id, pubrec.reason_code)
        if pubrel is not None:
            self.output.send(pubrel)

    def _on_pubcomp(self, pubcomp: PubComp) -> None:
        assert self.subscriber is not None
        self.subscriber.queue.on_pubcomp(pubcomp.packet_id)

    def _on_subscribe(self, subscribe: Subscribe) -> None:
        subscriber = self.subscriber
        assert subscriber is not None
        router = self.host.router
        identifiers = subscribe.properties.subscription_identifiers
        identifier = identifiers[0] if identifiers else None
        codes: list[int] = []
        accepted: list[tuple[Subscription, bool]] = []
        refused: list[str] = []
        over_quota = 0
        for requested in subscribe.subscriptions:
            plain = _without_share(requested.topic_filter)
            if not self.host.acl.may_subscribe(self.username, self.client_id, plain):
                codes.append(ReasonCode.NOT_AUTHORIZED if self.level == 5 else _SUBACK_FAILURE_V3)
                refused.append(requested.topic_filter)
                continue
            if not router.has_room_for(subscriber, requested.topic_filter):
                codes.append(ReasonCode.QUOTA_EXCEEDED if self.level == 5 else _SUBACK_FAILURE_V3)
                over_quota += 1
                continue
            new = router.subscribe(subscriber, requested, identifier)
            codes.append(requested.qos)
            accepted.append((requested, new))
        router.sync()
        reason = None
        if refused:
            log.info("client %r (user %r) may not subscribe to %s", self.client_id, self.username,
                     ", ".join(repr(name) for name in refused))
            if self.level == 5 and self._problem_information:
                reason = "not authorized to subscribe to " + ", ".join(refused)
        if over_quota:
            what = (f"{over_quota} subscription(s) refused: the client holds "
                    f"{router.tree.count_of(self.client_id)} (mqtt_max_subscriptions_per_client) of "
                    f"{len(router.tree)} on the server (mqtt_max_subscriptions)")
            router.warn_once(self.client_id, f"MQTT client {self.client_id!r}: {what}")
            if self.level == 5 and self._problem_information and reason is None:
                reason = what
        self.output.send(encode(SubAck(subscribe.packet_id, tuple(codes),
                                       properties=Properties(reason_string=reason[:200] if reason else None)),
                                self.level))
        for requested, new in accepted:  # retained messages follow the SUBACK
            router.send_retained(subscriber, requested, identifier, new=new)

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        subscriber = self.subscriber
        assert subscriber is not None
        router = self.host.router
        codes = tuple(ReasonCode.SUCCESS if router.unsubscribe(subscriber, topic_filter)
                      else ReasonCode.NO_SUBSCRIPTION_EXISTED for topic_filter in unsubscribe.topic_filters)
        self.output.send(encode(UnsubAck(unsubscribe.packet_id, codes if self.level == 5 else ()), self.level))

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        if self.level == 5:
            expiry = disconnect.properties.session_expiry_interval
            if expiry is not None:
                if expiry and not self._connect_expiry:
                    # [MQTT-3.14.2-2]: a session that was to end with the connection cannot be extended now.
                    self._violation(ReasonCode.PROTOCOL_ERROR, "DISCONNECT sets a Session Expiry Interval "
                                    "after CONNECT had none")
                    return
                self.session.expiry_interval = expiry
            if disconnect.reason_code != ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
                self._will = None
        else:
            self._will = None
        # Nothing after DISCONNECT is read; what came before it is written, routed and acknowledged first, so
        # a client that publishes and disconnects at once still gets its copies and acknowledgements.
        self._disconnecting = True
        self.output.pause_reading()
        if self._pending and not self._writing:
            self._submit()
        self._close_if_disconnected()

    def _close_if_disconnected(self) -> None:
        """Close after a DISCONNECT once the publishes received before it are done with."""
        if not self._disconnecting or self.closed or self.has_work():
            return
        self.closed = True
        # A will still set here was asked for (MQTT 5 reason 0x04, Disconnect with Will Message): it is
        # published as after an abnormal close.
        self._close_session(abnormal=self._will is not None)
        self.output.close()

    # ------------------------------------------------------------------ writing and acknowledging

    def _submit(self) -> None:
        batch = Batch(self._pending, self._pending_first_writes)
        self._pending, self._pending_bytes, self._pending_first_writes = [], 0, {}
        self._writing = True
        self.output.submit(batch)

    def batch_logged(self, batch: Batch, ingested: IngestedBatch | None, error: BaseException | None) -> None:
        """The batch is logged (or failed): wait for its durability, and start the next batch."""
        self._writing = False
        if error is not None or ingested is None:
            self._write_failed(batch, error or RuntimeError("the write was cancelled"))
            return
        self._durability_waits += 1
        self.output.await_durable(batch, ingested)
        if self._pending:
            self._submit()
        elif self._paused and not self.closed and not self.host.stopping:
            # Not once the server is stopping: a publisher that keeps sending would keep shutdown waiting.
            self._paused = False
            self.output.resume_reading()

    def batch_durable(self, batch: Batch, outcomes: list[PublishOutcome] | None,
                      error: BaseException | None) -> None:
        """The batch is durable (batches of one connection become durable in order): route and acknowledge it."""
        self._durability_waits -= 1
        if error is not None or outcomes is None:
            self._write_failed(batch, error or RuntimeError("the write was cancelled"))
            return
        for index, first_write in batch.first_writes.items():
            if batch.publishes[index].write:
                first_write.settle(outcomes[index])
        router = self.host.router
        route_all(router, batch.publishes, self.client_id)
        if not self.closed:
            durable = _Durable(batch, outcomes)
            self._durable_batches.append(durable)
            if router.needs_sync:
                # What was queued for persistent sessions is made durable (off the event loop) before the
                # publisher hears back.
                durable.synced = False
                self.output.sync_sessions(lambda: self._synced(durable))
            self._acknowledge_durable()
            self._close_if_disconnected()
        elif router.needs_sync:
            self.output.sync_sessions(lambda: None)
        self.host.batch_done(self)

    def _write_failed(self, batch: Batch, error: BaseException) -> None:
        # Nothing of the batch is acknowledged: QoS 1 and 2 publishers resend it after reconnecting,
        # so the QoS 2 ids must not be taken for already stored — nor resends waiting for this write.
        log.error("write for client %r failed, its publishes stay unacknowledged: %s", self.client_id, error)
        pending = self.session.qos2_pending
        for index, first_write in batch.first_writes.items():
            publish = batch.publishes[index]
            if publish.write:
                first_write.settle(None)
                if pending.get(publish.packet_id) is first_write:  # type: ignore[arg-type]
                    del pending[publish.packet_id]  # type: ignore[arg-type]
        self._violation(_write_failure_code(error), f"write failed: {error}")
        if self._pending and not self._writing:
            self._submit()  # what arrived later (a will, QoS 0 data) still gets its chance
        self.host.batch_done(self)

    def _synced(self, durable: _Durable) -> None:
        durable.synced = True
        self._acknowledge_durable()
        self._close_if_disconnected()
        self.host.batch_done(self)

    def _acknowledge_durable(self) -> None:
        """Acknowledge the durable batches in order, stopping at one not synced yet or whose resend waits for its
        first write."""
        queue = self._durable_batches
        while queue:
            head = queue[0]
            if not head.synced:
                return
            if head.batch.first_writes and not self._settle_resends(head.batch, head.outcomes):
                return
            queue.popleft()
            self._acknowledge(head.batch.publishes, head.outcomes)

    def _settle_resends(self, batch: Batch, outcomes: list[PublishOutcome]) -> bool:
        """Give each resend in ``batch`` the outcome of its first write; False while one of them is unfinished.

        If one of those writes failed, the resend was not stored either: the connection is closed without
        acknowledging it, and the client's next resend is written (the failure forgot the id).
        """
        for index, first_write in batch.first_writes.items():
            publish = batch.publishes[index]
            if publish.write:
                continue
            if not first_write.done:
                if first_write is not self._awaited:
                    self._awaited = first_write
                    first_write.when_settled(self._first_write_done)
                return False
            outcome = first_write.outcome
            if outcome is None:
                self._violation(ReasonCode.SERVER_BUSY,
                                f"the first write of resent QoS 2 message {publish.packet_id} failed")
                return False
            outcomes[index] = outcome
        return True

    def _first_write_done(self, first_write: FirstWrite) -> None:
        if self._awaited is first_write:
            self._awaited = None
        self._acknowledge_durable()
        self._close_if_disconnected()
        self.host.batch_done(self)

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
                properties = Properties(reason_string=outcome.reason if self._ack_reason_strings else None)
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
            self.output.send(b"".join(acks))

    def has_work(self) -> bool:
        """True while publishes of this connection are queued, being written, awaiting durability or
        awaiting the first write of a QoS 2 resend."""
        return self._writing or bool(self._pending) or self._durability_waits > 0 or bool(self._durable_batches)

    # ------------------------------------------------------------------ closing

    def _send(self, data: bytes) -> None:
        if not self.closed:
            self.output.send(data)

    def _refuse(self, code: ReasonCode, reason: str) -> None:
        """Answer CONNECT with a failure and close."""
        self.host.counters.add("mqtt_connections_refused")
        log.info("refused MQTT connection from %s (client %r): %s", self.peer, self.client_id, reason)
        if self.level == 5:
            self.output.send(encode(ConnAck(reason_code=code, properties=Properties(reason_string=reason)), 5))
        else:
            self.output.send(encode(ConnAck(reason_code=_CONNACK_CODES_V3.get(code, 3)), self.level))
        self._will = None
        self.closed = True
        self.output.close()

    def _protocol_error(self, exc: MQTTProtocolError) -> None:
        if self.closed:
            return
        if isinstance(exc, UnsupportedProtocolVersion) and not self.connected:
            self.host.counters.add("mqtt_connections_refused")
            self.output.send(encode_unsupported_version_connack())
            self.closed = True
            self.output.close()
            return
        self._violation(exc.reason_code, str(exc))

    def _violation(self, code: int, reason: str) -> None:
        """Close after a protocol violation; MQTT 5 clients are told why in a DISCONNECT."""
        if self.closed:
            return
        log.info("closing MQTT connection from %s (client %r): %s", self.peer, self.client_id, reason)
        if self.connected and self.level == 5:
            self.output.send(encode(Disconnect(code, Properties(reason_string=reason[:200])), 5))
        self.closed = True
        self._close_session(abnormal=True)
        self.output.close()

    def close_for(self, code: int, reason: str) -> None:
        """Close on the server's initiative (takeover, keep-alive timeout, shutdown, a revoked user)."""
        if self.closed:
            return
        if not self.connected:
            self.closed = True
            self.output.close(abort=True)
            return
        self._violation(code, reason)

    def _close_session(self, *, abnormal: bool) -> None:
        if self.connected:
            if abnormal and self._will is not None:
                self._publish_will(self._will)
            self._will = None
            self._durable_batches.clear()  # nothing more is acknowledged
            self.host.sessions.keep(self.client_id, self.session)
            if self.subscriber is not None:
                self.host.router.close_session(self.subscriber, self.session.expiry_interval)
        if self._pending and not self._writing:
            self._submit()
        self.host.closed(self)

    def _publish_will(self, will: Will) -> None:
        """Write and route the will now, or — MQTT 5 — once its Will Delay Interval or the session ends,
        whichever is first.

        A delayed will is left to the server, which drops it if the client id connects again before it is
        due [MQTT-3.1.2-8].
        """
        delay = min(will.properties.will_delay_interval or 0, self.session.expiry_interval)
        if delay:
            self.host.delay_will(self.context, will, delay)
        else:
            self._pending.append(will_publish(self.host, self.username, self.client_id, will))


def _write_failure_code(error: BaseException) -> int:
    """The DISCONNECT reason for a failed write: 0x97 Quota exceeded for a full disk, 0x80 for a read-only
    engine, 0x89 Server busy otherwise (the publisher resends once reconnected)."""
    if isinstance(error, StorageFullError):
        return ReasonCode.QUOTA_EXCEEDED
    if isinstance(error, ReadOnlyError):
        return ReasonCode.UNSPECIFIED_ERROR
    return ReasonCode.SERVER_BUSY


def will_publish(host: Host, username: str | None, client_id: str, will: Will) -> InboundPublish:
    """The will as a publish to write and route (refused like any publish where the ACL says so)."""
    refusal = 0 if host.acl.may_publish(username, client_id, will.topic) else ReasonCode.NOT_AUTHORIZED
    return InboundPublish(will.topic, will.payload, will.qos, None, True, will.retain, will.properties,
                          host.should_ingest(will.topic), refusal)


def route_all(router: Router, publishes: list[InboundPublish], publisher_id: str) -> None:
    """Route each first receipt of a durable batch that the ACL allowed, in order.

    A payload the formatter or the engine rejected is routed too: it is durable in the dead-letter log, and
    a broker does not judge payloads — only the database does.
    """
    if not len(router.tree):
        return
    for publish in publishes:
        if publish.write and not publish.refusal:
            router.route(ApplicationMessage.received(publish.topic, publish.payload, publish.qos, publish.retain,
                                                     publish.properties, publisher_id, rows=publish.rows))


def _without_share(topic_filter: str) -> str:
    """The filter of a shared subscription (``$share/group/filter``), or ``topic_filter`` itself."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter
