"""Service counters kept in one place, for the CLI, the REST API and the logs.

Counters only go up (except ``*_current`` gauges) and are safe to update from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

#: Every counter with its meaning; the names are the keys of :meth:`ServiceCounters.snapshot`.
COUNTERS: dict[str, str] = {
    "mqtt_connections_current": "MQTT connections open now",
    "mqtt_connections_total": "MQTT connections accepted",
    "mqtt_connections_refused": "MQTT connections refused (bad credentials, limits, protocol)",
    "mqtt_publishes_received": "PUBLISH packets received",
    "mqtt_payloads_rejected": "payloads the formatter or the engine rejected (kept in the dead-letter log)",
    "rows_written": "rows written by the MQTT service",
    "points_written": "points (values) written by the MQTT service",
    "points_rejected": "values rejected by the engine (kept in the dead-letter log)",
    "mqtt_bytes_received": "bytes read from MQTT clients",
    "mqtt_bytes_sent": "bytes written to MQTT clients",
    "mqtt_messages_routed": "published messages routed to subscribers (whether or not any matched)",
    "mqtt_messages_sent": "copies of messages handed to subscriber sessions",
    "mqtt_messages_dropped": "copies dropped: a subscriber's queue full, expired, or too large for it",
    "mqtt_subscriptions_current": "MQTT subscriptions now",
    "mqtt_retained_current": "retained MQTT messages now",
}


class ServiceCounters:
    """A set of named integer counters."""

    def __init__(self, names: Iterable[str] = COUNTERS) -> None:
        self._values = dict.fromkeys(names, 0)
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` (may be negative for a gauge) to counter ``name``."""
        with self._lock:
            self._values[name] += amount

    def get(self, name: str) -> int:
        """The current value of ``name``."""
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        """All counters at one instant."""
        with self._lock:
            return dict(self._values)
