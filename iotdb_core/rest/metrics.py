"""``GET /metrics``: service counters, engine and process figures and latency histograms in Prometheus' text
exposition format (version 0.0.4).

- Each counter ``name`` of :class:`~iotdb_core.metrics.ServiceCounters` becomes ``iotdb_<name>`` with
  ``# HELP`` and ``# TYPE`` lines: ``gauge`` for the ``*_current`` ones, ``counter`` for the others. The REST
  service adds its own counters (:data:`REST_COUNTERS`) to the set the MQTT service updates.
- Engine figures (:func:`~iotdb_core.engine_metrics.engine_figures`) are gauges: ``iotdb_wal_bytes``,
  ``iotdb_wal_segments``, ``iotdb_tsfiles{level}``, ``iotdb_tsfile_bytes{level}``,
  ``iotdb_data_dir_free_bytes``, ``iotdb_data_dir_total_bytes``.
- Figures plugins report through the ``iotdb_metrics`` hook become ``iotdb_<name>`` with their labels.
- Each histogram becomes ``iotdb_<name>_bucket{<label>,le}``, ``_sum`` and ``_count``.
- Process figures keep Prometheus' standard names (``process_resident_memory_bytes``, ...).

The text is written here rather than by ``prometheus_client``'s ``generate_latest``, which would rename every
counter to ``<name>_total`` and so change the names scrapers already use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from iotdb_core.engine_metrics import EngineFigures, ProcessFigure
from iotdb_core.metrics import COUNTERS, Histogram, MetricFigure, ServiceCounters

__all__ = ["CONTENT_TYPE", "ENGINE_GAUGES", "PREFIX", "REST_COUNTERS", "render"]

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

#: The engine gauges with their meaning.
ENGINE_GAUGES: dict[str, str] = {
    "wal_bytes": "bytes in the write-ahead log segments",
    "wal_segments": "write-ahead log segment files",
    "tsfiles": "live TsFiles, by compaction level",
    "tsfile_bytes": "bytes of the live TsFiles, by compaction level",
    "data_dir_free_bytes": "free bytes of the file system holding the data directory",
    "data_dir_total_bytes": "size in bytes of the file system holding the data directory",
}


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, description: str) -> None:
    lines.append(f"# HELP {name} {_escape_help(description)}")
    lines.append(f"# TYPE {name} {kind}")


def _counters(lines: list[str], counters: ServiceCounters, known: Mapping[str, str]) -> None:
    for name, value in counters.snapshot().items():
        metric = PREFIX + name
        kind = "gauge" if name.endswith("_current") else "counter"
        _family(lines, metric, kind, known.get(name, name.replace("_", " ")))
        lines.append(f"{metric} {value}")


def _engine(lines: list[str], figures: EngineFigures) -> None:
    plain = {
        "wal_bytes": figures.wal_bytes,
        "wal_segments": figures.wal_segments,
        "data_dir_free_bytes": figures.disk_free_bytes,
        "data_dir_total_bytes": figures.disk_total_bytes,
    }
    by_level = {"tsfiles": figures.tsfiles_by_level, "tsfile_bytes": figures.tsfile_bytes_by_level}
    for name, description in ENGINE_GAUGES.items():
        metric = PREFIX + name
        _family(lines, metric, "gauge", description)
        if name in plain:
            lines.append(f"{metric} {plain[name]}")
        else:
            for level, value in sorted((by_level[name] or {0: 0}).items()):
                lines.append(f'{metric}{{level="{level}"}} {value}')


def _histogram(lines: list[str], histogram: Histogram) -> None:
    metric = PREFIX + histogram.name
    _family(lines, metric, "histogram", histogram.description)
    for label_value, sample in histogram.snapshot().items():
        label = f'{histogram.label}="{_label(label_value)}"'
        for bound, count in sample.buckets:
            lines.append(f'{metric}_bucket{{{label},le="{_number(bound)}"}} {count}')
        lines.append(f"{metric}_sum{{{label}}} {_number(sample.total)}")
        lines.append(f"{metric}_count{{{label}}} {sample.count}")


def _plugin_figures(lines: list[str], figures: Iterable[MetricFigure]) -> None:
    declared: set[str] = set()
    for figure in figures:
        metric = PREFIX + figure.name
        if metric not in declared:
            declared.add(metric)
            _family(lines, metric, figure.kind, figure.description)
        labels = ",".join(f'{key}="{_label(value)}"' for key, value in figure.labels)
        lines.append(f"{metric}{{{labels}}} {_number(figure.value)}" if labels else f"{metric} {_number(figure.value)}")


def _process(lines: list[str], figures: Iterable[ProcessFigure]) -> None:
    for figure in figures:
        _family(lines, figure.name, figure.kind, figure.description)
        lines.append(f"{figure.name} {_number(figure.value)}")


def render(
    counters: ServiceCounters,
    descriptions: Mapping[str, str] | None = None,
    *,
    engine: EngineFigures | None = None,
    process: Iterable[ProcessFigure] = (),
    plugins: Iterable[MetricFigure] = (),
) -> str:
    """The exposition text: counters in declaration order, then engine gauges, plugins' figures, histograms,
    process figures."""
    known = {**COUNTERS, **REST_COUNTERS, **(descriptions or {})}
    lines: list[str] = []
    _counters(lines, counters, known)
    if engine is not None:
        _engine(lines, engine)
    _plugin_figures(lines, plugins)
    for histogram in counters.histograms():
        _histogram(lines, histogram)
    _process(lines, process)
    return "\n".join(lines) + "\n"
