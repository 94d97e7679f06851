"""The data explorer's answers: the series tree, a device's series statistics, and downsampled plots.

Everything goes through the SQL layer (:func:`iotdb_core.query.parse` and :func:`~iotdb_core.query.execute`) as
the logged-in user, as the REST API does: the tree lists only what the user's READ_SCHEMA covers, statistics and
plots need READ_DATA. A plot of a range holding more points than the chart has pixel columns is an exact
``GROUP BY`` with at most one window per column (count, min, max and mean), on a grid aligned to the TsFiles'
block statistics (:func:`plot_grid`): a window bound then cuts no block, so the aggregate pushdown answers
every window from the blocks' statistics and reads as points only what has none (the memtable, files that
newer data or tombstones overlap, the blocks the range's own ends cut).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from iotdb_core.auth import Session
from iotdb_core.authz import Privilege
from iotdb_core.config import Settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.paths import canonical_node, join_path, split_path
from iotdb_core.query import ExecutionStats, MetadataResult, ResultSet, execute, parse
from iotdb_core.rest.convert import column_to_json
from iotdb_core.storage.blockstats import MIN_BLOCK_POINTS, ladder

__all__ = ["MAX_PLOT_POINTS", "PlotRequest", "device_series", "plot", "plot_grid", "series_tree"]

#: Most windows (pixel columns) a plot may ask for.
MAX_PLOT_POINTS = 4000
_NUMERIC = {"INT32", "INT64", "FLOAT", "DOUBLE"}


class ExplorerError(ValueError):
    """A request the explorer cannot answer; the message says why."""


def _metadata(engine: Any, settings: Settings, sql: str, session: Session | None) -> MetadataResult:
    result = execute(engine, parse(sql), settings=settings, session=session)
    assert isinstance(result, MetadataResult)
    return result


def _select(
    engine: Any, settings: Settings, sql: str, session: Session, stats: ExecutionStats | None = None
) -> ResultSet:
    result = execute(engine, parse(sql), settings=settings, session=session, stats=stats)
    assert isinstance(result, ResultSet)
    return result


def series_tree(engine: Any, settings: Settings, session: Session) -> dict[str, Any]:
    """Databases, devices, and every series with its database, type, encoding and compression, as far as
    the user's READ_SCHEMA covers them."""
    databases = [row[0] for row in _metadata(engine, settings, "SHOW DATABASES", session).rows()]
    devices = [row[0] for row in _metadata(engine, settings, "SHOW DEVICES", session).rows()]
    series = []
    for row in _metadata(engine, settings, "SHOW TIMESERIES", session).to_dicts():
        nodes = split_path(row["timeseries"])
        series.append({
            "path": row["timeseries"], "device": join_path(*nodes[:-1]), "measurement": nodes[-1],
            "database": row["database"], "type": row["dataType"], "encoding": row["encoding"],
            "compression": row["compression"],
        })
    return {"databases": databases, "devices": devices, "series": series}


def device_series(engine: Any, settings: Settings, device: str, session: Session) -> list[dict[str, Any]]:
    """Count, first and last time of each series of ``device`` the user may read (answered from statistics)."""
    nodes = split_path(device)
    result = _select(engine, settings, f"SELECT count(*), min_time(*), max_time(*) FROM {join_path(*nodes)}",
                     session)
    row = result.rows()[0] if len(result) else ()
    stats: dict[str, dict[str, Any]] = {}
    for name, value in zip(result.columns, row, strict=False):
        function, _, path = name.partition("(")
        entry = stats.setdefault(path.rstrip(")"), {"path": path.rstrip(")")})
        entry[{"count": "count", "min_time": "first", "max_time": "last"}[function]] = (
            value.item() if hasattr(value, "item") else value
        )
    return sorted(stats.values(), key=lambda entry: entry["path"])


class PlotRequest:
    """A series, an optional closed time range and the number of pixel columns to fill."""

    def __init__(self, path: str, start: int | None, end: int | None, points: int) -> None:
        nodes = split_path(path)
        if len(nodes) < 3:
            raise ExplorerError(f"{path!r} is not a series path (root.<database>.<device>.<measurement>)")
        if not 1 <= points <= MAX_PLOT_POINTS:
            raise ExplorerError(f"points must be 1-{MAX_PLOT_POINTS}, got {points}")
        if start is not None and end is not None and end < start:
            raise ExplorerError(f"the range ends ({end}) before it starts ({start})")
        self.path = path
        self.device = join_path(*nodes[:-1])
        self.measurement = nodes[-1]
        self.start = start
        self.end = end
        self.points = points


def _scalar(result: ResultSet, column: int) -> Any:
    if not len(result):
        return None
    value = result.rows()[0][column]
    return value.item() if hasattr(value, "item") else value


def plot_grid(first: int, last: int, count: int, windows: int, precision: str = "ms") -> tuple[int, int]:
    """``(start, interval)`` of at most ``windows`` equal windows from ``start <= first`` covering ``last``,
    for ``count`` points in ``[first, last]``.

    TsFile blocks are the spans ``[k * D, (k + 1) * D)`` of a duration ``D`` of the ladder
    (:func:`~iotdb_core.storage.blockstats.ladder`), each duration dividing the next, and a file's ``D`` is the
    shortest whose blocks hold :data:`~iotdb_core.storage.blockstats.MIN_BLOCK_POINTS` points on average. So
    where the points are spread evenly no file has blocks shorter than the ``D`` of their mean density, and
    windows whose start and interval are multiples of a step at least that long cut no block: the aggregate
    pushdown answers them from statistics alone. The step is the longest ladder duration from there up to the
    window that costs at most 5 % of the windows asked for (the shortest, if none). Windows shorter than that
    ``D`` (a zoomed-in range of at most a few million points) are not aligned: the blocks they cut are read
    as points. Either way the windows are exact.
    """
    span = last - first + 1
    wanted = -(-span // windows)
    durations = ladder(precision)
    dense = next((d for d in durations if d * count >= MIN_BLOCK_POINTS * span), durations[-1])
    steps = [d for d in durations if dense <= d <= wanted]
    if not steps:
        return first, wanted
    step = next((d for d in reversed(steps) if -(-wanted // d) * d * 20 <= wanted * 21), steps[0])
    start = first - first % step
    wanted = -(-(last - start + 1) // windows)
    return start, -(-wanted // step) * step


def plot(engine: Any, settings: Settings, request: PlotRequest, session: Session) -> dict[str, Any]:
    """The points of the range, raw when they fit the pixel columns, else count/min/max/mean per window.

    Needs READ_DATA on the series (``AccessDenied`` otherwise), checked before anything is read. The series'
    type is looked up without the user's session, as a SELECT reports it to a reader without READ_SCHEMA.
    Windows are an exact ``GROUP BY`` on :func:`plot_grid`'s grid, limited to the range by a time filter (so
    the first window, which may start before the range, holds only the range's points); empty windows are
    left out.
    """
    began = time.perf_counter()
    path = join_path(*(canonical_node(node) for node in split_path(request.path)))
    session.authorizer.check(session.user, Privilege.READ_DATA, [path])
    series = _metadata(engine, settings, f"SHOW TIMESERIES {request.path}", None).to_dicts()
    if not series:
        raise ExplorerError(f"no series {request.path}")
    data_type = series[0]["dataType"]
    if data_type not in _NUMERIC:
        raise ExplorerError(f"{request.path} is {data_type}: only numeric series are plotted (use the SQL page)")
    m, device = request.measurement, request.device
    where = _range_filter(request.start, request.end)
    info = _select(engine, settings, f"SELECT count({m}), min_time({m}), max_time({m}) FROM {device}{where}",
                   session)
    count, first, last = (_scalar(info, i) for i in range(3))
    body: dict[str, Any] = {"path": request.path, "type": data_type, "count": count or 0,
                            "first": first, "last": last, "timestamps": []}
    if not count:
        body.update(mode="raw", values=[])
    elif count <= request.points:
        raw = _select(engine, settings, f"SELECT {m} FROM {device}{_range_filter(first, last)}", session)
        body.update(mode="raw", timestamps=raw.timestamps.tolist() if raw.timestamps is not None else [],
                    values=column_to_json(raw.values[0], raw.nulls[0], raw.data_types[0]))
    else:
        start, interval = plot_grid(first, last, count, request.points, settings.timestamp_precision)
        stats = ExecutionStats()
        grouped = _select(
            engine, settings,
            f"SELECT count({m}), min_value({m}), max_value({m}), avg({m}) FROM {device}"
            f"{_range_filter(first, last)} GROUP BY ([{start}, {last + 1}), {interval})",
            session, stats,
        )
        counts = grouped.values[0]
        filled = counts > 0
        assert grouped.timestamps is not None
        body.update(mode="windows", interval=interval, timestamps=grouped.timestamps[filled].tolist(),
                    counts=counts[filled].tolist(),
                    **{name: _numbers(grouped.values[column][filled], grouped.data_types[column])
                       for column, name in ((1, "min"), (2, "max"), (3, "mean"))},
                    blocks=stats.stats_segments, points_read=stats.points)
    body["server_ms"] = round((time.perf_counter() - began) * 1000, 1)
    return body


def _numbers(values: np.ndarray, data_type: TSDataType | None) -> list[Any]:
    """A numeric column as JSON values (NaN, which JSON cannot hold and a window holding one gives, as null)."""
    return column_to_json(values, np.isnan(values) if values.dtype.kind == "f" else None, data_type)


def _range_filter(start: int | None, end: int | None) -> str:
    terms = []
    if start is not None:
        terms.append(f"time >= {int(start)}")
    if end is not None:
        terms.append(f"time <= {int(end)}")
    return " WHERE " + " AND ".join(terms) if terms else ""
