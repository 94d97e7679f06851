"""The durable retained-message store (MQTT 5.0 section 3.3.1.3).

A retained PUBLISH replaces the topic's retained message; one with an empty payload deletes it
[MQTT-3.3.1-6], [MQTT-3.3.1-7]. The store keeps them in a trie of topic levels, so that
:meth:`RetainedStore.matching` follows a filter's literal levels instead of scanning every topic, and on
disk in an append-only :class:`~iotdb_mqtt.broker.record_log.RecordLog` that is fsynced before
:meth:`RetainedStore.put` returns: a retained message acknowledged to its publisher survives SIGKILL and
restart. When the log holds more than twice the live data it is rewritten with only the live messages.

The store is bounded in count and in bytes (a message's bytes: its topic, payload and properties as
recorded). A new topic beyond a bound is refused with :class:`RetainedStoreFull`; replacing or deleting an
existing topic works as long as the result is within the bounds, so a full store never blocks updates of
what it already holds.

Message Expiry (3.3.2.3.3) is counted from ``stored_at``, wall-clock time, so it keeps counting across
restarts; expired messages are not returned and are dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from iotdb_mqtt.codec.topics import topic_name_problem

from .record_log import (
    Decoder,
    Encoder,
    RecordLog,
    decode_message_properties,
    encode_message_properties,
    expiry_interval,
)
from .tree import parse_filter

LOG_NAME: Final = "retained.log"
_PUT: Final = 1
_DELETE: Final = 2
_COMPACT_MIN_BYTES: Final = 64 * 1024
"""Below this log size compaction is not worth its fsyncs."""


@dataclass(frozen=True, slots=True)
class RetainedMessage:
    """One topic's retained message."""

    topic: str
    payload: bytes
    qos: int
    properties: dict[str, object]
    """MQTT 5 properties to forward: payload_format_indicator, content_type, response_topic,
    correlation_data (bytes), user_properties (list[tuple[str, str]]), message_expiry_interval."""
    stored_at: float
    """Wall-clock seconds (``time.time()``) when the message was retained."""

    def expires_at(self) -> float | None:
        """Wall-clock time at which the message expires, or ``None`` if it has no Message Expiry Interval."""
        interval = expiry_interval(self.properties)
        return None if interval is None else self.stored_at + interval

    def expired(self, now: float) -> bool:
        expires_at = self.expires_at()
        return expires_at is not None and now >= expires_at

    def remaining_expiry(self, now: float) -> int | None:
        """The Message Expiry Interval to forward at ``now``: the stored one less the whole seconds waited."""
        interval = expiry_interval(self.properties)
        return None if interval is None else max(0, interval - int(now - self.stored_at))


class RetainedStoreFull(Exception):
    """A new retained topic would exceed the store's bound; ``bound`` is ``"count"`` or ``"bytes"``."""

    def __init__(self, message: str, *, bound: str) -> None:
        super().__init__(message)
        self.bound = bound


class _Node:
    __slots__ = ("children", "message", "parent", "size")

    def __init__(self, parent: _Node | None) -> None:
        self.parent = parent
        self.children: dict[str, _Node] | None = None
        self.message: RetainedMessage | None = None
        self.size = 0


def _encode_put(message: RetainedMessage) -> bytes:
    return (
        Encoder(_PUT)
        .text(message.topic)
        .u8(message.qos)
        .f64(message.stored_at)
        .blob(encode_message_properties(message.properties))
        .blob(message.payload)
        .payload()
    )


def _encode_delete(topic: str) -> bytes:
    return Encoder(_DELETE).text(topic).payload()


class RetainedStore:
    """Retained messages by topic, in memory and in ``<directory>/retained.log``. Thread-safe."""

    def __init__(self, log: RecordLog, *, max_count: int, max_bytes: int) -> None:
        self._log = log
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._root = _Node(None)
        self._by_topic: dict[str, _Node] = {}
        self._total_bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, *, max_count: int, max_bytes: int) -> RetainedStore:
        """Open the store in ``directory`` (created if needed), replaying its log; expired messages are dropped."""
        if max_count < 0 or max_bytes < 0:
            raise ValueError(f"retained store bounds must be >= 0, got max_count={max_count}, max_bytes={max_bytes}")
        log, payloads = RecordLog.open(directory / LOG_NAME)
        store = cls(log, max_count=max_count, max_bytes=max_bytes)
        try:
            for payload in payloads:
                store._replay(payload)
        except BaseException:
            log.close()
            raise
        now = time.time()
        for node in list(store._by_topic.values()):
            assert node.message is not None
            if node.message.expired(now):
                store._remove(node.message.topic)
        with store._lock:
            store._compact_if_worth_it()
        return store

    def __len__(self) -> int:
        return len(self._by_topic)

    @property
    def total_bytes(self) -> int:
        """Bytes of the retained messages: topics, payloads and properties as recorded."""
        return self._total_bytes

    def put(self, message: RetainedMessage) -> None:
        """Retain ``message`` for its topic (an empty payload deletes the topic's message); durable on return.

        Raises ``ValueError`` for an invalid topic, QoS or property, and :class:`RetainedStoreFull` when
        a new topic, or a larger replacement, would exceed a bound. Nothing is changed when it raises.
        If the disk refuses the write it raises :class:`~iotdb_mqtt.broker.record_log.LogFailed` (an
        ``OSError``), and so does every later call until the store is reopened.
        """
        problem = topic_name_problem(message.topic)
        if problem is not None:
            raise ValueError(f"retained message: {problem}")
        if not 0 <= message.qos <= 2:
            raise ValueError(f"retained message on {message.topic!r}: QoS {message.qos} is not 0, 1 or 2")
        with self._lock:
            existing = self._by_topic.get(message.topic)
            if not message.payload:
                if existing is None:
                    return
                self._log.append(_encode_delete(message.topic))
                self._log.sync()
                self._remove(message.topic)
                self._compact_if_worth_it()
                return
            payload = _encode_put(message)
            size = len(payload)
            if existing is None and len(self._by_topic) >= self._max_count:
                raise RetainedStoreFull(
                    f"retained store holds {len(self._by_topic)} messages, its maximum count; "
                    f"{message.topic!r} is not retained",
                    bound="count",
                )
            total = self._total_bytes + size - (0 if existing is None else existing.size)
            if total > self._max_bytes:
                raise RetainedStoreFull(
                    f"retaining {size} bytes on {message.topic!r} would bring the retained store to {total} bytes, "
                    f"more than its maximum of {self._max_bytes} bytes",
                    bound="bytes",
                )
            self._log.append(payload)
            self._log.sync()
            self._set(message, size)
            self._compact_if_worth_it()

    def get(self, topic: str, now: float | None = None) -> RetainedMessage | None:
        """The topic's retained message, unless there is none or it has expired."""
        now = time.time() if now is None else now
        with self._lock:
            node = self._by_topic.get(topic)
            if node is None:
                return None
            assert node.message is not None
            if node.message.expired(now):
                self._drop_expired([node.message])
                return None
            return node.message

    def matching(self, topic_filter: str, now: float | None = None) -> list[RetainedMessage]:
        """The unexpired retained messages whose topics match ``topic_filter``, in no particular order.

        Raises :class:`~iotdb_mqtt.broker.tree.InvalidTopicFilter` for an invalid filter. A shared
        subscription (``$share/...``) gets none: retained messages are not sent to shared subscriptions
        when they are made (4.8.2). A filter starting with a wildcard matches no ``$`` topic [MQTT-4.7.2-1].
        """
        parsed = parse_filter(topic_filter)
        if parsed.share_name is not None:
            return []
        now = time.time() if now is None else now
        levels = parsed.levels
        last = len(levels)
        found: list[RetainedMessage] = []
        with self._lock:
            stack: list[tuple[_Node, int]] = [(self._root, 0)]
            while stack:
                node, index = stack.pop()
                if index == last:
                    if node.message is not None:
                        found.append(node.message)
                    continue
                level = levels[index]
                if level == "#":
                    if node.message is not None:  # "a/#" matches "a"
                        found.append(node.message)
                    self._collect_below(node, skip_dollar=index == 0, into=found)
                    continue
                children = node.children
                if children is None:
                    continue
                if level == "+":
                    stack.extend(
                        (child, index + 1)
                        for key, child in children.items()
                        if not (index == 0 and key.startswith("$"))
                    )
                else:
                    child = children.get(level)
                    if child is not None:
                        stack.append((child, index + 1))
            expired = [message for message in found if message.expired(now)]
            if expired:
                self._drop_expired(expired)
                found = [message for message in found if not message.expired(now)]
        return found

    def close(self) -> None:
        with self._lock:
            self._log.close()

    # --- internals (called with the lock held, or before the store is shared) ------------------------------

    def _replay(self, payload: bytes) -> None:
        record = Decoder(payload)
        topic = record.text()
        if record.kind == _PUT:
            qos = record.u8()
            stored_at = record.f64()
            properties = decode_message_properties(record.blob())
            self._set(RetainedMessage(topic, record.blob(), qos, properties, stored_at), len(payload))
        elif record.kind == _DELETE:
            self._remove(topic)
        else:
            raise ValueError(f"retained log: unknown record kind {record.kind}")

    @staticmethod
    def _collect_below(node: _Node, *, skip_dollar: bool, into: list[RetainedMessage]) -> None:
        if node.children is None:
            return
        stack = [child for key, child in node.children.items() if not (skip_dollar and key.startswith("$"))]
        while stack:
            current = stack.pop()
            if current.message is not None:
                into.append(current.message)
            if current.children:
                stack.extend(current.children.values())

    def _drop_expired(self, messages: list[RetainedMessage]) -> None:
        """Forget expired messages; their deletion records become durable with the next sync.

        If those records are lost in a crash nothing is wrong: the messages are expired again on open.
        """
        for message in messages:
            self._log.append(_encode_delete(message.topic))
            self._remove(message.topic)

    def _set(self, message: RetainedMessage, size: int) -> None:
        node = self._by_topic.get(message.topic)
        if node is None:
            node = self._root
            for level in message.topic.split("/"):
                if node.children is None:
                    node.children = {}
                child = node.children.get(level)
                if child is None:
                    child = node.children[level] = _Node(node)
                node = child
            self._by_topic[message.topic] = node
        self._total_bytes += size - node.size
        node.message = message
        node.size = size

    def _remove(self, topic: str) -> None:
        node = self._by_topic.pop(topic, None)
        if node is None:
            return
        self._total_bytes -= node.size
        node.message = None
        node.size = 0
        levels = topic.split("/")
        parent = node.parent
        while parent is not None and node.message is None and not node.children:
            assert parent.children is not None
            del parent.children[levels[-1]]
            if not parent.children:
                parent.children = None
            levels.pop()
            node, parent = parent, parent.parent

    def _compact_if_worth_it(self) -> None:
        live = self._total_bytes + len(self._by_topic) * 16  # 16: the record header
        if self._log.size > max(2 * live, _COMPACT_MIN_BYTES):
            payloads = []
            for node in self._by_topic.values():
                assert node.message is not None
                payloads.append(_encode_put(node.message))
            self._log.rewrite(payloads)
