"""Routing published messages to subscriber sessions, without I/O.

The router owns the broker's shared state: the subscription tree, the subscriber sessions by client id
(each an :class:`~iotdb_mqtt.delivery.OutboundQueue` that outlives its connection when the client asked
for a persistent session), and the retained messages. Connections call it from the event loop; the
retained store is also written from the ingest threads, so access to it is locked.

A persistent session (MQTT 3.1.x clean session 0, MQTT 5 Session Expiry Interval > 0) is also kept in the
durable :class:`~iotdb_mqtt.broker.session_log.SessionLog`: its subscriptions and every QoS 1 and 2 message
routed to it until the client acknowledges it. :meth:`Router.sync` makes what was logged durable; the
session calls it before acknowledging the publishes it routed (and before a SUBACK), so after a crash the
server still holds every message it acknowledged to a publisher for a persistent subscriber.

A message is routed once, after it is durable (or, for a topic that is not ingested, after the
publisher's earlier messages were): each matching client gets one copy, at the highest QoS of its
matching subscriptions capped at the publish QoS, carrying every matching Subscription Identifier.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from iotdb_core.metrics import ServiceCounters
from iotdb_mqtt.broker.retained import RetainedMessage, RetainedStore, RetainedStoreFull
from iotdb_mqtt.broker.session_log import QueuedMessage, SessionLog, StoredSession
from iotdb_mqtt.broker.tree import Subscription, SubscriptionOptions, SubscriptionTree
from iotdb_mqtt.codec import Subscription as RequestedSubscription
from iotdb_mqtt.codec.properties import EMPTY_PROPERTIES, Properties
from iotdb_mqtt.codec.topics import is_shared_filter, topic_matches_filter
from iotdb_mqtt.delivery import ApplicationMessage, OutboundQueue, Outgoing, QueueLimits
from iotdb_mqtt.ingest import RateLimitedLog

log = logging.getLogger("iotdb.mqtt.router")

#: MQTT 5's "never expires" session expiry interval.
NEVER_EXPIRES = 0xFFFFFFFF
_FORWARDED = ("payload_format_indicator", "content_type", "response_topic", "correlation_data", "user_properties")


@dataclass(slots=True)
class SubscriberSession:
    """The broker side of one client id's session: its sender queue and how long it outlives a connection."""

    client_id: str
    queue: OutboundQueue
    expiry_interval: int = 0
    disconnected_at: float | None = None
    """``time.monotonic()`` when its connection closed; ``None`` while connected."""
    next_message_id: int = 1
    """The id the session log gets for the next message queued to this session."""
    user: str | None = ""
    """The user of the connection that opened it (None: anonymous); ``""`` (no user: receives nothing that
    needs READ_DATA) for a session restored from a log that did not record its user."""

    @property
    def persistent(self) -> bool:
        """True when the session outlives its connection, hence is kept in the durable session log."""
        return self.expiry_interval > 0

    def expired(self, now: float) -> bool:
        if self.disconnected_at is None or self.expiry_interval == NEVER_EXPIRES:
            return False
        return now - self.disconnected_at >= self.expiry_interval


class Router:
    """Subscriptions, sessions and retained messages of the broker (see the module docstring)."""

    def __init__(self, limits: QueueLimits, counters: ServiceCounters, retained: RetainedStore | None = None,
                 max_sessions: int = 100_000, session_log: SessionLog | None = None, *,
                 max_subscriptions: int = 1_000_000, max_subscriptions_per_client: int = 100_000) -> None:
        self.limits = limits
        self.counters = counters
        self.tree = SubscriptionTree()
        self._sessions: dict[str, SubscriberSession] = {}
        self._retained = retained
        self._retained_lock = threading.Lock()
        #: Retained ``$SYS`` messages: kept in memory, republished by the server; not in the durable store.
        self._sys_retained: dict[str, ApplicationMessage] = {}
        #: The retained count last added to the ``mqtt_retained_current`` gauge.
        self._retained_reported = len(retained) if retained is not None else 0
        counters.add("mqtt_retained_current", self._retained_reported)
        self._max_sessions = max_sessions
        self._max_subscriptions = max_subscriptions
        self._max_subscriptions_per_client = max_subscriptions_per_client
        self._drops = RateLimitedLog()
        self._log = session_log
        self._unsynced = False
        #: Whether a subscriber's user may receive a message (READ_DATA on the series it feeds; see
        #: :mod:`iotdb_mqtt.reads`); None: every subscription receives what it matches. Anonymous subscribers
        #: are not asked.
        self.may_receive: Callable[[str, ApplicationMessage], bool] | None = None
        #: Watchers of the routed messages (the console's live topic view), by their tree client id.
        self._taps: dict[str, Callable[[ApplicationMessage], None]] = {}
        self._next_tap = 1
        if session_log is not None:
            for stored in session_log.sessions().values():
                self._restore(stored)

    # ------------------------------------------------------------------ sessions

    def open_session(self, client_id: str, *, clean_start: bool, expiry_interval: int = 0,
                     user: str | None = None) -> tuple[SubscriberSession, bool]:
        """The session a new connection of ``client_id`` (as ``user``, None: anonymous) continues, and whether
        one existed.

        A clean start ends any earlier session and its subscriptions [MQTT-3.1.2-4]. ``expiry_interval`` is
        the CONNECT's: with 0 the session ends with the connection, so it leaves the durable log now.
        """
        session = self._sessions.get(client_id)
        present = session is not None and not clean_start and not session.expired(time.monotonic())
        if session is not None and not present:
            self.end_session(client_id)
            session = None
        if session is None:
            if len(self._sessions) >= self._max_sessions:
                self._end_oldest_offline()
            session = self._sessions[client_id] = SubscriberSession(client_id, self._queue_for(client_id))
        session.disconnected_at = None
        session.user = user
        was_persistent = session.persistent
        session.expiry_interval = expiry_interval
        if self._log is not None:
            if session.persistent:
                self._log.begin(client_id, expiry_interval, user)
                if not was_persistent:
                    for subscription in self.tree.subscriptions_of(client_id):
                        self._log.subscribe(subscription)
                self._unsynced = True
            elif was_persistent:
                self._log.end(client_id)
                self._unsynced = True
        return session, present

    def _queue_for(self, client_id: str) -> OutboundQueue:
        return OutboundQueue(client_id, self.limits, self._dropped, on_finished=self._finished,
                             on_released=self._released)

    def _finished(self, client_id: str, outgoing: Outgoing) -> None:
        """A logged message left its session (acknowledged or dropped): it leaves the log too."""
        if self._log is not None and client_id in self._log:
            self._log.acknowledged(client_id, outgoing.message_id)

    def _released(self, client_id: str, outgoing: Outgoing) -> None:
        if self._log is not None and client_id in self._log:
            self._log.released(client_id, outgoing.message_id, outgoing.packet_id)
            self._unsynced = True

    def _restore(self, stored: StoredSession) -> None:
        """Rebuild a session recovered from the durable log: disconnected, its subscriptions, its messages.

        A QoS 2 message whose PUBREC had come back before the restart waits for its PUBCOMP: PUBREL is resent
        with the logged packet id when the client reconnects (a log written before packet ids were logged
        has none: such a message is taken as delivered, as the client has it). The session keeps the user
        of its last connection, so what it may receive is decided as before the restart.
        """
        queue = self._queue_for(stored.client_id)
        session = SubscriberSession(stored.client_id, queue, stored.expiry_interval, user=stored.user)
        away = time.time() - (stored.disconnected_at or time.time())
        session.disconnected_at = time.monotonic() - max(0.0, away)
        for subscription in stored.subscriptions:
            if self.tree.subscribe(subscription):
                self.counters.add("mqtt_subscriptions_current")
        for queued in stored.messages:
            session.next_message_id = max(session.next_message_id, queued.message_id + 1)
            if queued.message_id in stored.released:
                packet_id = stored.released_packet_ids.get(queued.message_id)
                if packet_id:
                    queue.restore_released(Outgoing(_message_from(queued.topic, queued.payload, queued.qos,
                                                                  queued.retain, queued.properties,
                                                                  queued.queued_at),
                                                    queued.qos, queued.retain, message_id=queued.message_id,
                                                    packet_id=packet_id))
                    continue
                assert self._log is not None
                self._log.acknowledged(stored.client_id, queued.message_id)
                continue
            message = _message_from(queued.topic, queued.payload, queued.qos, queued.retain, queued.properties,
                                    queued.queued_at)
            identifiers = queued.properties.get("subscription_identifiers")
            ids = tuple(int(i) for i in identifiers) if isinstance(identifiers, list) else ()
            queue.restore(Outgoing(message, queued.qos, queued.retain, ids, message_id=queued.message_id))
        self._sessions[stored.client_id] = session

    @property
    def needs_sync(self) -> bool:
        """True when something was logged for persistent sessions since the last :meth:`sync`."""
        return self._unsynced

    def sync(self) -> None:
        """Make everything logged for persistent sessions durable (one fsync), if anything was."""
        if self._unsynced and self._log is not None:
            self._unsynced = False
            self._log.durable()

    def close_session(self, session: SubscriberSession, expiry_interval: int) -> None:
        """The connection of ``session`` closed: keep the session for ``expiry_interval`` seconds, or end it."""
        if self._sessions.get(session.client_id) is not session:
            return  # taken over by a newer connection already
        session.queue.detach()
        was_persistent = session.persistent
        session.expiry_interval = expiry_interval
        if expiry_interval == 0:
            self.end_session(session.client_id)
            return
        session.disconnected_at = time.monotonic()
        if self._log is not None and was_persistent:
            self._log.set_expiry(session.client_id, expiry_interval)
            self._log.disconnected(session.client_id, time.time())
            self._unsynced = True

    def end_session(self, client_id: str) -> None:
        """Forget a session: its subscriptions and its queued messages."""
        session = self._sessions.pop(client_id, None)
        if session is None:
            return
        session.queue.detach()
        removed = self.tree.remove_client(client_id)
        if removed:
            self.counters.add("mqtt_subscriptions_current", -removed)
        if self._log is not None and client_id in self._log:
            self._log.end(client_id)
            self._unsynced = True

    def expire_sessions(self) -> int:
        """End the disconnected sessions whose expiry interval passed; returns how many."""
        now = time.monotonic()
        expired = [client_id for client_id, session in self._sessions.items() if session.expired(now)]
        for client_id in expired:
            self.end_session(client_id)
        return len(expired)

    def _end_oldest_offline(self) -> None:
        for client_id, session in self._sessions.items():
            if not session.queue.online:
                log.warning("more than %d MQTT sessions: ending the oldest stored one, of client %r",
                            self._max_sessions, client_id)
                self.end_session(client_id)
                return

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def warn_once(self, key: str, message: str) -> None:
        """Log a warning about a client, at most one per ``key`` every 10 seconds (a flood logs one line)."""
        self._drops.warning(f"warn\0{key}", message)

    def _dropped(self, client_id: str, what: str) -> None:
        self.counters.add("mqtt_messages_dropped")
        self._drops.warning(client_id, f"MQTT client {client_id!r}: {what}")

    # ------------------------------------------------------------------ subscriptions

    def has_room_for(self, session: SubscriberSession, topic_filter: str) -> bool:
        """False when a new subscription of ``session`` to ``topic_filter`` would pass ``mqtt_max_subscriptions``
        or ``mqtt_max_subscriptions_per_client`` (replacing one of its subscriptions always fits)."""
        tree = self.tree
        if tree.has(session.client_id, topic_filter):
            return True
        return len(tree) < self._max_subscriptions and \
            tree.count_of(session.client_id) < self._max_subscriptions_per_client

    def subscribe(self, session: SubscriberSession, requested: RequestedSubscription,
                  identifier: int | None) -> bool:
        """Add or replace a subscription of ``session``; True if it is new (for Retain Handling 1)."""
        options = SubscriptionOptions(requested.qos, requested.no_local, requested.retain_as_published,
                                      requested.retain_handling)
        subscription = Subscription(session.client_id, requested.topic_filter, options, identifier)
        new = self.tree.subscribe(subscription)
        if new:
            self.counters.add("mqtt_subscriptions_current")
        if self._log is not None and session.persistent:
            self._log.subscribe(subscription)
            self._unsynced = True
        return new

    def unsubscribe(self, session: SubscriberSession, topic_filter: str) -> bool:
        """Remove a subscription; False if ``session`` had none with that filter."""
        removed = self.tree.unsubscribe(session.client_id, topic_filter)
        if removed:
            self.counters.add("mqtt_subscriptions_current", -1)
            if self._log is not None and session.persistent:
                self._log.unsubscribe(session.client_id, topic_filter)
                self._unsynced = True
        return removed

    def send_retained(self, session: SubscriberSession, requested: RequestedSubscription,
                      identifier: int | None, *, new: bool) -> int:
        """Send the retained messages matching a subscription just made, as its Retain Handling asks.

        Not for shared subscriptions [MQTT-4.8.2-6]. Sent with RETAIN set [MQTT-3.3.1-8].
        """
        handling = requested.retain_handling
        if handling == 2 or (handling == 1 and not new) or is_shared_filter(requested.topic_filter):
            return 0
        identifiers = () if identifier is None else (identifier,)
        sent = 0
        for message in self.retained_matching(requested.topic_filter):
            if requested.no_local and message.publisher_id == session.client_id:
                continue
            if not self._may_receive(session, message):
                continue
            if self._offer(session, message, min(message.qos, requested.qos), True, identifiers):
                sent += 1
        if sent:
            self.counters.add("mqtt_messages_sent", sent)
        return sent

    # ------------------------------------------------------------------ routing

    def route(self, message: ApplicationMessage) -> int:
        """Hand a published ``message`` to every matching session; returns the number of copies."""
        self.counters.add("mqtt_messages_routed")
        return self._deliver(message)

    def _deliver(self, message: ApplicationMessage) -> int:
        sessions = self._sessions
        deliveries = self.tree.match(message.topic, message.publisher_id, self._is_online)
        copies = 0
        for delivery in deliveries:
            session = sessions.get(delivery.client_id)
            if session is None:
                tap = self._taps.get(delivery.client_id)
                if tap is not None:
                    tap(message)
                continue
            if not self._may_receive(session, message):
                continue
            qos = delivery.qos if delivery.qos < message.qos else message.qos
            retain = message.retain and delivery.retain_as_published
            if self._offer(session, message, qos, retain, tuple(delivery.identifiers)):
                copies += 1
        if copies:
            self.counters.add("mqtt_messages_sent", copies)
        return copies

    def _may_receive(self, session: SubscriberSession, message: ApplicationMessage) -> bool:
        check = self.may_receive
        return check is None or session.user is None or check(session.user, message)

    def _offer(self, session: SubscriberSession, message: ApplicationMessage, qos: int, retain: bool,
               identifiers: tuple[int, ...]) -> bool:
        """Queue one copy for ``session``, logging it first when the session is persistent and QoS > 0."""
        if not qos or not session.persistent or self._log is None:
            return session.queue.offer(message, qos, retain, identifiers)
        message_id = session.next_message_id
        session.next_message_id += 1
        properties = _properties_dict(message, time.time())
        if identifiers:
            properties["subscription_identifiers"] = list(identifiers)
        queued = QueuedMessage(message_id, message.topic, message.payload, qos, retain, properties, time.time())
        if not self._log.enqueue(session.client_id, queued):
            self._dropped(session.client_id, f"message on {message.topic!r} (QoS {qos}) dropped: the stored "
                          "session's queue is full")
            return False
        self._unsynced = True
        return session.queue.offer(message, qos, retain, identifiers, message_id)

    def _is_online(self, client_id: str) -> bool:
        session = self._sessions.get(client_id)
        return session is not None and session.queue.online

    # ------------------------------------------------------------------ taps

    def add_tap(self, topic_filter: str, receive: Callable[[ApplicationMessage], None]) -> str:
        """Call ``receive`` (on the event loop) with every message routed to a topic matching ``topic_filter``.

        A tap is a subscription in the tree under a client id no MQTT client can have (it starts with U+0000),
        so it costs routing nothing more than a subscriber does, and nothing at all while there is none. It
        sees messages as published (QoS and retain flag) and is not counted as a delivery. Returns the tap's id
        for :meth:`remove_tap`. Raises ``ValueError`` for an invalid filter.
        """
        tap_id = f"\0tap/{self._next_tap}"
        self._next_tap += 1
        self.tree.subscribe(Subscription(tap_id, topic_filter, SubscriptionOptions(2, retain_as_published=True)))
        self._taps[tap_id] = receive
        return tap_id

    def remove_tap(self, tap_id: str) -> None:
        """Stop a tap (nothing happens for an unknown id)."""
        if self._taps.pop(tap_id, None) is not None:
            self.tree.remove_client(tap_id)

    # ------------------------------------------------------------------ retained messages

    def store_retained(self, message: ApplicationMessage) -> str | None:
        """Keep ``message`` as its topic's retained message (an empty payload deletes it).

        Thread-safe and durable before it returns. Returns why it was not kept, or ``None``.
        """
        if self._retained is None:
            return "retained messages are not kept by this server"
        now = time.time()
        record = RetainedMessage(message.topic, message.payload, message.qos, _properties_dict(message, now), now)
        try:
            with self._retained_lock:
                self._retained.put(record)
                count = len(self._retained)
                self.counters.add("mqtt_retained_current", count - self._retained_reported)
                self._retained_reported = count
        except RetainedStoreFull as exc:
            self._drops.warning(f"retained\0{message.topic}", f"retained message on {message.topic!r} not kept: {exc}")
            return str(exc)
        return None

    def retained_matching(self, topic_filter: str) -> list[ApplicationMessage]:
        """Retained messages, durable and ``$SYS``, whose topics match ``topic_filter``."""
        found: list[ApplicationMessage] = []
        if self._retained is not None:
            with self._retained_lock:
                stored = self._retained.matching(topic_filter)
            found.extend(_message_of(record) for record in stored)
        if topic_filter.startswith("$SYS") and self._sys_retained:
            found.extend(message for topic, message in self._sys_retained.items()
                         if topic_matches_filter(topic, topic_filter))
        return found

    def publish_sys(self, values: Iterable[tuple[str, str]]) -> None:
        """Publish ``$SYS`` topics (retained, QoS 0) with the given text values (not counted as routed)."""
        for topic, text in values:
            message = ApplicationMessage(topic, text.encode("utf-8"), 0, True)
            self._sys_retained[topic] = message
            if len(self.tree):
                self._deliver(message)

    @property
    def retained_count(self) -> int:
        if self._retained is None:
            return 0
        with self._retained_lock:
            return len(self._retained)

    def close(self) -> None:
        self.sync()
        if self._log is not None:
            self._log.close()
        if self._retained is not None:
            with self._retained_lock:
                self._retained.close()


def _properties_dict(message: ApplicationMessage, now: float) -> dict[str, object]:
    """The forwarded properties of ``message`` in the retained store's form."""
    properties = message.properties
    stored: dict[str, object] = {}
    for name in _FORWARDED:
        value = getattr(properties, name)
        if value is not None and value != ():
            stored[name] = list(value) if name == "user_properties" else value
    if message.expires_at is not None:
        stored["message_expiry_interval"] = max(0, math.ceil(message.expires_at - now))
    return stored


def _message_of(record: RetainedMessage) -> ApplicationMessage:
    """A retained record as a message to send."""
    return _message_from(record.topic, record.payload, record.qos, True, record.properties, record.stored_at)


def _message_from(topic: str, payload: bytes, qos: int, retain: bool, stored: dict[str, object],
                  stored_at: float) -> ApplicationMessage:
    """A message kept in the retained store or the session log, its expiry counted from ``stored_at``."""

    def text(name: str) -> str | None:
        value = stored.get(name)
        return value if isinstance(value, str) else None

    indicator = stored.get("payload_format_indicator")
    correlation = stored.get("correlation_data")
    pairs = stored.get("user_properties")
    user_properties = tuple((str(key), str(value)) for key, value in pairs) if isinstance(pairs, list) else ()
    properties = Properties(
        payload_format_indicator=indicator if isinstance(indicator, int) else None,
        content_type=text("content_type"),
        response_topic=text("response_topic"),
        correlation_data=correlation if isinstance(correlation, bytes) else None,
        user_properties=user_properties,
    )
    if properties == EMPTY_PROPERTIES:
        properties = EMPTY_PROPERTIES
    interval = stored.get("message_expiry_interval")
    expires_at = stored_at + float(interval) if isinstance(interval, int | float) else None
    return ApplicationMessage(topic, payload, qos, retain, properties, expires_at)
