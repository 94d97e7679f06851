"""The durable store of persistent MQTT sessions (MQTT 5.0 section 4.1).

What a server must keep of a session between connections (4.1): its subscriptions with their
Subscription Identifiers, the QoS 1 and 2 messages queued for the client or sent and not yet
acknowledged (for QoS 2, whether PUBREC came back, so that PUBREL and not PUBLISH is resent), and the
Session Expiry Interval with the time the connection closed. Each change appends one record to a
:class:`~iotdb_mqtt.broker.record_log.RecordLog`, in memory and cheap, from the event loop;
:meth:`SessionLog.durable`, called from a worker thread before the broker acknowledges what depends on
it, writes and fsyncs everything appended so far, one fsync for all concurrent callers (group commit).
After SIGKILL or a power loss the log replays to the state as of some moment at or after the last
returned ``durable()``.

When the log is more than twice the size of the live state and above a few MiB, ``durable()`` rewrites
it with only the live state (atomically, through the database's durable-write helper); appends wait
for the rewrite.

On open, a session that was connected when the server stopped counts as disconnected at the moment of
the open (the connection ended with the server, but when exactly is unknown; this errs on keeping it),
and sessions whose expiry has passed are ended. Queued messages are kept regardless of their Message
Expiry; the broker checks it when it resends (it needs ``queued_at`` to count it down anyway).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .record_log import (
    Decoder,
    Encoder,
    RecordLog,
    decode_message_properties,
    encode_message_properties,
)
from .tree import Subscription, SubscriptionOptions

LOG_NAME: Final = "sessions.log"
NEVER_EXPIRES: Final = 0xFFFF_FFFF
"""Session Expiry Interval meaning the session does not expire (3.1.2.11.2)."""
DEFAULT_COMPACT_MIN_BYTES: Final = 4 * 1024 * 1024

_BEGIN: Final = 1
_SET_EXPIRY: Final = 2
_DISCONNECTED: Final = 3
_END: Final = 4
_SUBSCRIBE: Final = 5
_UNSUBSCRIBE: Final = 6
_ENQUEUE: Final = 7
_RELEASED: Final = 8
_ACKNOWLEDGED: Final = 9
_RELEASED_PACKET: Final = 10
"""Like ``_RELEASED``, with the packet id the PUBREL is resent with after a restart."""
_USER: Final = 11
"""The user whose connection last opened the session (what it may receive is that user's)."""
_FIXED_BYTES: Final = 64
"""Bytes counted for a session's begin and disconnect records when estimating the live state."""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message queued for a session's client, or sent and not yet acknowledged."""

    message_id: int
    """Unique per session, increasing in queue order."""
    topic: str
    payload: bytes
    qos: int
    """The delivery QoS (1 or 2)."""
    retain: bool
    properties: dict[str, object]
    """As :attr:`RetainedMessage.properties`, plus ``subscription_identifiers: list[int]``."""
    queued_at: float
    """Wall-clock seconds (``time.time()``), to count Message Expiry down."""


@dataclass(slots=True)
class StoredSession:
    """The state of one persistent session."""

    client_id: str
    expiry_interval: int
    """Seconds; :data:`NEVER_EXPIRES` (0xFFFFFFFF): never."""
    disconnected_at: float | None
    """``time.time()`` when the last connection closed; ``None`` while connected."""
    subscriptions: list[Subscription]
    messages: list[QueuedMessage]
    """In order; not yet acknowledged by the client."""
    released: set[int]
    """Message ids whose PUBREC came back (QoS 2: resend PUBREL, not PUBLISH)."""
    released_packet_ids: dict[int, int] = field(default_factory=dict)
    """Packet id of the PUBREL of each released message, where it was logged."""
    user: str | None = ""
    """The user of the connection that last opened the session; None: anonymous; "": not logged."""

    def expires_at(self) -> float | None:
        """When the session expires, or ``None`` while connected or if it never does."""
        if self.disconnected_at is None or self.expiry_interval == NEVER_EXPIRES:
            return None
        return self.disconnected_at + self.expiry_interval


class UnknownSession(LookupError):
    """A change for a client that has no stored session (``begin`` it first)."""


class _Session:
    """The live state of one session, with the sizes of the records that rebuild its subscriptions and messages.

    Messages are kept in a dict by id, in queue order, so an acknowledgement is found without a scan.
    """

    __slots__ = ("disconnected_at", "expiry_interval", "messages", "released", "released_packet_ids",
                 "subscriptions", "user")

    def __init__(self, expiry_interval: int) -> None:
        self.expiry_interval = expiry_interval
        self.disconnected_at: float | None = None
        self.subscriptions: dict[str, tuple[Subscription, int]] = {}
        self.messages: dict[int, tuple[QueuedMessage, int]] = {}
        self.released: set[int] = set()
        self.released_packet_ids: dict[int, int] = {}
        self.user: str | None = ""

    def expired(self, now: float) -> bool:
        if self.disconnected_at is None or self.expiry_interval == NEVER_EXPIRES:
            return False
        return now >= self.disconnected_at + self.expiry_interval


# --- record encoding --------------------------------------------------------------------------------------


def _options_byte(options: SubscriptionOptions) -> int:
    """The Subscription Options byte of SUBSCRIBE (3.8.3.1)."""
    return options.qos | (options.no_local << 2) | (options.retain_as_published << 3) | (options.retain_handling << 4)


def _options_from_byte(value: int) -> SubscriptionOptions:
    return SubscriptionOptions(
        qos=value & 0x03,
        no_local=bool(value & 0x04),
        retain_as_published=bool(value & 0x08),
        retain_handling=(value >> 4) & 0x03,
    )


def _client_record(kind: int, client_id: str) -> Encoder:
    return Encoder(kind).text(client_id)


def _subscribe_record(subscription: Subscription) -> bytes:
    return (
        _client_record(_SUBSCRIBE, subscription.client_id)
        .text(subscription.topic_filter)
        .u8(_options_byte(subscription.options))
        .u32(subscription.identifier or 0)
        .payload()
    )


def _enqueue_record(client_id: str, message: QueuedMessage) -> bytes:
    return (
        _client_record(_ENQUEUE, client_id)
        .u64(message.message_id)
        .text(message.topic)
        .u8(message.qos)
        .u8(message.retain)
        .f64(message.queued_at)
        .blob(encode_message_properties(message.properties))
        .blob(message.payload)
        .payload()
    )


def _id_record(kind: int, client_id: str, message_id: int) -> bytes:
    return _client_record(kind, client_id).u64(message_id).payload()


def _released_record(client_id: str, message_id: int, packet_id: int) -> bytes:
    if not packet_id:
        return _id_record(_RELEASED, client_id, message_id)
    return _client_record(_RELEASED_PACKET, client_id).u64(message_id).u32(packet_id).payload()


def _user_record(client_id: str, user: str | None) -> bytes:
    return _client_record(_USER, client_id).u8(user is not None).text(user or "").payload()


class SessionLog:
    """Persistent sessions by client id, in memory and in ``<directory>/sessions.log``. Thread-safe."""

    def __init__(self, log: RecordLog, *, max_messages_per_session: int, compact_min_bytes: int) -> None:
        self._log = log
        self._max_messages = max_messages_per_session
        self._compact_min_bytes = compact_min_bytes
        self._sessions: dict[str, _Session] = {}
        self._live_bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        max_messages_per_session: int,
        compact_min_bytes: int = DEFAULT_COMPACT_MIN_BYTES,
    ) -> SessionLog:
        """Open the log in ``directory`` (created if needed) and recover the sessions it holds.

        ``compact_min_bytes``: the log is not rewritten while smaller than this.
        """
        if max_messages_per_session < 0:
            raise ValueError(f"max_messages_per_session must be >= 0, got {max_messages_per_session}")
        log, payloads = RecordLog.open(directory / LOG_NAME)
        opened = cls(log, max_messages_per_session=max_messages_per_session, compact_min_bytes=compact_min_bytes)
        try:
            for payload in payloads:
                opened._replay(payload)
        except BaseException:
            log.close()
            raise
        now = time.time()
        with opened._lock:
            for client_id, session in opened._sessions.items():
                if session.disconnected_at is None:
                    session.disconnected_at = now
                    opened._log.append(_client_record(_DISCONNECTED, client_id).f64(now).payload())
        opened.expire(now)
        opened.durable()
        return opened

    # --- reading ----------------------------------------------------------------------------------------

    def sessions(self) -> dict[str, StoredSession]:
        """A copy of every stored session (right after :meth:`open`: the recovered state)."""
        with self._lock:
            return {client_id: self._snapshot(client_id, session) for client_id, session in self._sessions.items()}

    def get(self, client_id: str) -> StoredSession | None:
        """A copy of the client's stored session, or ``None``."""
        with self._lock:
            session = self._sessions.get(client_id)
            return None if session is None else self._snapshot(client_id, session)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    # --- changes: each appends one record ----------------------------------------------------------------

    def begin(self, client_id: str, expiry_interval: int, user: str | None = "") -> None:
        """A session is created, or resumed by a new connection of ``user`` (None: anonymous; "": not told):
        connected, with this expiry interval.

        A resumed session keeps its subscriptions and messages; for Clean Start, :meth:`end` it first.
        """
        _check_expiry(expiry_interval)
        with self._lock:
            self._log.append(_client_record(_BEGIN, client_id).u32(expiry_interval).payload())
            self._apply_begin(client_id, expiry_interval)
            session = self._sessions[client_id]
            if user not in ("", session.user):
                self._log.append(_user_record(client_id, user))
                session.user = user

    def set_expiry(self, client_id: str, expiry_interval: int) -> None:
        """The Session Expiry Interval changed (MQTT 5 DISCONNECT may set it)."""
        _check_expiry(expiry_interval)
        with self._lock:
            session = self._session(client_id)
            self._log.append(_client_record(_SET_EXPIRY, client_id).u32(expiry_interval).payload())
            session.expiry_interval = expiry_interval

    def disconnected(self, client_id: str, at: float) -> None:
        """The session's connection closed at wall-clock time ``at``; its expiry starts counting."""
        with self._lock:
            session = self._session(client_id)
            self._log.append(_client_record(_DISCONNECTED, client_id).f64(at).payload())
            session.disconnected_at = at

    def end(self, client_id: str) -> None:
        """Forget the session and all it holds (Clean Start, expiry); nothing happens if there is none."""
        with self._lock:
            if client_id in self._sessions:
                self._log.append(_client_record(_END, client_id).payload())
                self._apply_end(client_id)

    def subscribe(self, subscription: Subscription) -> None:
        """Add or replace (same filter) one of the session's subscriptions."""
        options = subscription.options
        if not (0 <= options.qos <= 2 and 0 <= options.retain_handling <= 2):
            raise ValueError(f"subscription {subscription.topic_filter!r}: options out of range: {options}")
        with self._lock:
            session = self._session(subscription.client_id)
            payload = _subscribe_record(subscription)
            self._log.append(payload)
            self._apply_subscribe(session, subscription, len(payload))

    def unsubscribe(self, client_id: str, topic_filter: str) -> None:
        """Remove the session's subscription to exactly ``topic_filter``, if it has one."""
        with self._lock:
            session = self._session(client_id)
            if topic_filter in session.subscriptions:
                self._log.append(_client_record(_UNSUBSCRIBE, client_id).text(topic_filter).payload())
                self._apply_unsubscribe(session, topic_filter)

    def enqueue(self, client_id: str, message: QueuedMessage) -> bool:
        """Queue ``message`` for the client; False (nothing stored) if the session holds its maximum already.

        Raises ``ValueError`` for a QoS other than 1 or 2, a message id not above the last queued one, or
        a property that cannot be stored.
        """
        if message.qos not in (1, 2):
            raise ValueError(f"queued message {message.message_id}: QoS {message.qos} is not 1 or 2")
        with self._lock:
            session = self._session(client_id)
            if session.messages:
                last_id = next(reversed(session.messages))
                if message.message_id <= last_id:
                    raise ValueError(
                        f"session {client_id!r}: message id {message.message_id} is not above the last "
                        f"queued one, {last_id}"
                    )
            payload = _enqueue_record(client_id, message)  # checks the properties, even if there is no room
            if len(session.messages) >= self._max_messages:
                return False
            self._log.append(payload)
            self._apply_enqueue(session, message, len(payload))
            return True

    def released(self, client_id: str, message_id: int, packet_id: int = 0) -> None:
        """PUBREC came back for a queued QoS 2 message: from now on PUBREL (with ``packet_id``, when given) is
        what to resend."""
        with self._lock:
            session = self._session(client_id)
            if message_id in session.messages and message_id not in session.released:
                self._log.append(_released_record(client_id, message_id, packet_id))
                self._apply_released(session, message_id, packet_id)

    def acknowledged(self, client_id: str, message_id: int) -> None:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) came back: the message is gone. Unknown ids are ignored."""
        with self._lock:
            session = self._session(client_id)
            if message_id in session.messages:
                self._log.append(_id_record(_ACKNOWLEDGED, client_id, message_id))
                self._apply_acknowledged(session, message_id)

    def expire(self, now: float) -> list[str]:
        """End the sessions whose expiry has passed at wall-clock ``now``; returns their client ids."""
        with self._lock:
            expired = [client_id for client_id, session in self._sessions.items() if session.expired(now)]
            for client_id in expired:
                self._log.append(_client_record(_END, client_id).payload())
                self._apply_end(client_id)
            return expired

    # --- durability -------------------------------------------------------------------------------------

    def durable(self) -> None:
        """Make every record appended before the call durable (one fsync shared by concurrent callers).

        Blocks on disk I/O: call it from a worker thread. Rewrites the log when it has grown past twice
        the live state (and past ``compact_min_bytes``). If the disk refuses a write it raises
        :class:`~iotdb_mqtt.broker.record_log.LogFailed` (an ``OSError``): what the changes since the last
        successful call stood for must not be acknowledged, and every later call fails the same way until
        the log is reopened (which recovers the state as of the last successful call, or later).
        """
        self._log.sync()
        with self._lock:
            size = self._log.size
            if size <= max(2 * self._live_bytes, self._compact_min_bytes):
                return
            if size > 2 * (self._live_bytes + 16 * self._record_count()):  # 16: each record's header
                self._log.rewrite(self._live_records())

    @property
    def log_bytes(self) -> int:
        """Size of the log, including records appended and not yet written."""
        return self._log.size

    def close(self) -> None:
        """Make everything durable and release the log."""
        with self._lock:
            self._log.close()

    # --- internals (with the lock held, or during open) ----------------------------------------------------

    def _session(self, client_id: str) -> _Session:
        session = self._sessions.get(client_id)
        if session is None:
            raise UnknownSession(f"no stored session for client {client_id!r}")
        return session

    @staticmethod
    def _snapshot(client_id: str, session: _Session) -> StoredSession:
        return StoredSession(
            client_id,
            session.expiry_interval,
            session.disconnected_at,
            [subscription for subscription, _ in session.subscriptions.values()],
            [message for message, _ in session.messages.values()],
            set(session.released),
            dict(session.released_packet_ids),
            session.user,
        )

    def _record_count(self) -> int:
        return sum(
            2 + len(session.subscriptions) + len(session.messages) + len(session.released)
            for session in self._sessions.values()
        )

    def _live_records(self) -> list[bytes]:
        """Records that rebuild the current state, session by session."""
        records: list[bytes] = []
        for client_id, session in self._sessions.items():
            records.append(_client_record(_BEGIN, client_id).u32(session.expiry_interval).payload())
            if session.user != "":
                records.append(_user_record(client_id, session.user))
            if session.disconnected_at is not None:
                records.append(_client_record(_DISCONNECTED, client_id).f64(session.disconnected_at).payload())
            records.extend(_subscribe_record(subscription) for subscription, _ in session.subscriptions.values())
            records.extend(_enqueue_record(client_id, message) for message, _ in session.messages.values())
            records.extend(_released_record(client_id, message_id, session.released_packet_ids.get(message_id, 0))
                           for message_id in session.released)
        return records

    def _replay(self, payload: bytes) -> None:
        """Apply one record; records for sessions that no longer exist are skipped, as the writer did."""
        record = Decoder(payload)
        client_id = record.text()
        kind = record.kind
        if kind == _BEGIN:
            self._apply_begin(client_id, record.u32())
            return
        if kind == _END:
            self._apply_end(client_id)
            return
        session = self._sessions.get(client_id)
        if session is None:
            return
        if kind == _SET_EXPIRY:
            session.expiry_interval = record.u32()
        elif kind == _DISCONNECTED:
            session.disconnected_at = record.f64()
        elif kind == _SUBSCRIBE:
            topic_filter = record.text()
            options = _options_from_byte(record.u8())
            identifier = record.u32() or None
            self._apply_subscribe(session, Subscription(client_id, topic_filter, options, identifier), len(payload))
        elif kind == _UNSUBSCRIBE:
            self._apply_unsubscribe(session, record.text())
        elif kind == _ENQUEUE:
            message_id = record.u64()
            topic = record.text()
            qos = record.u8()
            retain = bool(record.u8())
            queued_at = record.f64()
            properties = decode_message_properties(record.blob())
            message = QueuedMessage(message_id, topic, record.blob(), qos, retain, properties, queued_at)
            self._apply_enqueue(session, message, len(payload))
        elif kind == _RELEASED:
            message_id = record.u64()
            if message_id in session.messages:
                self._apply_released(session, message_id)
        elif kind == _RELEASED_PACKET:
            message_id = record.u64()
            packet_id = record.u32()
            if message_id in session.messages:
                self._apply_released(session, message_id, packet_id)
        elif kind == _ACKNOWLEDGED:
            message_id = record.u64()
            if message_id in session.messages:
                self._apply_acknowledged(session, message_id)
        elif kind == _USER:
            named = record.u8()
            name = record.text()
            session.user = name if named else None
        else:
            raise ValueError(f"session log: unknown record kind {kind}")

    def _apply_begin(self, client_id: str, expiry_interval: int) -> None:
        session = self._sessions.get(client_id)
        if session is None:
            session = self._sessions[client_id] = _Session(expiry_interval)
            self._live_bytes += _FIXED_BYTES + 2 * len(client_id)
        session.expiry_interval = expiry_interval
        session.disconnected_at = None

    def _apply_end(self, client_id: str) -> None:
        session = self._sessions.pop(client_id, None)
        if session is None:
            return
        self._live_bytes -= _FIXED_BYTES + 2 * len(client_id)
        self._live_bytes -= sum(size for _, size in session.subscriptions.values())
        self._live_bytes -= sum(size for _, size in session.messages.values())
        self._live_bytes -= len(session.released) * (_FIXED_BYTES // 2)

    def _apply_subscribe(self, session: _Session, subscription: Subscription, size: int) -> None:
        previous = session.subscriptions.get(subscription.topic_filter)
        if previous is not None:
            self._live_bytes -= previous[1]
        session.subscriptions[subscription.topic_filter] = (subscription, size)
        self._live_bytes += size

    def _apply_unsubscribe(self, session: _Session, topic_filter: str) -> None:
        previous = session.subscriptions.pop(topic_filter, None)
        if previous is not None:
            self._live_bytes -= previous[1]

    def _apply_enqueue(self, session: _Session, message: QueuedMessage, size: int) -> None:
        session.messages[message.message_id] = (message, size)
        self._live_bytes += size

    def _apply_released(self, session: _Session, message_id: int, packet_id: int = 0) -> None:
        session.released.add(message_id)
        if packet_id:
            session.released_packet_ids[message_id] = packet_id
        self._live_bytes += _FIXED_BYTES // 2

    def _apply_acknowledged(self, session: _Session, message_id: int) -> None:
        _, size = session.messages.pop(message_id)
        self._live_bytes -= size
        if message_id in session.released:
            session.released.discard(message_id)
            self._live_bytes -= _FIXED_BYTES // 2


def _check_expiry(expiry_interval: int) -> None:
    if not 0 <= expiry_interval <= NEVER_EXPIRES:
        raise ValueError(f"session expiry interval must be in 0..{NEVER_EXPIRES}, got {expiry_interval}")
