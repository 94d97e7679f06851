"""``GET /metrics``: the service counters in Prometheus' text exposition format (version 0.0.4).

Each counter ``name`` of :class:`~iotdb_core.metrics.ServiceCounters` becomes ``iotdb_<name>`` with ``# HELP``
and ``# TYPE`` lines: ``gauge`` for the ``*_current`` ones, ``counter`` for the others. The REST service adds
its own counters (:data:`REST_COUNTERS`) to the set the MQTT service updates, so one scrape shows both.
"""

from __future__ import annotations

from collections.abc import Mapping

from iotdb_core.metrics import COUNTERS, ServiceCounters

__all__ = ["CONTENT_TYPE", "PREFIX", "REST_COUNTERS", "render"]

PREFIX = "iotdb_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The REST service's counters with their meaning (added to :data:`iotdb_core.metrics.COUNTERS`).
REST_COUNTERS: dict[str, str] = {
    "rest_requests_total": "REST requests received",
    "rest_requests_failed": "REST requests answered with an error status (authentication, validation, execution)",
    "rest_auth_failures": "REST requests refused for missing or wrong credentials",
    "rest_rows_returned": "rows returned by REST queries",
    "rest_points_written": "points (values) written through the REST API",
}


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render(counters: ServiceCounters, descriptions: Mapping[str, str] | None = None) -> str:
    """The exposition text of every counter, in the order the counters were declared."""
    known = {**COUNTERS, **REST_COUNTERS, **(descriptions or {})}
    lines = []
    for name, value in counters.snapshot().items():
        metric = PREFIX + name
        kind = "gauge" if name.endswith("_current") else "counter"
        lines.append(f"# HELP {metric} {_escape_help(known.get(name, name.replace('_', ' ')))}")
        lines.append(f"# TYPE {metric} {kind}")
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"
