"""The schema registry: databases and series with their type, encoding and compressor.

Persisted as an append-only log, ``schema.log`` in the data directory. Each record is
``<u32 payload length><u32 CRC32 of payload>`` followed by a UTF-8 JSON payload
``{"databases": [...], "series": [[device, measurement, type, encoding, compressor], ...]}``, or, for
``Engine.delete_timeseries``, ``{"databases": [], "series": [], "dropped": [[device, measurement], ...]}``.
One record holds every creation (or removal) of one call, so a call's changes are atomic; the log is
fsynced before the call returns (and so before any WAL record refers to a new series). A torn or corrupt
tail left by a crash is cut off on load.

Paths are kept canonical: every node in its written form as :func:`iotdb_core.paths.quote_node`
produces it, so ``root.sg.`d1``` and ``root.sg.d1`` name the same device.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from iotdb_core.datatypes import DEFAULT_COMPRESSOR, DEFAULT_ENCODING, Compressor, TSDataType, TSEncoding
from iotdb_core.durable import fsync_dir
from iotdb_core.paths import PathError, canonical_node, split_path
from iotdb_core.storage.errors import SchemaError

SCHEMA_LOG = "schema.log"
_HEADER = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class SeriesSchema:
    """One series: where it lives and how it is typed and stored."""

    device: str
    measurement: str
    data_type: TSDataType
    encoding: TSEncoding
    compressor: Compressor

    @property
    def path(self) -> str:
        """The full series path, ``<device>.<measurement>``."""
        return f"{self.device}.{self.measurement}"


@lru_cache(maxsize=65536)
def canonical_device(device: str) -> tuple[str, tuple[str, ...]]:
    """Validate a device path; return its canonical form and nodes. Raises PathError."""
    if not isinstance(device, str):
        raise PathError(f"device path must be a string, got {type(device).__name__}")
    nodes = tuple(canonical_node(node) for node in split_path(device))
    if len(nodes) < 2:
        raise PathError(f"device path {device!r} needs at least one level under root")
    return ".".join(nodes), nodes


@lru_cache(maxsize=65536)
def canonical_measurement(measurement: str) -> str:
    """Validate a single measurement node; return its canonical form. Raises PathError."""
    if not isinstance(measurement, str):
        raise PathError(f"measurement must be a string, got {type(measurement).__name__}")
    nodes = split_path("root." + measurement)
    if len(nodes) != 2:
        raise PathError(f"measurement {measurement!r} must be a single node")
    return canonical_node(nodes[1])


@lru_cache(maxsize=131072)
def split_series_path(path: str) -> tuple[str, str]:
    """Split a full series path into its canonical device and measurement. Raises PathError.

    Cached: reads (``last`` over every series of a LAST query) resolve the same paths over and over.
    """
    nodes = split_path(path)
    if len(nodes) < 3:
        raise PathError(f"series path {path!r} needs a device and a measurement under root")
    device, _ = canonical_device(".".join(nodes[:-1]))
    return device, canonical_node(nodes[-1])


class SchemaRegistry:
    """Databases and series, persisted in ``schema.log``; lookups are lock-free, creation is serialised."""

    def __init__(self, directory: Path, database_level: int) -> None:
        self._path = directory / SCHEMA_LOG
        self._database_level = database_level
        self._lock = threading.Lock()
        self._databases: set[str] = set()
        self._series: dict[str, dict[str, SeriesSchema]] = {}
        self._dropped: set[tuple[str, str]] = set()
        self._load()
        self._file = open(self._path, "ab")  # noqa: SIM115 - kept open for the registry's lifetime

    # ----------------------------------------------------------------------------------------- reading

    def get(self, device: str, measurement: str) -> SeriesSchema | None:
        """The schema of a series given in canonical form, or None."""
        measurements = self._series.get(device)
        return None if measurements is None else measurements.get(measurement)

    def device_series(self, device: str) -> dict[str, SeriesSchema]:
        """The series of a canonical device by measurement (a live view; do not mutate)."""
        return self._series.get(device, {})

    def was_dropped(self, device: str, measurement: str) -> bool:
        """True when the series was removed by :meth:`drop_series` and not created again since."""
        return (device, measurement) in self._dropped

    def databases(self) -> list[str]:
        """Every database, sorted."""
        return sorted(self._databases)

    def devices(self) -> list[str]:
        """Every device that has at least one series, sorted."""
        return sorted(device for device, series in self._series.items() if series)

    def all_series(self) -> Iterator[SeriesSchema]:
        """Every series, in no particular order."""
        for measurements in list(self._series.values()):
            yield from list(measurements.values())

    def database_of(self, nodes: tuple[str, ...]) -> str | None:
        """The existing database a device (as canonical nodes) belongs to, or None."""
        for end in range(2, len(nodes)):
            candidate = ".".join(nodes[:end])
            if candidate in self._databases:
                return candidate
        return None

    def planned_database(self, nodes: tuple[str, ...]) -> str:
        """The database a device belongs to, existing or to be auto-created. Raises PathError."""
        existing = self.database_of(nodes)
        if existing is not None:
            return existing
        if len(nodes) <= self._database_level + 1:
            raise PathError(
                f"device {'.'.join(nodes)!r} has no level below its database "
                f"(default_database_level={self._database_level})"
            )
        return ".".join(nodes[: self._database_level + 1])

    # ---------------------------------------------------------------------------------------- creating

    def create_database(self, path: str) -> str:
        """Create a database; returns its canonical path. Raises SchemaError or PathError."""
        _, nodes = canonical_device(path)
        name = ".".join(nodes)
        with self._lock:
            self._check_new_database(name, nodes)
            self._append({"databases": [name], "series": []})
            self._databases.add(name)
        return name

    def create_series(self, schemas: Iterable[SeriesSchema], *, auto_database: bool, exist_ok: bool) -> None:
        """Create series (and, with ``auto_database``, their databases) in one durable record.

        With ``exist_ok`` a series that already exists with any type is left alone; otherwise it is
        a SchemaError. A device with no database and ``auto_database`` false is a SchemaError.
        """
        with self._lock:
            new_databases: list[str] = []
            new_series: list[SeriesSchema] = []
            planned: set[str] = set()
            for schema in schemas:
                existing = self.get(schema.device, schema.measurement)
                if existing is not None or any(
                    s.device == schema.device and s.measurement == schema.measurement for s in new_series
                ):
                    if exist_ok:
                        continue
                    raise SchemaError(f"timeseries {schema.path} already exists")
                _, nodes = canonical_device(schema.device)
                database = self.database_of(nodes)
                if database is None:
                    database = self._planned_among(nodes, planned)
                if database is None:
                    if not auto_database:
                        raise SchemaError(
                            f"device {schema.device} belongs to no database and auto-create is disabled"
                        )
                    database = self.planned_database(nodes)
                    self._check_new_database(database, tuple(database.split(".")))
                    new_databases.append(database)
                    planned.add(database)
                new_series.append(schema)
            if not new_series and not new_databases:
                return
            self._append(
                {
                    "databases": new_databases,
                    "series": [
                        [s.device, s.measurement, s.data_type.value, s.encoding.value, s.compressor.value]
                        for s in new_series
                    ],
                }
            )
            self._databases.update(new_databases)
            for schema in new_series:
                self._add(schema)

    def _planned_among(self, nodes: tuple[str, ...], planned: set[str]) -> str | None:
        for end in range(2, len(nodes)):
            candidate = ".".join(nodes[:end])
            if candidate in planned:
                return candidate
        return None

    def _check_new_database(self, name: str, nodes: tuple[str, ...]) -> None:
        if name in self._databases:
            raise SchemaError(f"database {name} already exists")
        for end in range(2, len(nodes)):
            prefix = ".".join(nodes[:end])
            if prefix in self._databases:
                raise SchemaError(f"database {name} cannot be created under existing database {prefix}")
        for existing in self._databases:
            if existing.startswith(name + "."):
                raise SchemaError(f"database {name} cannot be created above existing database {existing}")

    def drop_series(self, keys: Iterable[tuple[str, str]]) -> list[SeriesSchema]:
        """Remove series (given as canonical device, measurement) in one durable record; returns those removed."""
        with self._lock:
            doomed = [schema for device, measurement in keys if (schema := self.get(device, measurement)) is not None]
            if not doomed:
                return []
            self._append({"databases": [], "series": [], "dropped": [[s.device, s.measurement] for s in doomed]})
            for schema in doomed:
                self._remove(schema.device, schema.measurement)
            return doomed

    def _add(self, schema: SeriesSchema) -> None:
        self._series.setdefault(schema.device, {})[schema.measurement] = schema
        self._dropped.discard((schema.device, schema.measurement))

    def _remove(self, device: str, measurement: str) -> None:
        measurements = self._series.get(device)
        if measurements is not None and measurements.pop(measurement, None) is not None:
            self._dropped.add((device, measurement))

    # --------------------------------------------------------------------------------------- durability

    def _append(self, entry: Mapping[str, Sequence[object]]) -> None:
        payload = json.dumps(entry, separators=(",", ":")).encode()
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        os.fsync(self._file.fileno())

    def _load(self) -> None:
        if not self._path.exists():
            self._path.touch()
            fsync_dir(self._path.parent)
            return
        data = self._path.read_bytes()
        pos = 0
        good_end = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            if end > len(data) or zlib.crc32(data[pos + _HEADER.size : end]) != crc:
                break
            entry = json.loads(data[pos + _HEADER.size : end])
            self._databases.update(entry["databases"])
            for device, measurement, data_type, encoding, compressor in entry["series"]:
                self._add(
                    SeriesSchema(
                        device, measurement, TSDataType(data_type), TSEncoding(encoding), Compressor(compressor)
                    )
                )
            for device, measurement in entry.get("dropped", ()):
                self._remove(device, measurement)
            pos = good_end = end
        if good_end < len(data):
            with open(self._path, "r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())

    def close(self) -> None:
        """Close the log file."""
        with self._lock:
            self._file.close()


def make_schema(
    device: str,
    measurement: str,
    data_type: TSDataType,
    encoding: TSEncoding | None = None,
    compressor: Compressor | None = None,
) -> SeriesSchema:
    """A SeriesSchema with IoTDB's default encoding and compressor where none is given."""
    return SeriesSchema(
        device,
        measurement,
        data_type,
        encoding if encoding is not None else DEFAULT_ENCODING[data_type],
        compressor if compressor is not None else DEFAULT_COMPRESSOR,
    )

