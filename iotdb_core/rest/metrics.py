"""``GET /metrics``: service counters, engine and process figures and latency histograms in Prometheus' text
exposition format (version 0.0.4).

- Each counter ``name`` of :class:`~iotdb_core.metrics.ServiceCounters` becomes ``iotdb_<name>`` with
  ``# HELP`` and ``# TYPE`` lines: ``gauge`` for the ``*_current`` ones, ``counter`` for the others. The REST
  service adds its own counters (:data:`REST_COUNTERS`) to the set the MQTT service updates.
- The engine's snapshot (:class:`~iotdb_core.storage.stats.EngineStats`) becomes the gauges of
  :data:`ENGINE_GAUGES` (``iotdb_memtable_bytes``, ``iotdb_wal_bytes``, ``iotdb_tsfiles{level}``,
  ``iotdb_flushes_running``, ``iotdb_read_only{reason}``, ``iotdb_data_dir_free_bytes``, ...), the counters of
  :data:`ENGINE_COUNTERS` (failed flushes and compactions) and the histograms of :data:`ENGINE_HISTOGRAMS`
  (``iotdb_flush_duration_seconds``, ``iotdb_compaction_duration_seconds``; their ``_count`` is the number done).
- Figures plugins report through the ``iotdb_metrics`` hook become ``iotdb_<name>`` with their labels.
- Each histogram becomes ``iotdb_<name>_bucket{[<label>,]le}``, ``_sum`` and ``_count``.
- Process figures keep Prometheus' standard names (``process_resident_memory_bytes``, ...).

The text is written here rather than by ``prometheus_client``'s ``generate_latest``, which would rename every
counter to ``<name>_total`` and so change the names scrapers already use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from iotdb_core.engine_metrics import ProcessFigure
from iotdb_core.metrics import COUNTERS, Histogram, HistogramSample, MetricFigure, ServiceCounters

if TYPE_CHECKING:
    from iotdb_core.storage.stats import EngineStats

__all__ = ["CONTENT_TYPE", "ENGINE_COUNTERS", "ENGINE_GAUGES", "ENGINE_HISTOGRAMS", "PREFIX", "REST_COUNTERS",
           "render"]

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
    "memtable_bytes": "bytes held by the memtables not yet in a TsFile (the one taking writes and the sealed ones)",
    "memtable_points": "points held by the memtables not yet in a TsFile",
    "memtables_sealed": "sealed memtables waiting for (or in) a flush",
    "memtable_budget_bytes": "memory all memtables may use (memtable_memory_budget_in_byte)",
    "flushes_running": "memtable flushes running now",
    "compactions_running": "compactions running now",
    "read_only": "1 while the engine refuses writes (full or unwritable disk, reason in the label), else 0",
    "wal_bytes": "bytes of records in the write-ahead log segments",
    "wal_segments": "write-ahead log segment files",
    "tsfiles": "live TsFiles, by compaction level",
    "tsfile_bytes": "bytes of the live TsFiles, by compaction level",
    "data_dir_free_bytes": "free bytes of the file system holding the data directory",
    "data_dir_total_bytes": "size in bytes of the file system holding the data directory",
}

#: The engine counters with their meaning.
ENGINE_COUNTERS: dict[str, str] = {
    "flush_failures_total": "memtable flushes that failed (retried)",
    "compaction_failures_total": "compactions that failed (retried)",
}

#: The engine histograms with their meaning; ``_count`` is the number of flushes or compactions done.
ENGINE_HISTOGRAMS: dict[str, str] = {
    "flush_duration_seconds": "time to write a sealed memtable to a TsFile and record it in the manifest",
    "compaction_duration_seconds": "time to merge the files of a level into one of the next and record it",
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


def _engine_values(stats: EngineStats) -> dict[str, list[tuple[str, float]]]:
    """Every engine gauge and counter as (labels, value) samples."""
    def levels(attribute: str) -> list[tuple[str, float]]:
        return [(f'level="{level.level}"', getattr(level, attribute)) for level in stats.levels] or [('level="0"', 0)]

    return {
        "memtable_bytes": [("", stats.memtable_bytes)],
        "memtable_points": [("", stats.memtable_points)],
        "memtables_sealed": [("", stats.sealed_memtables)],
        "memtable_budget_bytes": [("", stats.memtable_budget_bytes)],
        "flushes_running": [("", stats.flushes.running)],
        "compactions_running": [("", stats.compactions.running)],
        "read_only": [(f'reason="{_label(stats.read_only_reason)}"', 0 if stats.writable else 1)],
        "wal_bytes": [("", stats.wal_bytes)],
        "wal_segments": [("", stats.wal_segments)],
        "tsfiles": levels("files"),
        "tsfile_bytes": levels("bytes"),
        "data_dir_free_bytes": [("", stats.disk_free_bytes)],
        "data_dir_total_bytes": [("", stats.disk_total_bytes)],
        "flush_failures_total": [("", stats.flushes.failed)],
        "compaction_failures_total": [("", stats.compactions.failed)],
    }


def _samples(lines: list[str], metric: str, samples: Iterable[tuple[str, float]]) -> None:
    for labels, number in samples:
        lines.append(f"{metric}{{{labels}}} {_number(number)}" if labels else f"{metric} {_number(number)}")


def _engine(lines: list[str], stats: EngineStats) -> None:
    values = _engine_values(stats)
    for kinds, kind in ((ENGINE_GAUGES, "gauge"), (ENGINE_COUNTERS, "counter")):
        for name, description in kinds.items():
            _family(lines, PREFIX + name, kind, description)
            _samples(lines, PREFIX + name, values[name])
    durations = {"flush_duration_seconds": stats.flushes.durations,
                 "compaction_duration_seconds": stats.compactions.durations}
    for name, description in ENGINE_HISTOGRAMS.items():
        _family(lines, PREFIX + name, "histogram", description)
        _histogram_series(lines, PREFIX + name, "", durations[name])


def _histogram_series(lines: list[str], metric: str, label: str, sample: HistogramSample) -> None:
    """One series' buckets, sum and count; ``label`` is ``name="value"`` or empty."""
    prefix = f"{label}," if label else ""
    for bound, count in sample.buckets:
        lines.append(f'{metric}_bucket{{{prefix}le="{_number(bound)}"}} {count}')
    suffix = f"{{{label}}}" if label else ""
    lines.append(f"{metric}_sum{suffix} {_number(sample.total)}")
    lines.append(f"{metric}_count{suffix} {sample.count}")


def _histogram(lines: list[str], histogram: Histogram) -> None:
    metric = PREFIX + histogram.name
    _family(lines, metric, "histogram", histogram.description)
    for label_value, sample in histogram.snapshot().items():
        _histogram_series(lines, metric, f'{histogram.label}="{_label(label_value)}"', sample)


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
    engine: EngineStats | None = None,
    process: Iterable[ProcessFigure] = (),
    plugins: Iterable[MetricFigure] = (),
) -> str:
    """The exposition text: counters in declaration order, then the engine's figures, plugins' figures,
    histograms, process figures."""
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
