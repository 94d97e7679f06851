"""A second storage backend, written from ``docs/plugins.md`` alone: every point kept in memory.

:func:`tests.rest.test_storage_backend` installs it for an ``iotdb serve`` subprocess (a module plus a
``dist-info`` directory on ``PYTHONPATH``, entry-point group ``iotdb``). It implements
:class:`iotdb_core.backend.StorageBackend` and no optional capability, so the server must run MQTT
ingestion, SQL and REST on it and answer "not supported" for deletions and TTL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iotdb_core import Row, Settings, TSDataType, hookimpl
from iotdb_core.backend import DurableWrite, StorageBackend
from iotdb_core.datatypes import DEFAULT_COMPRESSOR, DEFAULT_ENCODING, Compressor, TSEncoding
from iotdb_core.paths import canonical_node, database_of, split_path
from iotdb_core.patterns import compile_pattern, matches
from iotdb_core.storage import SchemaError, SeriesResult, SeriesSchema, WriteFailure, WriteResult

_DTYPES = {TSDataType.BOOLEAN: np.bool_, TSDataType.INT32: np.int32, TSDataType.INT64: np.int64,
           TSDataType.FLOAT: np.float32, TSDataType.DOUBLE: np.float64, TSDataType.TEXT: object}


def _infer(value: object) -> TSDataType:
    if isinstance(value, bool):
        return TSDataType.BOOLEAN
    if isinstance(value, int):
        return TSDataType.INT64
    if isinstance(value, float):
        return TSDataType.DOUBLE
    return TSDataType.TEXT


class MemoryBackend:
    """Series as dictionaries of timestamp to value, behind one lock."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._schemas: dict[str, SeriesSchema] = {}
        self._points: dict[str, dict[int, Any]] = {}
        self._databases: set[str] = set()

    @property
    def settings(self) -> Settings:
        return self._settings

    def _canonical(self, device: str) -> str:
        return ".".join(canonical_node(node) for node in split_path(device))

    def _series(self, device: str, measurement: str, kind: TSDataType) -> SeriesSchema:
        device = self._canonical(device)
        path = f"{device}.{canonical_node(measurement)}"
        schema = self._schemas.get(path)
        if schema is None:
            schema = SeriesSchema(device, canonical_node(measurement), kind, DEFAULT_ENCODING[kind],
                                  DEFAULT_COMPRESSOR)
            self._schemas[path] = schema
            self._databases.add(database_of(split_path(device), int(self._settings.default_database_level)))
        return schema

    def _write(self, rows: Sequence[Row]) -> WriteResult:
        result = WriteResult()
        with self._lock:
            for row in rows:
                for index, (measurement, value) in enumerate(zip(row.measurements, row.values, strict=True)):
                    if value is None:
                        continue
                    declared = row.types[index] if row.types is not None else None
                    schema = self._series(row.device, measurement, declared or _infer(value))
                    if _infer(value) is not schema.data_type and not (
                        schema.data_type is TSDataType.DOUBLE and isinstance(value, int)
                    ):
                        result.failures.append(WriteFailure(row.device, measurement, row.timestamp, value,
                                                            f"expected {schema.data_type.value}"))
                        continue
                    self._points.setdefault(schema.path, {})[int(row.timestamp)] = value
                    result.points_written += 1
        return result

    def write_rows_deferred(self, rows: Sequence[Row]) -> DurableWrite:
        return DurableWrite(self._write(rows))

    def insert_records(self, devices: Sequence[str], timestamps: Sequence[int],
                       measurements_list: Sequence[Sequence[str]], values_list: Sequence[Sequence[Any]],
                       types_list: Sequence[Sequence[TSDataType | None] | None] | None = None) -> WriteResult:
        return self._write([
            Row(device, stamp, tuple(names), tuple(values), None if not types_list else tuple(types_list[i] or ()))
            for i, (device, stamp, names, values) in enumerate(
                zip(devices, timestamps, measurements_list, values_list, strict=True))
        ])

    def insert_tablet(self, device: str, timestamps: Sequence[int] | np.ndarray, measurements: Sequence[str],
                      columns: Sequence[Sequence[Any] | np.ndarray],
                      types: Sequence[TSDataType | str | None] | None = None) -> WriteResult:
        kinds = None if types is None else tuple(
            TSDataType.parse(kind) if isinstance(kind, str) else kind for kind in types)
        return self._write([
            Row(device, int(stamp), tuple(measurements), tuple(column[i] for column in columns), kinds)
            for i, stamp in enumerate(timestamps)
        ])

    def query(self, path: str, start: int | None = None, end: int | None = None) -> SeriesResult:
        with self._lock:
            schema = self._schemas.get(path)
            if schema is None:
                return SeriesResult(np.empty(0, np.int64), np.empty(0, np.float64), None)
            points = sorted((t, v) for t, v in self._points.get(path, {}).items()
                            if (start is None or t >= start) and (end is None or t <= end))
        return SeriesResult(np.array([t for t, _ in points], dtype=np.int64),
                            np.array([v for _, v in points], dtype=_DTYPES[schema.data_type]), schema.data_type)

    def last(self, path: str) -> tuple[int, Any] | None:
        with self._lock:
            points = self._points.get(path)
            if not points:
                return None
            newest = max(points)
            return newest, points[newest]

    def list_series(self, pattern: str | None = None) -> list[SeriesSchema]:
        with self._lock:
            found = sorted(self._schemas.values(), key=lambda s: s.path)
        if pattern is None:
            return found
        wanted = compile_pattern(pattern)
        return [s for s in found if matches(wanted, (*split_path(s.device), s.measurement))]

    def list_devices(self) -> list[str]:
        with self._lock:
            return sorted({schema.device for schema in self._schemas.values()})

    def list_databases(self) -> list[str]:
        with self._lock:
            return sorted(self._databases)

    def create_database(self, path: str) -> str:
        canonical = self._canonical(path)
        with self._lock:
            if canonical in self._databases:
                raise SchemaError(f"database {canonical} already exists")
            self._databases.add(canonical)
        return canonical

    def create_timeseries(self, path: str, data_type: TSDataType | str, encoding: TSEncoding | str | None = None,
                          compressor: Compressor | str | None = None) -> SeriesSchema:
        nodes = split_path(path)
        kind = TSDataType.parse(data_type) if isinstance(data_type, str) else data_type
        with self._lock:
            return self._series(".".join(nodes[:-1]), nodes[-1], kind)

    def close(self) -> None:
        (Path(self._settings.data_dir) / "memory-backend-closed").write_text(str(len(self._schemas)))


@hookimpl
def iotdb_storage_backend(data_dir: Path, settings: Settings) -> StorageBackend:
    data_dir.mkdir(parents=True, exist_ok=True)
    return MemoryBackend(settings)
