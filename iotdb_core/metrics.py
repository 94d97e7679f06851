"""Service counters and latency histograms kept in one place, for the CLI, the REST API and the logs.

Counters only go up (except ``*_current`` gauges) and are safe to update from any thread. Histograms
(:class:`Histogram`) count observations into fixed buckets per label value, so every surface that runs
queries (REST now, the native RPC service later) records into the same ``query_duration_seconds`` with its
own ``surface`` label.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pluggy

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
    "mqtt_upstream_connections_current": "upstream brokers connected now",
    "mqtt_upstream_connects_total": "connections upstream brokers accepted",
    "mqtt_upstream_connect_failures": "connection attempts to upstream brokers that failed or were refused",
    "mqtt_upstream_messages_received": "messages received from upstream brokers",
    "mqtt_upstream_messages_acknowledged": "QoS 1 and 2 messages acknowledged to upstream brokers once durable",
    "engine_flushes_total": "memtables flushed into TsFiles (counted through the iotdb_after_flush hook)",
    "engine_flushed_bytes_total": "bytes of the TsFiles written by flushes",
    "engine_flushed_points_total": "points written into TsFiles by flushes",
}

#: Name of the query latency histogram; its label ``surface`` says which service ran the query.
QUERY_DURATION = "query_duration_seconds"
#: Upper bounds (seconds) of the query latency buckets, from a cached LAST to a scan of millions of points.
QUERY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
#: Every histogram with its meaning, label name and bucket bounds.
HISTOGRAMS: dict[str, tuple[str, str, Sequence[float]]] = {
    QUERY_DURATION: ("time to parse, run and encode a query, by the service that ran it", "surface", QUERY_BUCKETS),
}


@dataclass(frozen=True)
class MetricFigure:
    """One figure a plugin reports through ``iotdb_metrics``: exposed as ``iotdb_<name>`` with its labels.

    ``kind`` is ``gauge`` or ``counter``; figures of one name should come together and share description
    and kind.
    """

    name: str
    value: float
    description: str
    kind: str = "gauge"
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HistogramSample:
    """One series' observations: cumulative counts per bucket bound (``+Inf`` last), sum and count."""

    buckets: tuple[tuple[float, int], ...]
    total: float
    count: int


def check_bounds(name: str, bounds: Sequence[float]) -> tuple[float, ...]:
    """``bounds`` as floats; ValueError naming ``name`` unless they are non-empty and strictly increasing."""
    if list(bounds) != sorted(set(bounds)) or not bounds:
        raise ValueError(f"histogram {name}: bucket bounds must be increasing, got {list(bounds)}")
    return tuple(float(bound) for bound in bounds)


def _sample(bounds: tuple[float, ...], counts: Sequence[int], total: float) -> HistogramSample:
    running = 0
    buckets = []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        buckets.append((bound, running))
    return HistogramSample(tuple(buckets), total, running)


class Buckets:
    """Observations of one unlabelled series counted into fixed buckets; thread-safe.

    The storage engine times its flushes and compactions with it (``EngineStats``), which ``/metrics`` shows
    as histograms.
    """

    def __init__(self, bounds: Sequence[float], name: str = "buckets") -> None:
        self.bounds = check_bounds(name, bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._total += value

    def snapshot(self) -> HistogramSample:
        with self._lock:
            counts, total = list(self._counts), self._total
        return _sample(self.bounds, counts, total)


class Histogram:
    """Observations counted into fixed buckets, one series per value of a single label; thread-safe."""

    def __init__(self, name: str, description: str, label: str, bounds: Sequence[float]) -> None:
        self.name = name
        self.description = description
        self.label = label
        self.bounds = check_bounds(name, bounds)
        self._series: dict[str, Buckets] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, label_value: str) -> None:
        """Count ``value`` (e.g. seconds) for ``label_value``."""
        series = self._series.get(label_value)
        if series is None:
            with self._lock:
                series = self._series.setdefault(label_value, Buckets(self.bounds, self.name))
        series.observe(value)

    def snapshot(self) -> dict[str, HistogramSample]:
        """Every label value's cumulative buckets, sum and count, at one instant."""
        with self._lock:
            series = sorted(self._series.items())
        return {key: buckets.snapshot() for key, buckets in series}


class ServiceCounters:
    """A set of named integer counters."""

    def __init__(
        self,
        names: Iterable[str] = COUNTERS,
        histograms: Mapping[str, tuple[str, str, Sequence[float]]] = HISTOGRAMS,
    ) -> None:
        self._values = dict.fromkeys(names, 0)
        self._lock = threading.Lock()
        self._histograms = {
            name: Histogram(name, description, label, bounds)
            for name, (description, label, bounds) in histograms.items()
        }

    def histogram(self, name: str) -> Histogram:
        """The histogram ``name`` (e.g. :data:`QUERY_DURATION`)."""
        return self._histograms[name]

    def histograms(self) -> list[Histogram]:
        """Every histogram, in declaration order."""
        return list(self._histograms.values())

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


def plugin_figures(plugins: pluggy.PluginManager) -> list[MetricFigure]:
    """Every figure the plugins report through ``iotdb_metrics``, in registration order."""
    return [figure for figures in plugins.hook.iotdb_metrics() for figure in figures]
