"""Topic name and topic filter rules (spec section 4.7)."""

from __future__ import annotations

from typing import Final

from .errors import InvalidTopicFilter, InvalidTopicName
from .primitives import utf8_problem

SHARED_PREFIX: Final = "$share/"


def topic_name_problem(topic: str) -> str | None:
    """Why ``topic`` is not a valid topic name, or ``None`` if it is."""
    if not topic:
        return "topic name is empty"
    if "+" in topic or "#" in topic:
        return f"topic name {topic!r} contains a wildcard character"
    problem = utf8_problem(topic)
    return None if problem is None else f"topic name {problem}"


def _plain_filter_problem(topic_filter: str) -> str | None:
    if not topic_filter:
        return "topic filter is empty"
    if "+" not in topic_filter and "#" not in topic_filter:
        return None
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            return f"topic filter {topic_filter!r}: '#' must be the whole last level"
        if "+" in level and level != "+":
            return f"topic filter {topic_filter!r}: '+' must occupy a whole level"
    return None


def topic_filter_problem(topic_filter: str, *, shared: bool = True) -> str | None:
    """Why ``topic_filter`` is not a valid topic filter, or ``None`` if it is.

    With ``shared`` (MQTT 5), a filter starting with ``$share/`` must be
    ``$share/{ShareName}/{filter}`` where ShareName is non-empty without ``/``, ``+`` or ``#``.
    """
    problem = utf8_problem(topic_filter)
    if problem is not None:
        return f"topic filter {problem}"
    if shared and topic_filter.startswith(SHARED_PREFIX):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3:
            return f"shared subscription {topic_filter!r} must have the form $share/ShareName/filter"
        share_name = parts[1]
        if not share_name or "+" in share_name or "#" in share_name:
            return f"shared subscription {topic_filter!r} has an invalid share name {share_name!r}"
        return _plain_filter_problem(parts[2])
    return _plain_filter_problem(topic_filter)


def is_shared_filter(topic_filter: str) -> bool:
    """True if ``topic_filter`` uses the MQTT 5 shared subscription syntax."""
    return topic_filter.startswith(SHARED_PREFIX)


def validate_topic_name(topic: str) -> None:
    """Raise :class:`InvalidTopicName` unless ``topic`` may appear in a PUBLISH."""
    problem = topic_name_problem(topic)
    if problem is not None:
        raise InvalidTopicName(problem)


def validate_topic_filter(topic_filter: str, *, shared: bool = True) -> None:
    """Raise :class:`InvalidTopicFilter` unless ``topic_filter`` may appear in SUBSCRIBE/UNSUBSCRIBE."""
    problem = topic_filter_problem(topic_filter, shared=shared)
    if problem is not None:
        raise InvalidTopicFilter(problem)


def topic_matches_filter(topic: str, topic_filter: str) -> bool:
    """True if topic name ``topic`` matches the (valid, non-shared) ``topic_filter``.

    ``+`` matches one whole level, ``#`` the rest of the topic including its parent level, and a filter
    starting with a wildcard does not match a topic starting with ``$`` [MQTT-4.7.2-1].
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    parts = topic_filter.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(parts) == len(levels)
