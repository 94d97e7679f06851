"""What the surfaces that hold client connections (MQTT today) let the REST service and console see.

``iotdb_core`` does not import ``iotdb_mqtt``: a service that keeps live connections implements the
:class:`ClientDirectory` protocol and registers it in the :class:`ClientRegistry` that ``iotdb serve`` hands to
the REST service; a broker also registers a :class:`TopicTap`, through which the console watches the messages
published to a topic filter. Directories and taps are called on the event loop, where the connections live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ClientDirectory", "ClientInfo", "ClientRegistry", "TopicMessage", "TopicRefused", "TopicSink",
           "TopicTap"]


@dataclass(frozen=True)
class ClientInfo:
    """One connected client.

    ``connected_since`` is wall-clock seconds since the epoch. ``messages_in`` and ``messages_out`` are
    ``None`` when the service does not count them per connection.
    """

    client_id: str
    username: str | None
    address: str
    protocol: str
    protocol_level: int
    keep_alive: int
    connected_since: float
    messages_in: int | None = None
    messages_out: int | None = None


@runtime_checkable
class ClientDirectory(Protocol):
    """The live connections of one service."""

    def clients(self) -> list[ClientInfo]:
        """The clients connected now."""
        ...

    def disconnect(self, client_id: str) -> bool:
        """Close the connection of ``client_id``; False when no such client is connected."""
        ...


@dataclass(frozen=True, slots=True)
class TopicMessage:
    """One message a broker routed (or holds retained), as a watcher sees it.

    ``retain`` is the flag as published (True for the retained messages sent when a watch starts);
    ``received_at`` is wall-clock seconds since the epoch when the watcher got it.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: float


class TopicRefused(Exception):
    """A topic filter a tap will not watch for this user; the message says why, for the user.

    ``forbidden`` is True when the filter is valid but the user lacks the right to read it.
    """

    def __init__(self, message: str, *, forbidden: bool) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class TopicSink(Protocol):
    """Where a watch delivers; both calls come on the event loop and must return at once (never block)."""

    def offer(self, message: TopicMessage) -> None:
        """One more message (a sink that cannot keep up drops it and counts)."""
        ...

    def end(self, reason: str) -> None:
        """The watch ended on the broker's side (for instance the user lost the right to read the filter)."""
        ...


@runtime_checkable
class TopicTap(Protocol):
    """The messages a broker routes, watched by topic filter under a user's subscribe rights."""

    def watch(self, user: str, topic_filter: str, sink: TopicSink) -> Callable[[], None]:
        """Start sending ``sink`` the retained messages matching ``topic_filter``, then every message routed to a
        matching topic; returns the function that stops the watch.

        Raises :class:`TopicRefused` when the filter is invalid or ``user`` may not subscribe to it.
        """
        ...


class ClientRegistry:
    """The directories of every running service, seen as one, and the broker's topic tap."""

    def __init__(self) -> None:
        self._directories: list[ClientDirectory] = []
        self._tap: TopicTap | None = None

    def register(self, directory: ClientDirectory) -> None:
        """Add the connections of a service that has started."""
        self._directories.append(directory)

    def register_tap(self, tap: TopicTap) -> None:
        """Make a started broker's messages watchable."""
        self._tap = tap

    @property
    def tap(self) -> TopicTap | None:
        """The broker's topic tap; ``None`` while no broker runs."""
        return self._tap

    def clients(self) -> list[ClientInfo]:
        """Every connected client of every registered service, by client id."""
        found = [client for directory in self._directories for client in directory.clients()]
        return sorted(found, key=lambda client: client.client_id)

    def disconnect(self, client_id: str) -> bool:
        """Close ``client_id`` wherever it is connected; False when it is nowhere."""
        return any([directory.disconnect(client_id) for directory in self._directories])
