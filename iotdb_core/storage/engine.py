"""The storage engine: a facade over recovery, the read path, the write path and background work.

The engine is split by job as LevelDB splits its DB:

========================================  ============================================================
:mod:`~iotdb_core.storage.state`          every piece of state and every lock, with what each guards
:mod:`~iotdb_core.storage.recovery`       opening: lock, schema, manifest, ``sequence/`` cleanup, WAL replay
:mod:`~iotdb_core.storage.writes`         validation, memory budget, gate, WAL, memtable; deletions; TTL
:mod:`~iotdb_core.storage.reads`          ``query``, ``scan`` and ``last`` over a pinned version
:mod:`~iotdb_core.storage.background`     the flush and compaction threads
========================================  ============================================================

:class:`Engine` keeps the public calls in one place and delegates each to its job; it implements
:class:`iotdb_core.backend.StorageBackend` with every capability protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pluggy

from iotdb_core.config import Settings, default_settings
from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
from iotdb_core.durable import atomic_write
from iotdb_core.model import Health, Row, Tablet
from iotdb_core.patterns import compile_pattern, matches, series_nodes
from iotdb_core.storage.allocator import keep_freed_memory
from iotdb_core.storage.arguments import bound, own_errors, sequence, text
from iotdb_core.storage.background import Background
from iotdb_core.storage.errors import InvalidArgumentTypeError, ReadOnlyError, StorageError
from iotdb_core.storage.health import HealthMonitor, storage_failure
from iotdb_core.storage.ingest import check_series_encoding
from iotdb_core.storage.reads import ReadPath
from iotdb_core.storage.recovery import open_state
from iotdb_core.storage.results import (
    ColumnSegment,
    PointsSegment,
    Segment,
    SeriesResult,
    StatsSegment,
    WriteFailure,
    WriteResult,
)
from iotdb_core.storage.schema import SchemaRegistry, SeriesSchema, canonical_device, make_schema, split_series_path
from iotdb_core.storage.stats import EngineStats, engine_stats
from iotdb_core.storage.wal import WalError
from iotdb_core.storage.writes import PendingWrite, WritePath

__all__ = ["Engine", "PendingWrite", "PointsSegment", "Segment", "SeriesResult", "StatsSegment", "WriteFailure",
           "WriteResult"]

log = logging.getLogger("iotdb.storage")


class Engine:
    """An open data directory. Thread-safe; use :meth:`open`, and close it (or use ``with``).

    :attr:`state` is the engine's :class:`~iotdb_core.storage.state.EngineState`, for tests and tools that
    inspect internals; it is not part of the storage contract.
    """

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        settings: Settings | None = None,
        plugins: pluggy.PluginManager | None = None,
    ) -> Engine:
        """Open (creating if needed) and recover ``data_dir``.

        ``plugins`` is a pluggy PluginManager with the ``iotdb`` hook specs (None: one with only the specs).
        Raises DataDirLockedError when another process or engine has it open.
        """
        return cls(Path(data_dir), settings or default_settings(), plugins)

    def __init__(self, data_dir: Path, settings: Settings, plugins: pluggy.PluginManager | None = None) -> None:
        self.data_dir = data_dir
        self.settings = settings
        keep_freed_memory(settings.allocator_keep_freed_in_byte)
        self.state = state = open_state(data_dir, settings, plugins)
        self.registry: SchemaRegistry = state.registry
        self._reads = ReadPath(state)
        self._background = Background(state)
        self._writes = WritePath(state, self._reads, self._background)
        state.health = HealthMonitor(str(data_dir), self._resume_writes)
        self._background.start()
        state.hook.iotdb_startup(engine=self, settings=settings)

    # ------------------------------------------------------------------------------------ context manager

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self.state.closed

    # --------------------------------------------------------------------------------------------- schema

    @own_errors
    def create_database(self, path: str) -> str:
        """Create a database (``root.<name>...``); returns its canonical path. SchemaError if it exists."""
        self.state.check_open()
        with self._storage_writes():
            return self.registry.create_database(text(path, "create_database: path"))

    def list_databases(self) -> list[str]:
        """Every database, sorted."""
        return self.registry.databases()

    @own_errors
    def create_timeseries(
        self,
        path: str,
        data_type: TSDataType | str,
        encoding: TSEncoding | str | None = None,
        compressor: Compressor | str | None = None,
    ) -> SeriesSchema:
        """Create a series explicitly; its database is auto-created unless auto-create is off.

        Raises SchemaError when it exists, its encoding cannot hold its type, or it has no database.
        """
        self.state.check_open()
        device, measurement = split_series_path(text(path, "create_timeseries: path"))
        if not isinstance(data_type, (TSDataType, str)):
            raise InvalidArgumentTypeError(f"create_timeseries: data_type: expected a TSDataType or a type name, "
                                       f"got {data_type!r}")
        for argument, value, kind in (("encoding", encoding, TSEncoding), ("compressor", compressor, Compressor)):
            if value is not None and not isinstance(value, (kind, str)):
                raise InvalidArgumentTypeError(
                    f"create_timeseries: {argument}: expected a {kind.__name__} or its name, got {value!r}"
                )
        if isinstance(data_type, str):
            data_type = TSDataType.parse(data_type)
        if isinstance(encoding, str):
            encoding = TSEncoding(encoding.strip().upper())
        if isinstance(compressor, str):
            compressor = Compressor(compressor.strip().upper())
        schema = make_schema(device, measurement, data_type, encoding, compressor)
        check_series_encoding(schema)
        _, nodes = canonical_device(device)
        self.registry.planned_database(nodes)
        with self._storage_writes():
            self.registry.create_series(
                [schema], auto_database=self.settings.enable_auto_create_schema, exist_ok=False
            )
        return schema

    @own_errors
    def list_series(self, pattern: str | None = None) -> list[SeriesSchema]:
        """Series whose path matches ``pattern`` (``*`` one level, ``**`` one or more), sorted by path."""
        series = sorted(self.registry.all_series(), key=lambda s: (s.device, s.measurement))
        if pattern is None:
            return series
        wanted = compile_pattern(text(pattern, "list_series: pattern"))
        return [s for s in series if matches(wanted, series_nodes(s.device, s.measurement))]

    def list_devices(self) -> list[str]:
        """Every device with at least one series, sorted."""
        return self.registry.devices()

    # --------------------------------------------------------------------------------------------- writes

    @own_errors
    def insert_record(
        self,
        device: str,
        timestamp: int,
        measurements: Sequence[str],
        values: Sequence[Any],
        types: Sequence[TSDataType | None] | None = None,
    ) -> WriteResult:
        """Write one device's values at one timestamp (None values are skipped)."""
        sequence(measurements, "insert_record: measurements")
        sequence(values, "insert_record: values")
        return self._writes.insert_record(device, timestamp, measurements, values, types)

    @own_errors
    def insert_records(
        self,
        devices: Sequence[str],
        timestamps: Sequence[int],
        measurements_list: Sequence[Sequence[str]],
        values_list: Sequence[Sequence[Any]],
        types_list: Sequence[Sequence[TSDataType | None] | None] | None = None,
    ) -> WriteResult:
        """Write several rows with one WAL record and one durability wait."""
        for argument, value in (("devices", devices), ("timestamps", timestamps),
                                ("measurements_list", measurements_list), ("values_list", values_list)):
            sequence(value, f"insert_records: {argument}")
        for index, (names, values) in enumerate(zip(measurements_list, values_list, strict=False)):
            sequence(names, f"insert_records: measurements_list[{index}]")
            sequence(values, f"insert_records: values_list[{index}]")
        if types_list is not None:
            sequence(types_list, "insert_records: types_list")
        return self._writes.insert_records(devices, timestamps, measurements_list, values_list, types_list)

    @own_errors
    def write_rows(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows of any devices with one WAL record and one durability wait (the MQTT ingest path)."""
        sequence(rows, "write_rows: rows")
        return self._writes.write_rows(rows)

    @own_errors
    def write_rows_deferred(self, rows: Sequence[Row]) -> PendingWrite:
        """Write rows like :meth:`write_rows` but return before the durability wait.

        The rows are logged (in SYNC mode queued for the next fsync, which writes them) and visible to reads; call
        :meth:`PendingWrite.wait` — from any thread — before acknowledging them. This lets the MQTT
        ingest thread go on formatting the next batch while an fsync covers this one.
        """
        sequence(rows, "write_rows_deferred: rows")
        return self._writes.write_rows_deferred(rows)

    @own_errors
    def write_tablets(self, tablets: Sequence[Tablet]) -> WriteResult:
        """Write :class:`~iotdb_core.model.Tablet` s of any devices with one WAL record and one durability wait.

        Every tablet is validated first: one whose lengths disagree (columns, types, null masks, a column's
        values against the timestamps) refuses the whole call with InvalidArgumentError naming its index and
        the field, and nothing is written. Values that cannot be stored are failures of the result, as for
        :meth:`insert_tablet`.
        """
        return self._writes.write_tablets(tablets)

    @own_errors
    def write_tablets_deferred(self, tablets: Sequence[Tablet]) -> PendingWrite:
        """:meth:`write_tablets`, returning before the durability wait (see :meth:`write_rows_deferred`)."""
        return self._writes.write_tablets_deferred(tablets)

    @own_errors
    def insert_tablet(
        self,
        device: str,
        timestamps: Sequence[int] | np.ndarray,
        measurements: Sequence[str],
        columns: Sequence[Sequence[Any] | np.ndarray],
        types: Sequence[TSDataType | str | None] | None = None,
    ) -> WriteResult:
        """Write one device's rows given column by column (None entries are skipped).

        ``types`` may name IoTDB types (``"DOUBLE"``) as IoTDB's clients send them. Numpy columns of a
        matching dtype are validated and logged without per-point Python work.
        """
        sequence(timestamps, "insert_tablet: timestamps")
        sequence(measurements, "insert_tablet: measurements")
        for index, column in enumerate(sequence(columns, "insert_tablet: columns")):
            sequence(column, f"insert_tablet: columns[{index}]")
        return self._writes.insert_tablet(device, timestamps, measurements, columns, types)

    # --------------------------------------------------------------------------------------------- reads

    @own_errors
    def query(self, path: str, start: int | None = None, end: int | None = None) -> SeriesResult:
        """Points of one series with ``start <= time <= end`` (both inclusive; None = unbounded), in time order.

        Deleted points and points expired by TTL are left out. A series that does not exist yields an
        empty result with ``data_type`` None.
        """
        return self._reads.query(text(path, "query: path"), bound(start, "query: start"), bound(end, "query: end"))

    @own_errors
    def scan(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[Segment]:
        """The points ``query(path, start, end)`` returns, as segments for aggregate pushdown
        (:meth:`ReadPath.scan <iotdb_core.storage.reads.ReadPath.scan>` says which segments are statistics)."""
        return self._reads.scan(
            text(path, "scan: path"), bound(start, "scan: start"), bound(end, "scan: end"), bounds=bounds
        )

    @own_errors
    def scan_columns(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[ColumnSegment]:
        """What :meth:`scan` returns, with consecutive statistics as one ``StatsRun`` of arrays
        (:meth:`ReadPath.scan_columns <iotdb_core.storage.reads.ReadPath.scan_columns>`)."""
        return self._reads.scan_columns(
            text(path, "scan_columns: path"), bound(start, "scan_columns: start"), bound(end, "scan_columns: end"),
            bounds=bounds,
        )

    @own_errors
    def last(self, path: str) -> tuple[int, Any] | None:
        """The point with the largest timestamp of a series, or None; served from memory.

        None also when that point has expired by TTL (then every point has).
        """
        return self._reads.last(text(path, "last: path"))

    # -------------------------------------------------------------------------------- deletion and TTL

    @own_errors
    def delete(self, path_pattern: str, start: int | None = None, end: int | None = None) -> int:
        """Delete the points with ``start <= time <= end`` (both inclusive; None = unbounded) of every series
        ``path_pattern`` matches (``*`` one level, ``**`` one or more); returns the number of series matched.

        The deletion is durable when the call returns (a tombstone in the manifest). It hides only points
        written before the call: points written afterwards, at any timestamp, stay visible.
        """
        pattern = text(path_pattern, "delete: path_pattern")
        low, high = bound(start, "delete: start"), bound(end, "delete: end")
        with self._storage_writes():
            return self._writes.delete(pattern, low, high)

    @own_errors
    def delete_timeseries(self, path_pattern: str) -> int:
        """Remove every series ``path_pattern`` matches from the schema and delete all its points.

        Returns the number of series removed. Writing to a removed series creates it anew (when schema
        auto-creation is on), possibly with another type; its old points never come back.
        """
        pattern = text(path_pattern, "delete_timeseries: path_pattern")
        with self._storage_writes():
            return self._writes.delete_timeseries(pattern)

    @own_errors
    def set_ttl(self, path: str, ttl_ms: int | None) -> None:
        """Set (``None``: remove) the time to live of the points under ``path`` (``root.sg``, ``root.sg.d1``,
        ``root.**``...), in milliseconds; persisted. The most specific rule covering a series applies.

        Points older than ``now - ttl`` (in ``timestamp_precision`` units) are invisible at once and are
        reclaimed by compaction and by removing files whose points have all expired.
        """
        milliseconds = bound(ttl_ms, "set_ttl: ttl_ms", "an integer number of milliseconds")
        with self._storage_writes():
            self._writes.set_ttl(text(path, "set_ttl: path"), milliseconds)

    def list_ttl(self) -> dict[str, int]:
        """The TTL rules, path (``root.sg.**``) to milliseconds."""
        return self._writes.list_ttl()

    # ---------------------------------------------------------------------------------- files and work

    def file_levels(self) -> list[tuple[str, int]]:
        """The live TsFiles (name, level), oldest first."""
        return [(table.entry.name, table.entry.level) for table in self.state.versions.current.files]

    def stats(self) -> EngineStats:
        """Memtables, WAL, TsFiles per level, flushes and compactions (running, done, durations), the read-only
        state and the disk, at one instant. Cheap: it takes no engine lock (see :mod:`~iotdb_core.storage.stats`)."""
        return engine_stats(self.state)

    def flush(self) -> None:
        """Seal the mutable memtable and write every sealed memtable to a TsFile before returning."""
        self._background.flush()

    def compact(self) -> int:
        """Remove files expired by TTL, then merge full levels until none is left (as the background thread
        does); returns the merges done."""
        return self._background.compact()

    @contextmanager
    def hold_background(self) -> Iterator[None]:
        """Within the block no background flush or compaction runs (one running when it starts finishes first).

        For tests that inspect memtables and files while writing: writes, reads and deletions go on, and
        memtables that fill up are sealed but stay in memory. Do not call :meth:`flush` or :meth:`compact`
        inside the block (they would wait for it to end).
        """
        with self._background.hold():
            yield

    # ------------------------------------------------------------------------------------------- health

    def health(self) -> Health:
        """Whether writes are accepted now (``writable``), and if not why: a full or unwritable disk."""
        return self.state.health.health()

    def resume(self) -> Health:
        """Try now to leave the read-only state (the engine also probes by itself); returns the health after."""
        return self.state.health.resume_now()

    def _resume_writes(self) -> None:
        """The probe: a small write and fsync in the data, WAL and TsFile directories, the WAL cut back to its
        last durable record, then every memtable flushed (so what the WAL dropped of ASYNC writes is in a
        TsFile). Raises while the disk still refuses."""
        s = self.state
        for directory in (s.data_dir, s.wal.directory, s.sequence_dir):
            probe = directory / ".probe"
            try:
                atomic_write(probe, b"\0" * 4096)
            finally:
                probe.unlink(missing_ok=True)
        with s.gate.exclusive():
            s.wal.resume()
        self._background.freeze()
        self._background.flush_sealed()

    @contextmanager
    def _storage_writes(self) -> Iterator[None]:
        """Refuse the block while read-only; a full or unwritable disk met inside makes the engine read-only."""
        self.state.health.check()
        try:
            yield
        except (OSError, WalError) as exc:
            cause = storage_failure(exc)
            if cause is not None:
                raise self.state.health.enter(cause) from exc
            raise

    # ------------------------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Call the shutdown hook, stop accepting writes, flush every memtable, stop the threads, unlock.

        If the final flush fails the data stays in the WAL (replayed on the next open) and the error is
        raised after everything is closed.
        """
        s = self.state
        with s.close_lock:
            if s.closed:
                return
            s.hook.iotdb_shutdown(engine=self)
            s.closed = True
        with s.memory:
            s.memory.notify_all()
        with s.gate.exclusive():
            pass  # the writes inside finish; later ones see the engine closed
        self._background.stop()
        s.health.stop()
        error: BaseException | None = None
        try:
            s.health.check()
            self._background.freeze()
            self._background.flush_sealed()
        except Exception as exc:
            error = exc
            if isinstance(exc, ReadOnlyError) or storage_failure(exc) is not None:
                log.error("final flush of %s not possible: %s; its data stays in the WAL", self.data_dir, exc)
            else:
                log.exception("final flush of %s failed; its data stays in the WAL", self.data_dir)
        finally:
            try:
                s.wal.close()
            finally:
                s.versions.close()
                self.registry.close()
                os.close(s.lock_fd)
        if error is not None:
            raise StorageError(f"closing {self.data_dir}: final flush failed: {error}") from error

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Engine({str(self.data_dir)!r}, {state})"
