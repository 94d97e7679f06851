"""``iotdb status [--url URL]``: a running server's operations figures, read from its ``/metrics``.

The Prometheus text is parsed with ``prometheus_client``'s parser and shown as tables: the process (memory,
CPU, file descriptors, threads, uptime), the engine (read-only state, memtables, WAL, TsFiles per level,
flushes, disk), flushes and compactions (running now, done, failed, durations), MQTT and REST counters,
upstream ingestion and forwarding when configured, and query latency per service. Durations are shown as count,
mean and the 50th/90th/99th percentiles estimated from the histogram buckets, as Prometheus'
``histogram_quantile`` does.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from iotdb_core.cli.connection import DEFAULT_URL, PASSWORD_ENV, CliError
from iotdb_core.cli.table import format_table
from iotdb_core.errors import ConfigError
from iotdb_core.tls import client_context

__all__ = ["Figures", "estimate_quantile", "parse_metrics", "register", "render_status"]

_QUANTILES = (0.5, 0.9, 0.99)


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "status", help="show a running server's memory, engine, MQTT, REST and query latency figures",
        description="Read GET /metrics of a running `iotdb serve` (REST service on) and print it as tables.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"REST API of the server (default {DEFAULT_URL})")
    parser.add_argument("-u", "--user", default="root", help="user name (default root)")
    parser.add_argument("-pw", "--password", help=f"password (default: ${PASSWORD_ENV}, else root)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="request timeout (default 10)")
    parser.add_argument("--cafile", metavar="PEM",
                        help="CA certificates to check an https:// server's certificate against (default: the "
                             "system's)")
    parser.set_defaults(handler=run)


@dataclass
class Figures:
    """The figures of one scrape: plain values by family name, labelled ones, and histograms."""

    values: dict[str, float] = field(default_factory=dict)
    labelled: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))
    #: histogram name -> label value -> (cumulative buckets [(bound, count)], sum, count)
    histograms: dict[str, dict[str, tuple[list[tuple[float, float]], float, float]]] = field(default_factory=dict)

    def get(self, name: str, default: float = 0.0) -> float:
        """A plain value by its exposed name (a counter's ``_total`` suffix is optional)."""
        if name in self.values:
            return self.values[name]
        return self.values.get(name.removesuffix("_total"), default)


def parse_metrics(text: str) -> Figures:
    """The figures of a Prometheus text exposition (raises ``ValueError`` on text that does not parse)."""
    figures = Figures()
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            series: dict[str, Any] = {}
            for sample in family.samples:
                key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
                entry = series.setdefault(key, [[], 0.0, 0.0])
                if sample.name.endswith("_bucket"):
                    entry[0].append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_sum"):
                    entry[1] = sample.value
                elif sample.name.endswith("_count"):
                    entry[2] = sample.value
            figures.histograms[family.name] = {
                key.partition("=")[2] or key: (sorted(buckets), total, count)
                for key, (buckets, total, count) in series.items()
            }
            continue
        for sample in family.samples:
            if sample.labels:
                figures.labelled[family.name].append((dict(sample.labels), sample.value))
            else:
                figures.values[family.name] = sample.value
    return figures


def estimate_quantile(quantile: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``quantile`` of cumulative ``buckets`` by linear interpolation inside the bucket that holds it."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return math.nan
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / inside if inside else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def _bytes(value: float) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _count(value: float) -> str:
    return f"{int(value):,}"


def _section(title: str, rows: Iterable[tuple[str, str]]) -> str:
    return f"{title}\n" + format_table(("figure", "value"), list(rows))


def _process_rows(figures: Figures, now: float) -> list[tuple[str, str]]:
    if "process_start_time_seconds" not in figures.values:
        return [("process figures", "not reported on this platform")]
    started = figures.get("process_start_time_seconds")
    fds = f"{_count(figures.get('process_open_fds'))} of {_count(figures.get('process_max_fds'))}"
    return [
        ("resident memory", _bytes(figures.get("process_resident_memory_bytes"))),
        ("CPU time", f"{figures.get('process_cpu_seconds_total'):.1f} s"),
        ("open file descriptors", fds),
        *([("threads", _count(figures.get("process_threads")))] if "process_threads" in figures.values else []),
        ("started", datetime.fromtimestamp(started).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")),
        ("uptime", _uptime(max(0.0, now - started))),
    ]


def _read_only(figures: Figures) -> str:
    samples = figures.labelled.get("iotdb_read_only", [])
    for labels, value in samples:
        if value:
            return "READ-ONLY: " + (labels.get("reason") or "no reason given")
    return "writable" if samples else "not reported"


def _engine_rows(figures: Figures) -> list[tuple[str, str]]:
    if "iotdb_memtable_bytes" not in figures.values:
        return [("engine figures", "not reported by this storage backend")]
    files = {labels.get("level", "?"): value for labels, value in figures.labelled.get("iotdb_tsfiles", [])}
    sizes = {labels.get("level", "?"): value for labels, value in figures.labelled.get("iotdb_tsfile_bytes", [])}
    free, total = figures.get("iotdb_data_dir_free_bytes"), figures.get("iotdb_data_dir_total_bytes")
    rows = [
        ("state", _read_only(figures)),
        ("memtables", f"{_bytes(figures.get('iotdb_memtable_bytes'))}, "
                      f"{_count(figures.get('iotdb_memtable_points'))} points "
                      f"({_count(figures.get('iotdb_memtables_sealed'))} sealed; "
                      f"budget {_bytes(figures.get('iotdb_memtable_budget_bytes'))})"),
        ("WAL", f"{_bytes(figures.get('iotdb_wal_bytes'))} in {_count(figures.get('iotdb_wal_segments'))} segment(s)"),
    ]
    for level in sorted(files, key=lambda text: int(text) if text.isdigit() else math.inf):
        rows.append((f"TsFiles level {level}", f"{_count(files[level])} file(s), {_bytes(sizes.get(level, 0))}"))
    rows += [
        ("flushes", f"{_count(figures.get('iotdb_engine_flushes_total'))} "
                    f"({_count(figures.get('iotdb_engine_flushed_points_total'))} points, "
                    f"{_bytes(figures.get('iotdb_engine_flushed_bytes_total'))})"),
        ("disk free", f"{_bytes(free)} of {_bytes(total)}" + (f" ({100 * free / total:.1f}%)" if total else "")),
    ]
    return rows


def _durations(buckets: Sequence[tuple[float, float]], total: float, count: float) -> list[str]:
    """Count, mean and the estimated percentiles of one histogram series."""
    mean = total / count if count else math.nan
    return [_count(count), _duration(mean), *(_duration(estimate_quantile(q, buckets)) for q in _QUANTILES)]


_WORK = (("flush", "iotdb_flush_duration_seconds", "iotdb_flushes_running", "iotdb_flush_failures_total"),
         ("compaction", "iotdb_compaction_duration_seconds", "iotdb_compactions_running",
          "iotdb_compaction_failures_total"))


def _work_table(figures: Figures) -> str:
    rows = []
    for work, histogram, running, failed in _WORK:
        series = figures.histograms.get(histogram)
        if series is None:
            continue
        buckets, total, count = series.get("", ([], 0.0, 0.0))
        rows.append([work, _count(figures.get(running)), _count(figures.get(failed)),
                     *_durations(buckets, total, count)])
    if not rows:
        return "Flushes and compactions\nnot reported by this storage backend"
    return "Flushes and compactions\n" + format_table(
        ("work", "running", "failed", "done", "mean", "p50", "p90", "p99"), rows)


def _mqtt_rows(figures: Figures) -> list[tuple[str, str]]:
    return [
        ("connections open", _count(figures.get("iotdb_mqtt_connections_current"))),
        ("connections accepted / refused", f"{_count(figures.get('iotdb_mqtt_connections_total'))} / "
                                           f"{_count(figures.get('iotdb_mqtt_connections_refused'))}"),
        ("publishes received", _count(figures.get("iotdb_mqtt_publishes_received"))),
        ("rows / points written", f"{_count(figures.get('iotdb_rows_written'))} / "
                                  f"{_count(figures.get('iotdb_points_written'))}"),
        ("payloads / points rejected", f"{_count(figures.get('iotdb_mqtt_payloads_rejected'))} / "
                                       f"{_count(figures.get('iotdb_points_rejected'))}"),
        ("bytes received / sent", f"{_bytes(figures.get('iotdb_mqtt_bytes_received'))} / "
                                  f"{_bytes(figures.get('iotdb_mqtt_bytes_sent'))}"),
    ]


def _upstream_rows(figures: Figures) -> list[tuple[str, str]]:
    return [
        ("brokers connected", _count(figures.get("iotdb_mqtt_upstream_connections_current"))),
        ("connections accepted / failed", f"{_count(figures.get('iotdb_mqtt_upstream_connects_total'))} / "
                                          f"{_count(figures.get('iotdb_mqtt_upstream_connect_failures'))}"),
        ("messages received / acknowledged", f"{_count(figures.get('iotdb_mqtt_upstream_messages_received'))} / "
                                             f"{_count(figures.get('iotdb_mqtt_upstream_messages_acknowledged'))}"),
    ]


def _forward_rows(figures: Figures) -> list[tuple[str, str]]:
    errors = figures.labelled.get("iotdb_forward_last_error_timestamp_seconds", [])
    rows = [
        ("target", "up" if figures.get("iotdb_forward_target_up") else "not acknowledging"),
        ("lag", f"{_count(figures.get('iotdb_forward_backlog_points'))} points, "
                f"{figures.get('iotdb_forward_lag_seconds'):.1f} s"),
        ("backlog", f"{_bytes(figures.get('iotdb_forward_backlog_bytes'))} of "
                    f"{_bytes(figures.get('iotdb_forward_backlog_max_bytes'))}"),
        ("points forwarded", _count(figures.get("iotdb_forward_points_forwarded"))),
        ("failed sends / refused writes", f"{_count(figures.get('iotdb_forward_send_failures'))} / "
                                          f"{_count(figures.get('iotdb_forward_writes_refused'))}"),
    ]
    for labels, at in errors:
        when = datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        rows.append(("last error", f"{when}: {labels.get('error', '?')}"))
    return rows


def _rest_rows(figures: Figures) -> list[tuple[str, str]]:
    return [
        ("requests", _count(figures.get("iotdb_rest_requests_total"))),
        ("failed / refused credentials", f"{_count(figures.get('iotdb_rest_requests_failed'))} / "
                                         f"{_count(figures.get('iotdb_rest_auth_failures'))}"),
        ("rows returned", _count(figures.get("iotdb_rest_rows_returned"))),
        ("points written", _count(figures.get("iotdb_rest_points_written"))),
    ]


def _latency_table(figures: Figures) -> str:
    rows = []
    for surface, (buckets, total, count) in sorted(figures.histograms.get("iotdb_query_duration_seconds", {}).items()):
        rows.append([surface, *_durations(buckets, total, count)])
    if not rows:
        return "Query latency\nno queries yet"
    return "Query latency\n" + format_table(("service", "queries", "mean", "p50", "p90", "p99"), rows)


def render_status(url: str, figures: Figures, now: float | None = None) -> str:
    """The tables ``iotdb status`` prints."""
    now = time.time() if now is None else now
    return "\n\n".join([
        f"iotdb server at {url}",
        _section("Process", _process_rows(figures, now)),
        _section("Engine", _engine_rows(figures)),
        _work_table(figures),
        _section("MQTT", _mqtt_rows(figures)),
        *([_section("MQTT upstream", _upstream_rows(figures))]
          if figures.get("iotdb_mqtt_upstream_connects_total") or figures.get("iotdb_mqtt_upstream_connect_failures")
          else []),
        *([_section("Forwarding", _forward_rows(figures))] if "iotdb_forward_backlog_points" in figures.values else []),
        _section("REST", _rest_rows(figures)),
        _latency_table(figures),
    ]) + "\n"


def fetch_metrics(url: str, user: str, password: str, timeout: float, cafile: str | None = None) -> str:
    """``GET <url>/metrics`` with Basic credentials (over HTTPS checked against ``cafile`` or the system's CAs);
    CliError with one line when it fails."""
    target = url.rstrip("/") + "/metrics"
    if cafile and not target.startswith("https://"):
        raise CliError(f"--url {url}: --cafile needs an https:// URL")
    context = client_context(cafile) if target.startswith("https://") else None
    request = urllib.request.Request(target)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        detail = "wrong user or password" if exc.code == 401 else exc.reason
        raise CliError(f"{target} answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach {target}: {reason} (is `iotdb serve` running with enable_rest_service=true?)"
        ) from None


def run(args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV, "root")
    try:
        text = fetch_metrics(args.url, args.user, password, args.timeout, args.cafile)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        figures = parse_metrics(text)
    except ValueError as exc:
        raise CliError(f"{args.url}/metrics is not Prometheus text: {exc}") from None
    print(render_status(args.url, figures), end="")
    return 0
