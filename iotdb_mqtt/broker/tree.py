"""The subscription tree: which clients receive a publish (MQTT 5.0 sections 4.7 and 4.8).

Subscriptions live in a trie with one node per topic-filter level; ``+`` and ``#`` are ordinary
child keys (a topic name never contains them, so no literal level collides with them). Matching a
topic walks at most three children per level and node visited (the literal level, ``+`` and
``#``), so its cost depends on the topic's depth and on how many subscriptions match, not on how
many subscriptions exist.

Rules applied here, with their places in the specification:

* ``#`` matches its parent level and any number of child levels, ``+`` exactly one level; empty
  levels (``a//b``, ``/a``, ``a/``) are real levels (4.7.1).
* A filter whose first level is a wildcard does not match a topic starting with ``$``
  [MQTT-4.7.2-1].
* No Local: a subscription with ``no_local`` does not match publishes of its own client
  [MQTT-3.8.3-3]; it may not be set on a shared subscription [MQTT-3.8.3-4].
* ``$share/{ShareName}/{filter}``: each publish goes to one member of each (ShareName, filter)
  share (4.8.2), chosen round-robin among the members the caller reports available.
* A client matched by several subscriptions gets one :class:`Delivery`: the highest granted QoS,
  Retain As Published if any subscription has it, and every Subscription Identifier
  [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-5].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from iotdb_mqtt.codec import errors as codec_errors
from iotdb_mqtt.codec.topics import SHARED_PREFIX, topic_filter_problem, topic_name_problem


class InvalidTopicFilter(codec_errors.InvalidTopicFilter, ValueError):
    """A topic filter that SUBSCRIBE or UNSUBSCRIBE may not carry.

    It is the codec's :class:`~iotdb_mqtt.codec.errors.InvalidTopicFilter` (so ``reason_code`` is
    0x8F, Topic Filter Invalid, ready for a SUBACK) and also a ``ValueError`` for callers that are not
    protocol code.
    """


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """The options of one subscription (MQTT 5 Subscription Options byte, 3.8.3.1)."""

    qos: int
    """0..2, the maximum QoS the server granted."""
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    """0: send retained messages on subscribe, 1: only if the subscription is new, 2: never."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One client's subscription to one topic filter."""

    client_id: str
    topic_filter: str
    """As subscribed, including any ``$share/{ShareName}/`` prefix."""
    options: SubscriptionOptions
    identifier: int | None = None
    """MQTT 5 Subscription Identifier, 1..268,435,455."""


@dataclass(slots=True)
class Delivery:
    """What one client gets for one publish: ONE copy per client (overlapping subscriptions merged)."""

    client_id: str
    qos: int
    """The highest granted QoS of the matching subscriptions; the caller takes the minimum with the publish's QoS."""
    retain_as_published: bool
    """True if any matching subscription has Retain As Published."""
    identifiers: list[int]
    """Every matching subscription's identifier (MQTT 5), in no particular order."""


@dataclass(frozen=True, slots=True)
class ParsedFilter:
    """A validated topic filter split into the levels that are matched."""

    topic_filter: str
    """The filter as subscribed."""
    levels: tuple[str, ...]
    """The levels of the filter proper (after a ``$share/{ShareName}/`` prefix)."""
    share_name: str | None
    """The ShareName of a shared subscription, else ``None``."""


def parse_filter(topic_filter: str) -> ParsedFilter:
    """Validate ``topic_filter`` and split it into levels.

    Raises :class:`InvalidTopicFilter`, naming the filter and the rule, for an empty filter, U+0000,
    a ``#`` that is not the whole last level (``a/#/b``, ``x#``), a ``+`` that is not a whole level
    (``+x``), or a ``$share/`` filter without a ShareName, with a wildcard in it, or without a filter.
    """
    problem = topic_filter_problem(topic_filter, shared=True)
    if problem is not None:
        raise InvalidTopicFilter(problem)
    if topic_filter.startswith(SHARED_PREFIX):
        _, share_name, rest = topic_filter.split("/", 2)
        return ParsedFilter(topic_filter, tuple(rest.split("/")), share_name)
    return ParsedFilter(topic_filter, tuple(topic_filter.split("/")), None)


def _always_available(_client_id: str) -> bool:
    return True


class _Share:
    """The members of one (ShareName, filter) share, in subscription order, and the round-robin cursor."""

    __slots__ = ("cursor", "members", "order")

    def __init__(self) -> None:
        self.members: dict[str, Subscription] = {}
        self.order: list[str] = []
        self.cursor = 0

    def add(self, subscription: Subscription) -> bool:
        client_id = subscription.client_id
        new = client_id not in self.members
        if new:
            self.order.append(client_id)
        self.members[client_id] = subscription
        return new

    def remove(self, client_id: str) -> None:
        del self.members[client_id]
        index = self.order.index(client_id)
        del self.order[index]
        if index < self.cursor:
            self.cursor -= 1

    def choose(self, is_available: Callable[[str], bool]) -> Subscription:
        """The next available member after the previous choice, or the next member if none is available."""
        order = self.order
        count = len(order)
        start = self.cursor % count
        chosen = start
        for step in range(count):
            index = (start + step) % count
            if is_available(order[index]):
                chosen = index
                break
        self.cursor = chosen + 1
        return self.members[order[chosen]]


class _Node:
    """One level of the trie. Containers are created on first use: most nodes hold only one of them."""

    __slots__ = ("children", "key", "parent", "shares", "subscribers")

    def __init__(self, parent: _Node | None, key: str) -> None:
        self.parent = parent
        self.key = key
        self.children: dict[str, _Node] | None = None
        self.subscribers: dict[str, Subscription] | None = None
        self.shares: dict[str, _Share] | None = None

    def is_empty(self) -> bool:
        return not self.children and not self.subscribers and not self.shares


class SubscriptionTree:
    """Every client's subscriptions, indexed by topic-filter level for matching and by client for removal."""

    __slots__ = ("_by_client", "_count", "_root")

    def __init__(self) -> None:
        self._root = _Node(None, "")
        self._by_client: dict[str, dict[str, tuple[_Node, str | None]]] = {}
        self._count = 0

    def __len__(self) -> int:
        """Total number of subscriptions."""
        return self._count

    def count_of(self, client_id: str) -> int:
        """Number of the client's subscriptions."""
        return len(self._by_client.get(client_id, ()))

    def has(self, client_id: str, topic_filter: str) -> bool:
        """True if the client holds a subscription whose filter is exactly ``topic_filter``."""
        return topic_filter in self._by_client.get(client_id, ())

    def subscribe(self, subscription: Subscription) -> bool:
        """Add ``subscription``; True if new, False if it replaced the same client's same filter.

        Raises :class:`InvalidTopicFilter` for an invalid filter and ``ValueError`` for No Local on a
        shared subscription (a Protocol Error, [MQTT-3.8.3-4]) or options out of range.
        """
        options = subscription.options
        if not 0 <= options.qos <= 2:
            raise ValueError(f"subscription {subscription.topic_filter!r}: QoS {options.qos} is not 0, 1 or 2")
        if not 0 <= options.retain_handling <= 2:
            raise ValueError(
                f"subscription {subscription.topic_filter!r}: "
                f"Retain Handling {options.retain_handling} is not 0, 1 or 2"
            )
        parsed = parse_filter(subscription.topic_filter)
        if parsed.share_name is not None and options.no_local:
            raise ValueError(
                f"shared subscription {subscription.topic_filter!r} has No Local set, a protocol error [MQTT-3.8.3-4]"
            )
        node = self._root
        for level in parsed.levels:
            children = node.children
            if children is None:
                children = node.children = {}
            child = children.get(level)
            if child is None:
                child = children[level] = _Node(node, level)
            node = child
        client_id = subscription.client_id
        if parsed.share_name is None:
            if node.subscribers is None:
                node.subscribers = {}
            new = client_id not in node.subscribers
            node.subscribers[client_id] = subscription
        else:
            if node.shares is None:
                node.shares = {}
            share = node.shares.get(parsed.share_name)
            if share is None:
                share = node.shares[parsed.share_name] = _Share()
            new = share.add(subscription)
        if new:
            self._by_client.setdefault(client_id, {})[subscription.topic_filter] = (node, parsed.share_name)
            self._count += 1
        return new

    def unsubscribe(self, client_id: str, topic_filter: str) -> bool:
        """Remove the client's subscription whose filter is exactly ``topic_filter``; False if there was none.

        UNSUBSCRIBE compares filters character by character (3.10.4), so no validation is needed: an
        invalid filter was never subscribed.
        """
        filters = self._by_client.get(client_id)
        if filters is None:
            return False
        entry = filters.pop(topic_filter, None)
        if entry is None:
            return False
        if not filters:
            del self._by_client[client_id]
        self._detach(client_id, *entry)
        self._count -= 1
        return True

    def remove_client(self, client_id: str) -> int:
        """Drop all of the client's subscriptions; returns how many there were."""
        filters = self._by_client.pop(client_id, None)
        if filters is None:
            return 0
        for node, share_name in filters.values():
            self._detach(client_id, node, share_name)
        self._count -= len(filters)
        return len(filters)

    def subscriptions_of(self, client_id: str) -> list[Subscription]:
        """The client's subscriptions, in the order they were first made."""
        found: list[Subscription] = []
        for node, share_name in self._by_client.get(client_id, {}).values():
            if share_name is None:
                assert node.subscribers is not None
                found.append(node.subscribers[client_id])
            else:
                assert node.shares is not None
                found.append(node.shares[share_name].members[client_id])
        return found

    def match(
        self,
        topic: str,
        publisher_id: str | None,
        is_available: Callable[[str], bool] = _always_available,
    ) -> list[Delivery]:
        """The deliveries of a publish to ``topic`` by ``publisher_id`` (``None``: no client, e.g. the server).

        Each shared subscription that matches contributes one member, chosen round-robin among those
        for which ``is_available`` is true (any member if none is); choosing advances the share's
        cursor, so calling this method is not free of effects. Raises ``ValueError`` for a topic that is
        not a valid topic name (empty, a wildcard, U+0000).
        """
        problem = topic_name_problem(topic)
        if problem is not None:
            raise ValueError(problem)
        levels = topic.split("/")
        matched: list[_Node] = []
        nodes = [self._root]
        last = len(levels) - 1
        dollar = topic.startswith("$")
        for index, level in enumerate(levels):
            wildcards = index or not dollar
            following: list[_Node] = []
            for node in nodes:
                children = node.children
                if children is None:
                    continue
                if wildcards:
                    rest = children.get("#")
                    if rest is not None:
                        matched.append(rest)
                    plus = children.get("+")
                    if plus is not None:
                        following.append(plus)
                literal = children.get(level)
                if literal is not None:
                    following.append(literal)
            if not following:
                break
            if index == last:
                for node in following:
                    matched.append(node)
                    children = node.children
                    if children is not None:
                        parent_match = children.get("#")  # "a/#" also matches "a"
                        if parent_match is not None:
                            matched.append(parent_match)
            nodes = following
        return self._deliveries(matched, publisher_id, is_available)

    @staticmethod
    def _deliveries(
        matched: list[_Node], publisher_id: str | None, is_available: Callable[[str], bool]
    ) -> list[Delivery]:
        by_client: dict[str, Delivery] = {}

        def add(subscription: Subscription) -> None:
            options = subscription.options
            delivery = by_client.get(subscription.client_id)
            if delivery is None:
                delivery = by_client[subscription.client_id] = Delivery(
                    subscription.client_id, options.qos, options.retain_as_published, []
                )
            else:
                delivery.qos = max(delivery.qos, options.qos)
                if options.retain_as_published:
                    delivery.retain_as_published = True
            if subscription.identifier is not None:
                delivery.identifiers.append(subscription.identifier)

        for node in matched:
            if node.subscribers:
                for client_id, subscription in node.subscribers.items():
                    if not (subscription.options.no_local and client_id == publisher_id):
                        add(subscription)
            if node.shares:
                for share in node.shares.values():
                    add(share.choose(is_available))
        return list(by_client.values())

    def _detach(self, client_id: str, node: _Node, share_name: str | None) -> None:
        """Remove the client from ``node`` and prune the nodes left empty, up to the root."""
        if share_name is None:
            assert node.subscribers is not None
            del node.subscribers[client_id]
            if not node.subscribers:
                node.subscribers = None
        else:
            assert node.shares is not None
            share = node.shares[share_name]
            share.remove(client_id)
            if not share.members:
                del node.shares[share_name]
                if not node.shares:
                    node.shares = None
        parent = node.parent
        while parent is not None and node.is_empty():
            assert parent.children is not None
            del parent.children[node.key]
            if not parent.children:
                parent.children = None
            node, parent = parent, parent.parent
