"""What the surfaces that hold client connections (MQTT today) let the REST service and console see.

``iotdb_core`` does not import ``iotdb_mqtt``: a service that keeps live connections implements the
:class:`ClientDirectory` protocol and registers it in the :class:`ClientRegistry` that ``iotdb serve`` hands to
the REST service. Directories are called on the event loop, where the connections live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ClientDirectory", "ClientInfo", "ClientRegistry"]


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


class ClientRegistry:
    """The directories of every running service, seen as one."""

    def __init__(self) -> None:
        self._directories: list[ClientDirectory] = []

    def register(self, directory: ClientDirectory) -> None:
        """Add the connections of a service that has started."""
        self._directories.append(directory)

    def clients(self) -> list[ClientInfo]:
        """Every connected client of every registered service, by client id."""
        found = [client for directory in self._directories for client in directory.clients()]
        return sorted(found, key=lambda client: client.client_id)

    def disconnect(self, client_id: str) -> bool:
        """Close ``client_id`` wherever it is connected; False when it is nowhere."""
        return any([directory.disconnect(client_id) for directory in self._directories])
