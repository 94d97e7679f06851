"""The storage engine: writes through the WAL into memtables, flushes to TsFiles, compacts, reads.

Write path: validate (:mod:`~iotdb_core.storage.ingest`), wait for memory if the memtables are over
budget, pass the gate, append one WAL record and wait until it is durable per ``wal_mode``, apply it
to the mutable memtable and the last-point cache, leave the gate. A background flush thread seals the
mutable memtable (at ``memtable_size_threshold``, after ``memtable_flush_interval_in_ms``, on
:meth:`Engine.flush` and on close), writes it to one TsFile, records the file and the WAL replay point
in the manifest, and releases the WAL segments the file covers. A background compaction thread merges
full levels and removes files whose points have all expired by TTL. Reads take a reference-counted
:class:`~iotdb_core.storage.version.Version`, drop what its tombstones hide and TTL expired, and merge
its files and memtables newest-wins.

Deletions are tombstones (:mod:`~iotdb_core.storage.tombstones`) written to the manifest before
:meth:`Engine.delete` returns; TTL rules (:mod:`~iotdb_core.storage.ttl`) live in the manifest too.
:meth:`Engine.scan` answers a range as file statistics where they are exact and points elsewhere.

Recovery on open: take the directory lock, load the schema log and the manifest, delete files of
``sequence/`` the manifest does not list, replay the WAL records numbered from the manifest's replay
point into memtables (applying each tombstone at its place among them), rebuild the last-point cache,
start the background threads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pluggy

from iotdb_core.config import Settings, default_settings
from iotdb_core.datatypes import INT64_MAX, INT64_MIN, Compressor, TSDataType, TSEncoding
from iotdb_core.formatter import Row
from iotdb_core.hookspecs import FlushInfo
from iotdb_core.patterns import Pattern, compile_pattern, matches, pattern_text, series_nodes
from iotdb_core.plugin_manager import create_plugin_manager
from iotdb_core.storage import blockstats, codec
from iotdb_core.storage.blockstats import BlockStats
from iotdb_core.storage.codec import SeriesChunk
from iotdb_core.storage.columns import NUMPY_DTYPE, Conversion, to_array
from iotdb_core.storage.compaction import compact, pick
from iotdb_core.storage.errors import (
    CorruptionError,
    DataDirLockedError,
    EngineClosedError,
    StorageError,
    WriteRejectedError,
)
from iotdb_core.storage.flush import flush_memtable
from iotdb_core.storage.gate import Gate
from iotdb_core.storage.ingest import Ingest, PreparedRows, PreparedTablet, check_series_encoding, data_types
from iotdb_core.storage.manifest import MANIFEST, SEQUENCE_DIR, ManifestState, read_manifest, write_manifest
from iotdb_core.storage.memtable import LastCache, MemTable, SeriesKey
from iotdb_core.storage.merge import Run, merge_runs
from iotdb_core.storage.results import (
    PointsSegment,
    Segment,
    SeriesResult,
    StatsSegment,
    WriteFailure,
    WriteResult,
)
from iotdb_core.storage.schema import (
    SchemaRegistry,
    SeriesSchema,
    canonical_device,
    make_schema,
    split_series_path,
)
from iotdb_core.storage.tombstones import (
    Purge,
    Tombstone,
    covers_all,
    discardable,
    drop_ranges,
    hidden_ranges,
)
from iotdb_core.storage.tsfile_io import SeriesInfo
from iotdb_core.storage.ttl import TtlRules
from iotdb_core.storage.version import TableFile, Version, VersionSet
from iotdb_core.storage.wal import WalCorruptionError, WalMode, WriteAheadLog

__all__ = ["Engine", "PendingWrite", "PointsSegment", "Segment", "SeriesResult", "StatsSegment", "WriteFailure",
           "WriteResult"]

log = logging.getLogger("iotdb.storage")

LOCK_FILE = "LOCK"
WAL_DIR = "wal"
_RETRY_DELAY = 1.0
_TAIL_WIDTH = 1024  # first window of the backward search for a series' newest visible point
_STATS_TYPES = frozenset(
    {TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE}
)


class Engine:
    """An open data directory. Thread-safe; use :meth:`open`, and close it (or use ``with``)."""

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        settings: Settings | None = None,
        plugins: pluggy.PluginManager | None = None,
    ) -> Engine:
        """Open (creating if needed) and recover ``data_dir``.

        Raises DataDirLockedError when another process or engine has it open.
        """
        return cls(Path(data_dir), settings or default_settings(), plugins or create_plugin_manager(
            load_entry_points=False
        ))

    def __init__(self, data_dir: Path, settings: Settings, plugins: pluggy.PluginManager) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self._plugins = plugins
        self._hook = plugins.hook
        self._closed = False
        self._close_lock = threading.Lock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_data_dir(data_dir)
        try:
            self._recover()
        except BaseException:
            self._abandon_open()
            raise
        self._flush_thread = threading.Thread(target=self._flush_loop, name="iotdb-flush", daemon=True)
        self._compaction_thread = threading.Thread(
            target=self._compaction_loop, name="iotdb-compaction", daemon=True
        )
        self._flush_thread.start()
        self._compaction_thread.start()
        self._hook.iotdb_startup(engine=self, settings=settings)

    def _recover(self) -> None:
        settings = self.settings
        self._sequence_dir = self.data_dir / SEQUENCE_DIR
        self._sequence_dir.mkdir(exist_ok=True)
        self.registry = SchemaRegistry(self.data_dir, settings.default_database_level)
        self._conversion = Conversion.from_settings(settings)
        self._ingest = Ingest(
            self.registry, self._conversion, settings.enable_auto_create_schema, settings.enable_partial_insert
        )
        self._threshold = int(settings.memtable_size_threshold)
        self._budget = int(settings.memtable_memory_budget_in_byte)
        self._stall_timeout = settings.write_stall_timeout_in_ms / 1000.0
        self._flush_interval = settings.memtable_flush_interval_in_ms / 1000.0
        self._files_per_level = int(settings.compaction_files_per_level)

        self._manifest = read_manifest(self.data_dir)
        (self.data_dir / (MANIFEST + ".tmp")).unlink(missing_ok=True)
        live = {entry.name: entry for entry in self._manifest.files}
        for path in self._sequence_dir.iterdir():
            if path.name.endswith(blockstats.SUFFIX) and path.name[: -len(blockstats.SUFFIX)] in live:
                continue  # the block statistics of a live file
            if path.name not in live and path.is_file():
                log.info("removing %s: not in the manifest (left by an interrupted flush or compaction)", path)
                path.unlink()
        tables: list[TableFile] = []
        for name, entry in live.items():
            path = self._sequence_dir / name
            if not path.is_file():
                raise CorruptionError(f"manifest {self.data_dir / MANIFEST} lists {path}, which is missing")
            tables.append(TableFile(path, entry))
        self._next_version = self._manifest.next_version
        self._ttl = TtlRules(dict(self._manifest.ttl), settings.timestamp_precision)
        self._schema_epoch = 0
        self._last = _last_points_of(tables)

        self._gate = Gate()
        self._memory = threading.Condition(threading.Lock())
        self._reserved = 0
        self._flush_lock = threading.Lock()
        self._manifest_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self._wake_flush = threading.Condition(threading.Lock())
        self._freeze_requested = False
        self._wake_compaction = threading.Event()
        self._stopping = False
        self._background_error: BaseException | None = None

        # Every live file is older than next_version; tombstones of memtables that were never flushed
        # get the version of the memtable they are replayed into.
        first = self._next_version
        tombstones = [replace(t, version=min(t.version, first)) for t in self._manifest.tombstones]
        self._versions = VersionSet(tables, self._new_memtable(), tombstones)
        self._wal_mode = WalMode(settings.wal_mode)
        wal_dir = self.data_dir / WAL_DIR
        tombstones = self._replay(wal_dir, tombstones)
        self._wal = WriteAheadLog(
            wal_dir,
            self._wal_mode,
            segment_size=int(settings.wal_file_size_threshold_in_byte),
            sync_delay_ms=float(settings.wal_sync_mode_fsync_delay_in_ms),
            async_delay_ms=float(settings.wal_async_mode_fsync_delay_in_ms),
        )
        # A log without records (wal_mode DISABLE) numbers anew: no record can precede those tombstones.
        boundary = self._wal.next_seq
        tombstones = [t if t.seq <= boundary else replace(t, seq=boundary) for t in tombstones]
        self._manifest = replace(self._manifest, tombstones=tuple(tombstones))
        self._versions.install(tombstones=tombstones)
        self._repair_last()

    def _abandon_open(self) -> None:
        """Release what a failed open acquired."""
        for name in ("_wal", "_versions", "registry"):
            part = self.__dict__.get(name)
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.exception("closing %s after a failed open of %s", name, self.data_dir)
        os.close(self._lock_fd)

    def _new_memtable(self) -> MemTable:
        memtable = MemTable(self._next_version)
        self._next_version += 1
        return memtable

    def _replay(self, wal_dir: Path, tombstones: list[Tombstone]) -> list[Tombstone]:
        """Apply WAL records not yet in a TsFile, sealing memtables that reach the size threshold.

        A tombstone whose WAL boundary lies among the replayed records is applied to the memtable being
        rebuilt when replay reaches it, and takes that memtable's version. Returns the tombstones.
        """
        start = self._manifest.wal_replay_from
        pending = sorted((t for t in tombstones if t.seq > start), key=lambda t: (t.seq, t.id))
        done: dict[int, Tombstone] = {}

        def apply_pending(seq: int) -> None:
            while pending and pending[0].seq <= seq:
                tombstone = pending.pop(0)
                mutable = self._versions.current.mutable
                mutable.delete(tombstone.touches, tombstone.start, tombstone.end)
                done[tombstone.id] = replace(tombstone, version=mutable.version)

        records = 0
        try:
            for seq, payload in WriteAheadLog.replay(wal_dir, skip_corrupt=self.settings.wal_skip_corrupt_records):
                if seq < start:
                    continue
                apply_pending(seq)
                mutable = self._versions.current.mutable
                if mutable.size >= self._threshold:
                    mutable.freeze(seq)
                    self._versions.install(add_memtable=self._new_memtable())
                    mutable = self._versions.current.mutable
                chunks = [chunk for chunk in codec.decode(payload) if self._replayable(chunk)]
                with mutable.lock:
                    self._apply_chunks(mutable, chunks)
                records += 1
        except WalCorruptionError as exc:
            raise CorruptionError(str(exc)) from exc
        apply_pending(INT64_MAX)
        if records:
            log.info("replayed %d WAL records from %s", records, wal_dir)
        return [done.get(t.id, t) for t in tombstones]

    def _replayable(self, chunk: SeriesChunk) -> bool:
        """Whether a logged chunk belongs to a live series, creating its schema if it was never recorded.

        A chunk of a series deleted since (absent, or re-created with another type) is skipped: the
        deletion's tombstone hides it.
        """
        schema = self.registry.get(chunk.device, chunk.measurement)
        if schema is None:
            if self.registry.was_dropped(chunk.device, chunk.measurement):
                return False
            schema = make_schema(chunk.device, chunk.measurement, chunk.data_type)
            self.registry.create_series([schema], auto_database=True, exist_ok=True)
            return True
        return schema.data_type is chunk.data_type

    def _repair_last(self) -> None:
        """Correct the recovered last-point cache where tombstones or deleted series make it wrong."""
        version = self._versions.current
        for key, point in self._last.items():
            schema = self.registry.get(*key)
            if schema is None:
                self._last.set(key, None)
            elif any(t.start <= point[0] <= t.end and t.touches(key) for t in version.tombstones):
                self._last.set(key, self._tail(version, key, schema, INT64_MAX))

    # ------------------------------------------------------------------------------------ context manager

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise EngineClosedError(f"storage engine on {self.data_dir} is closed")

    # --------------------------------------------------------------------------------------------- schema

    def create_database(self, path: str) -> str:
        """Create a database (``root.<name>...``); returns its canonical path. SchemaError if it exists."""
        self._check_open()
        return self.registry.create_database(path)

    def list_databases(self) -> list[str]:
        """Every database, sorted."""
        return self.registry.databases()

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
        self._check_open()
        device, measurement = split_series_path(path)
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
        self.registry.create_series(
            [schema], auto_database=self.settings.enable_auto_create_schema, exist_ok=False
        )
        return schema

    def list_series(self, pattern: str | None = None) -> list[SeriesSchema]:
        """Series whose path matches ``pattern`` (``*`` one level, ``**`` one or more), sorted by path."""
        series = sorted(self.registry.all_series(), key=lambda s: (s.device, s.measurement))
        if pattern is None:
            return series
        wanted = compile_pattern(pattern)
        return [s for s in series if matches(wanted, series_nodes(s.device, s.measurement))]

    def list_devices(self) -> list[str]:
        """Every device with at least one series, sorted."""
        return self.registry.devices()

    # --------------------------------------------------------------------------------------------- writes

    def insert_record(
        self,
        device: str,
        timestamp: int,
        measurements: Sequence[str],
        values: Sequence[Any],
        types: Sequence[TSDataType | None] | None = None,
    ) -> WriteResult:
        """Write one device's values at one timestamp (None values are skipped)."""
        row = Row(device, timestamp, tuple(measurements), tuple(values), None if types is None else tuple(types))
        return self.write_rows([row])

    def insert_records(
        self,
        devices: Sequence[str],
        timestamps: Sequence[int],
        measurements_list: Sequence[Sequence[str]],
        values_list: Sequence[Sequence[Any]],
        types_list: Sequence[Sequence[TSDataType | None] | None] | None = None,
    ) -> WriteResult:
        """Write several rows with one WAL record and one durability wait."""
        count = len(devices)
        if not (len(timestamps) == len(measurements_list) == len(values_list) == count) or (
            types_list is not None and len(types_list) != count
        ):
            raise ValueError("insert_records: devices, timestamps, measurements, values (and types) differ in length")
        rows = [
            Row(
                devices[i],
                timestamps[i],
                tuple(measurements_list[i]),
                tuple(values_list[i]),
                None if types_list is None or types_list[i] is None else tuple(types_list[i]),  # type: ignore[arg-type]
            )
            for i in range(count)
        ]
        return self.write_rows(rows)

    def write_rows(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows of any devices with one WAL record and one durability wait (the MQTT ingest path)."""
        return self.write_rows_deferred(rows).wait()

    def write_rows_deferred(self, rows: Sequence[Row]) -> PendingWrite:
        """Write rows like :meth:`write_rows` but return before the durability wait.

        The rows are logged (in SYNC mode queued for the next fsync, which writes them) and visible to reads; call
        :meth:`PendingWrite.wait` — from any thread — before acknowledging them. This lets the MQTT
        ingest thread go on formatting the next batch while an fsync covers this one.
        """
        self._check_open()
        rows = list(rows)
        if self._hook.iotdb_before_write.get_hookimpls():
            self._hook.iotdb_before_write(rows=rows, settings=self.settings)
        return self._write_rows_deferred(rows)

    def _write_rows_deferred(self, rows: list[Row]) -> PendingWrite:
        """:meth:`write_rows_deferred` once the ``iotdb_before_write`` hooks ran."""
        while True:
            epoch = self._schema_epoch
            prepared = self._ingest.rows(rows)
            result = WriteResult(prepared.points, prepared.failures)
            ticket = self._commit(prepared, epoch, wait=False) if prepared.points else 0
            if ticket is not None:
                return PendingWrite(self, rows, result, ticket)

    def _wait_durable(self, pending: PendingWrite) -> None:
        if pending.ticket:
            self._wal.wait_durable(pending.ticket)
        if self._hook.iotdb_after_write.get_hookimpls():
            self._hook.iotdb_after_write(rows=pending.rows, result=pending.result)

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
        self._check_open()
        types = data_types(types, "insert_tablet: types", len(measurements))
        rows: list[Row] | None = None
        if self._hook.iotdb_before_write.get_hookimpls():
            # Hooks see the tablet as rows. When they leave every row as it was (the usual case for a
            # validating plugin), the tablet is still written column by column.
            rows = _tablet_rows(device, timestamps, measurements, columns, types)
            given = list(rows)
            self._hook.iotdb_before_write(rows=rows, settings=self.settings)
            if len(rows) != len(given) or any(row is not before for row, before in zip(rows, given, strict=True)):
                return self._write_rows_deferred(rows).wait()
        while True:
            epoch = self._schema_epoch
            prepared = self._ingest.tablet(device, timestamps, measurements, columns, types)
            result = WriteResult(prepared.points, prepared.failures)
            if not prepared.points or self._commit(prepared, epoch) is not None:
                break
        if self._hook.iotdb_after_write.get_hookimpls():
            if rows is None:
                rows = _tablet_rows(device, timestamps, measurements, columns, types)
            self._hook.iotdb_after_write(rows=rows, result=result)
        return result

    def _commit(self, prepared: PreparedRows | PreparedTablet, epoch: int, *, wait: bool = True) -> int | None:
        """Log and apply validated points: memory reservation, gate, WAL, memtable.

        Returns a WAL ticket; with ``wait=False`` the caller must wait for it to be durable. Returns None,
        writing nothing, when series were deleted since the points were validated against the schema of
        ``epoch``: the caller validates them again (re-creating the series).
        """
        if isinstance(prepared, PreparedRows):
            encode: Callable[[], bytes] = lambda: codec.encode_series(prepared.chunks)  # noqa: E731
            apply: Callable[[MemTable], None] = lambda mem: self._apply_chunks(mem, prepared.chunks)  # noqa: E731
        else:
            encode = lambda: codec.encode_tablet(prepared.device, prepared.timestamps, prepared.columns)  # noqa: E731
            apply = lambda mem: self._apply_tablet(mem, prepared)  # noqa: E731
        payload = encode() if self._wal_mode is not WalMode.DISABLE else b""
        reserved = self._reserve(prepared.nbytes)
        try:
            self._gate.enter()
            try:
                self._check_open()
                if self._schema_epoch != epoch:
                    return None
                if wait:
                    self._wal.append(payload)
                    ticket = 0
                else:
                    ticket = self._wal.append_deferred(payload)
                mutable = self._versions.current.mutable
                with mutable.lock:
                    apply(mutable)
            finally:
                self._gate.leave()
        finally:
            if reserved:
                with self._memory:
                    self._reserved -= reserved
        if mutable.size >= self._threshold:
            self._request_freeze()
        return ticket

    def _apply_chunks(self, mem: MemTable, chunks: Iterable[SeriesChunk]) -> None:
        """Insert series chunks into ``mem`` and the last cache (caller holds ``mem.lock``)."""
        last = self._last
        for chunk in chunks:
            key = (chunk.device, chunk.measurement)
            timestamps, values = chunk.timestamps, chunk.values
            if len(timestamps) == 1:
                value = values[0]
                mem.append(key, chunk.data_type, timestamps[0], value)
                last.offer(key, int(timestamps[0]), value.item() if isinstance(value, np.generic) else value)
                continue
            if not isinstance(timestamps, np.ndarray):
                timestamps = np.array(timestamps, dtype=np.int64)
            if not isinstance(values, np.ndarray):
                values = to_array(values, chunk.data_type)
            mem.extend(key, chunk.data_type, timestamps, values)
            last.offer_many(key, timestamps, values)

    def _apply_tablet(self, mem: MemTable, tablet: PreparedTablet) -> None:
        last = self._last
        for column in tablet.columns:
            key = (tablet.device, column.measurement)
            timestamps = tablet.timestamps if column.mask is None else tablet.timestamps[column.mask]
            values = column.values
            assert isinstance(values, np.ndarray)
            mem.extend(key, column.data_type, timestamps, values)
            last.offer_many(key, timestamps, values)

    # ------------------------------------------------------------------------------------------- memory

    def _memory_used(self) -> int:
        return sum(mem.size for mem in self._versions.current.memtables) + self._reserved

    def _reserve(self, nbytes: int) -> int:
        """Wait until the memtables have room for ``nbytes`` more, or reject the write; return the bytes reserved.

        A small write far below the budget reserves nothing and takes no lock: concurrent writers can then
        overshoot by at most a few small writes while staying under half the budget.
        """
        if nbytes <= self._budget >> 6 and self._memory_used() + nbytes <= self._budget >> 1:
            return 0
        with self._memory:
            used = self._memory_used()
            if used + nbytes <= self._budget or used == 0:
                self._reserved += nbytes
                return nbytes
            deadline = time.monotonic() + self._stall_timeout
            while True:
                if len(self._versions.current.memtables) == 1 and not self._versions.current.mutable.empty:
                    self._request_freeze()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failing = self._background_error
                    raise WriteRejectedError(
                        f"write rejected: memory budget exceeded (memtable_memory_budget_in_byte={self._budget}): "
                        f"memtables hold {used} bytes and this write needs about {nbytes} more; waited "
                        f"{self._stall_timeout * 1000:.0f} ms (write_stall_timeout_in_ms) for flushes to free memory"
                        + ("" if failing is None else f"; flushes are failing: {failing}")
                    )
                self._memory.wait(min(remaining, 0.05))
                self._check_open()
                used = self._memory_used()
                if used + nbytes <= self._budget or used == 0:
                    self._reserved += nbytes
                    return nbytes

    def _memory_freed(self) -> None:
        with self._memory:
            self._memory.notify_all()

    # --------------------------------------------------------------------------------------------- reads

    def query(self, path: str, start: int | None = None, end: int | None = None) -> SeriesResult:
        """Points of one series with ``start <= time <= end`` (both inclusive; None = unbounded), in time order.

        Deleted points and points expired by TTL are left out. A series that does not exist yields an
        empty result with ``data_type`` None.
        """
        self._check_open()
        device, measurement = split_series_path(path)
        schema = self.registry.get(device, measurement)
        if schema is None:
            return SeriesResult(np.empty(0, np.int64), np.empty(0, np.float64), None)
        key = (device, measurement)
        low, high = self._visible_range(key, start, end)
        merged = None
        if low <= high:
            version = self._versions.acquire()
            try:
                merged = merge_runs([run for _, run in self._visible_runs(version, key, schema, low, high)])
            finally:
                self._versions.release(version)
        if merged is None:
            return SeriesResult(np.empty(0, np.int64), np.empty(0, NUMPY_DTYPE[schema.data_type]), schema.data_type)
        return SeriesResult(merged[0], merged[1], schema.data_type)

    def scan(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[Segment]:
        """The points ``query(path, start, end)`` returns, as segments for aggregate pushdown.

        Segments are in time order and do not overlap. A :class:`StatsSegment` stands for the series in
        one TsFile whose time range lies within the range and that nothing else can change: no other
        file or memtable holds a point of the series within its time range, no tombstone or TTL rule
        touches it, and its statistics are exact (numeric and BOOLEAN series; FLOAT/DOUBLE without NaN).
        Where such a file has block statistics (:mod:`~iotdb_core.storage.blockstats`) and the range's ends
        or one of ``bounds`` (times where the caller cuts, e.g. GROUP BY window starts and ends: ``x`` cuts
        ``[a, b]`` when ``a < x <= b``) cut it, or it holds NaN, it yields one StatsSegment per usable block
        lying wholly inside the range instead, and points for the rest.
        Everything else is in :class:`PointsSegment` segments, merged newest-wins as ``query`` merges them.
        """
        self._check_open()
        device, measurement = split_series_path(path)
        schema = self.registry.get(device, measurement)
        if schema is None:
            return []
        key = (device, measurement)
        low, high = self._visible_range(key, start, end)
        if low > high:
            return []
        version = self._versions.acquire()
        try:
            cuts = None if bounds is None else np.unique(np.asarray(bounds, dtype=np.int64))
            return self._scan(version, key, schema, low, high, cuts)
        finally:
            self._versions.release(version)

    def _scan(
        self, version: Version, key: SeriesKey, schema: SeriesSchema, low: int, high: int, cuts: np.ndarray | None
    ) -> list[Segment]:
        data_type = schema.data_type
        candidates: list[TableFile] = []
        spans: dict[int, tuple[int, int]] = {}  # a candidate's time range clipped to [low, high]
        blocks_of: dict[int, BlockStats | None] = {}
        if data_type in _STATS_TYPES:
            for table in version.files:
                info = table.series.get(key)
                if info is None or not info.count or info.data_type is not data_type:
                    continue
                if info.end_time < low or info.start_time > high:
                    continue
                whole = info.start_time >= low and info.end_time <= high and _whole_file_exact(info, data_type)
                split = not whole
                if whole and cuts is not None:
                    first, last = np.searchsorted(cuts, [info.start_time, info.end_time], side="right")
                    split = bool(first != last)
                blocks = table.blocks(key, data_type) if split else None
                if blocks is None and not whole:
                    continue  # without blocks a cut file's segment is read back as points by the caller
                lo, hi = max(low, info.start_time), min(high, info.end_time)
                if hidden_ranges(version.tombstones, key, table.entry.version, table.entry.tombstone_mark, lo, hi):
                    continue
                candidates.append(table)
                spans[id(table)] = (lo, hi)
                blocks_of[id(table)] = blocks
        chosen = {id(table) for table in candidates}
        runs = self._visible_runs(version, key, schema, low, high, skip=chosen)
        changed = True
        while changed:  # a candidate that another source overlaps is read as points, which may overlap others
            changed = False
            for table in list(candidates):
                lo, hi = spans[id(table)]
                if any(
                    other is not table and spans[id(other)][0] <= hi and spans[id(other)][1] >= lo
                    for other in candidates
                ) or any(_holds_between(run[0], lo, hi) for _, run in runs):
                    candidates.remove(table)
                    chosen.discard(id(table))
                    runs.extend(self._visible_runs(version, key, schema, low, high, only=table))
                    changed = True
        runs.sort(key=lambda item: item[0])
        merged = merge_runs([run for _, run in runs])
        segments: list[Segment] = []
        position = 0
        for table in sorted(candidates, key=lambda t: spans[id(t)][0]):
            lo, hi = spans[id(table)]
            if merged is not None:
                cut = int(np.searchsorted(merged[0], lo, side="left"))
                if cut > position:
                    segments.append(PointsSegment(merged[0][position:cut], merged[1][position:cut]))
                position = cut
            blocks = blocks_of[id(table)]
            if blocks is None:
                info = table.series[key]
                segments.append(
                    StatsSegment(
                        info.start_time,
                        info.end_time,
                        info.count,
                        float(info.sum_value),  # type: ignore[arg-type]
                        info.min_value,
                        info.max_value,
                        info.first_value,  # type: ignore[arg-type]
                        info.last_value,  # type: ignore[arg-type]
                    )
                )
            else:
                segments.extend(_block_segments(table, key, data_type, blocks, lo, hi))
        if merged is not None and position < len(merged[0]):
            segments.append(PointsSegment(merged[0][position:], merged[1][position:]))
        return segments

    def _visible_range(self, key: SeriesKey, start: int | None, end: int | None) -> tuple[int, int]:
        """The asked range narrowed to what the series' TTL leaves visible now."""
        low = INT64_MIN if start is None else int(start)
        high = INT64_MAX if end is None else int(end)
        ttl = self._ttl
        if ttl:
            low = max(low, ttl.cutoff(key, ttl.now()))
        return low, high

    def _visible_runs(
        self,
        version: Version,
        key: SeriesKey,
        schema: SeriesSchema,
        low: int,
        high: int,
        *,
        skip: set[int] | frozenset[int] = frozenset(),
        only: TableFile | None = None,
    ) -> list[tuple[int, Run]]:
        """The series' runs within ``[low, high]`` without tombstoned points, with each source's place.

        Sources are numbered oldest first (files, then memtables), the order :func:`merge_runs` needs.
        Files in ``skip`` are left out; with ``only`` just that file is read. Data of another type is
        that of a deleted and re-created series, hidden by the deletion's tombstone, and is left out.
        """
        runs: list[tuple[int, Run]] = []
        tombstones = version.tombstones
        data_type = schema.data_type
        for place, table in enumerate(version.files):
            if (only is not None and table is not only) or id(table) in skip:
                continue
            info = table.series.get(key)
            if info is None or info.data_type is not data_type or info.end_time < low or info.start_time > high:
                continue
            lo, hi = max(low, info.start_time), min(high, info.end_time)
            ranges = hidden_ranges(tombstones, key, table.entry.version, table.entry.tombstone_mark, lo, hi)
            if covers_all(ranges, lo, hi):
                continue
            run = table.read(key, data_type, lo, hi)
            if run is not None:
                runs.append((place, drop_ranges(run[0], run[1], ranges)))
        if only is not None:
            return runs
        offset = len(version.files)
        for place, mem in enumerate(version.memtables, offset):
            if mem.series_type(key) is not data_type:
                continue
            ranges = hidden_ranges(tombstones, key, mem.version, 0, low, high)
            if covers_all(ranges, low, high):
                continue
            run = mem.read(key, low, high)
            if run is not None:
                runs.append((place, drop_ranges(run[0], run[1], ranges)))
        return runs

    def _tail(self, version: Version, key: SeriesKey, schema: SeriesSchema, high: int) -> tuple[int, Any] | None:
        """The newest visible point at or before ``high`` (ignoring TTL), read in widening windows backwards."""
        floor = INT64_MAX
        for table in version.files:
            info = table.series.get(key)
            if info is not None and info.count and info.data_type is schema.data_type:
                floor = min(floor, info.start_time)
        for mem in version.memtables:
            if mem.series_type(key) is schema.data_type:
                run = mem.read(key, INT64_MIN, high)
                if run is not None:
                    floor = min(floor, int(run[0][0]))
        width = _TAIL_WIDTH
        while high >= floor:
            low = max(floor, high - width + 1)
            merged = merge_runs([run for _, run in self._visible_runs(version, key, schema, low, high)])
            if merged is not None and len(merged[0]):
                value = merged[1][-1]
                return int(merged[0][-1]), value.item() if isinstance(value, np.generic) else value
            high = low - 1
            width *= 16
        return None

    def last(self, path: str) -> tuple[int, Any] | None:
        """The point with the largest timestamp of a series, or None; served from memory.

        None also when that point has expired by TTL (then every point has).
        """
        self._check_open()
        key = split_series_path(path)
        point = self._last.get(key)
        ttl = self._ttl
        if point is not None and ttl and point[0] < ttl.cutoff(key, ttl.now()):
            return None
        return point

    # ------------------------------------------------------------------------------------------ deletion

    def delete(self, path_pattern: str, start: int | None = None, end: int | None = None) -> int:
        """Delete the points with ``start <= time <= end`` (both inclusive; None = unbounded) of every series
        ``path_pattern`` matches (``*`` one level, ``**`` one or more); returns the number of series matched.

        The deletion is durable when the call returns (a tombstone in the manifest). It hides only points
        written before the call: points written afterwards, at any timestamp, stay visible.
        """
        self._check_open()
        pattern = compile_pattern(path_pattern)
        low = INT64_MIN if start is None else int(start)
        high = INT64_MAX if end is None else int(end)
        self._gate.close()
        try:
            self._check_open()
            keys = self._matching_keys(pattern)
            if keys and low <= high:
                self._delete_locked(pattern, keys, low, high)
            return len(keys)
        finally:
            self._gate.open()

    def delete_timeseries(self, path_pattern: str) -> int:
        """Remove every series ``path_pattern`` matches from the schema and delete all its points.

        Returns the number of series removed. Writing to a removed series creates it anew (when schema
        auto-creation is on), possibly with another type; its old points never come back.
        """
        self._check_open()
        pattern = compile_pattern(path_pattern)
        self._gate.close()
        try:
            self._check_open()
            keys = self._matching_keys(pattern)
            if not keys:
                return 0
            self._delete_locked(pattern, keys, INT64_MIN, INT64_MAX)
            self.registry.drop_series(keys)
            self._schema_epoch += 1  # writes validated against the old schema validate again
            for key in keys:
                self._last.set(key, None)
            return len(keys)
        finally:
            self._gate.open()

    def _matching_keys(self, pattern: Pattern) -> list[SeriesKey]:
        return sorted(
            (schema.device, schema.measurement)
            for schema in self.registry.all_series()
            if matches(pattern, series_nodes(schema.device, schema.measurement))
        )

    def _delete_locked(self, pattern: Pattern, keys: list[SeriesKey], low: int, high: int) -> None:
        """Record a tombstone and correct the last-point cache (the caller holds the gate exclusively).

        When the mutable memtable holds points the deletion covers it is sealed first, so the tombstone
        gets the version of a memtable that has no point from before the call.
        """
        mutable = self._versions.current.mutable
        present = mutable.keys()
        if any(
            mutable.read(key, low, high) is not None
            for key in present
            if matches(pattern, series_nodes(key[0], key[1]))
        ):
            self._freeze_locked()
            self._wake_flusher()
        version = self._versions.current.mutable.version
        with self._manifest_lock:
            state = self._manifest.with_tombstone(pattern_text(pattern), low, high, version, self._wal.next_seq)
            self._publish(state)
        current = self._versions.acquire()
        try:
            for key in keys:
                point = self._last.get(key)
                schema = self.registry.get(*key)
                if point is None or schema is None or not low <= point[0] <= high:
                    continue
                self._last.set(key, None if low == INT64_MIN else self._tail(current, key, schema, low - 1))
        finally:
            self._versions.release(current)

    # ------------------------------------------------------------------------------------------------ TTL

    def set_ttl(self, path: str, ttl_ms: int | None) -> None:
        """Set (``None``: remove) the time to live of the points under ``path`` (``root.sg``, ``root.sg.d1``,
        ``root.**``...), in milliseconds; persisted. The most specific rule covering a series applies.

        Points older than ``now - ttl`` (in ``timestamp_precision`` units) are invisible at once and are
        reclaimed by compaction and by removing files whose points have all expired.
        """
        self._check_open()
        self._gate.close()  # the last-point cache is corrected below without concurrent writes
        try:
            self._check_open()
            with self._manifest_lock:
                old = self._ttl
                rules = old.with_rule(path, ttl_ms)
                if rules == old:
                    return
                self._publish(self._manifest.with_ttl(rules.rules))
                self._ttl = rules
            # Points expired under the old rules may be gone from the files; where they become visible
            # again, the cached newest point is recomputed from what is left.
            now = rules.now()
            version = self._versions.acquire()
            try:
                for key, point in self._last.items():
                    schema = self.registry.get(*key)
                    if schema is not None and point[0] < old.cutoff(key, now) and point[0] >= rules.cutoff(key, now):
                        self._last.set(key, self._tail(version, key, schema, INT64_MAX))
            finally:
                self._versions.release(version)
        finally:
            self._gate.open()
        self._wake_compaction.set()

    def list_ttl(self) -> dict[str, int]:
        """The TTL rules, path (``root.sg.**``) to milliseconds."""
        return dict(self._ttl.rules)

    def file_levels(self) -> list[tuple[str, int]]:
        """The live TsFiles (name, level), oldest first."""
        return [(table.entry.name, table.entry.level) for table in self._versions.current.files]

    # ----------------------------------------------------------------------------------------- flushing

    def flush(self) -> None:
        """Seal the mutable memtable and write every sealed memtable to a TsFile before returning."""
        self._check_open()
        self._freeze()
        self._flush_sealed()

    def _request_freeze(self) -> None:
        with self._wake_flush:
            self._freeze_requested = True
            self._wake_flush.notify()

    def _freeze(self) -> None:
        """Seal the mutable memtable (if it holds points) and start a new one."""
        self._gate.close()
        try:
            self._freeze_locked()
        finally:
            self._gate.open()

    def _freeze_locked(self) -> None:
        """:meth:`_freeze` for a caller that holds the gate exclusively."""
        mutable = self._versions.current.mutable
        if mutable.empty:
            return
        mutable.freeze(self._wal.roll())
        self._versions.install(add_memtable=self._new_memtable())

    def _wake_flusher(self) -> None:
        """Have the flush thread write the sealed memtables now."""
        with self._wake_flush:
            self._wake_flush.notify()

    def _purge(self) -> Purge:
        """What a flush or compaction starting now leaves out: tombstoned and expired points."""
        with self._manifest_lock:
            tombstones = self._versions.current.tombstones
            mark = self._manifest.next_tombstone - 1
            ttl = self._ttl
        now = ttl.now()
        return Purge(tombstones, mark, lambda key: ttl.cutoff(key, now))

    def _publish(
        self,
        state: ManifestState,
        *,
        add_files: Sequence[TableFile] = (),
        drop_files: Iterable[str] = (),
        drop_memtable: MemTable | None = None,
    ) -> None:
        """Write ``state`` as the manifest and install the matching version (the caller holds the manifest lock).

        Tombstones that can no longer hide anything in the resulting version are dropped from both.
        """
        dropped = set(drop_files)
        current = self._versions.current
        files = [table for table in current.files if table.entry.name not in dropped] + list(add_files)
        memtables = [mem.version for mem in current.memtables if mem is not drop_memtable]
        kept = tuple(t for t in state.tombstones if not discardable(t, state.wal_replay_from, files, memtables))
        if len(kept) != len(state.tombstones):
            state = replace(state, tombstones=kept)
        write_manifest(self.data_dir, state)
        self._manifest = state
        self._versions.install(add_files=add_files, drop_files=dropped, drop_memtable=drop_memtable, tombstones=kept)

    def _flush_sealed(self) -> None:
        """Flush sealed memtables, oldest first, until none is left."""
        with self._flush_lock:
            while True:
                frozen = self._versions.current.frozen
                if not frozen:
                    return
                self._flush_one(frozen[0])

    def _flush_one(self, memtable: MemTable) -> None:
        memtable.normalize()
        written = flush_memtable(
            memtable, self._sequence_dir, self.registry, self._purge(), self.settings.timestamp_precision
        )
        assert memtable.wal_end is not None
        with self._manifest_lock:
            entry = None if written is None else written[0]
            state = self._manifest.with_flush(entry, memtable.wal_end, memtable.version + 1)
            tables = [] if entry is None else [TableFile(self._sequence_dir / entry.name, entry)]
            self._publish(state, add_files=tables, drop_memtable=memtable)
        self._wal.release(memtable.wal_end)
        self._memory_freed()
        if written is not None:
            entry, summary = written
            self._wake_compaction.set()
            self._hook.iotdb_after_flush(
                info=FlushInfo(summary.path, len(summary.series), summary.point_count, summary.file_size)
            )

    def _flush_loop(self) -> None:
        while True:
            with self._wake_flush:
                if not (self._freeze_requested or self._stopping):
                    self._wake_flush.wait(min(self._flush_interval, 1.0))
                if self._stopping:
                    return
                requested, self._freeze_requested = self._freeze_requested, False
            try:
                mutable = self._versions.current.mutable
                if requested or (not mutable.empty and time.monotonic() - mutable.created >= self._flush_interval):
                    self._freeze()
                self._flush_sealed()
                self._background_error = None
            except Exception as exc:
                self._background_error = exc
                log.exception("flush of %s failed; retrying", self.data_dir)
                with self._wake_flush:
                    self._freeze_requested = True
                    self._wake_flush.wait(_RETRY_DELAY)

    # ---------------------------------------------------------------------------------------- compaction

    def compact(self) -> int:
        """Remove files expired by TTL, then merge full levels until none is left (as the background thread
        does); returns the merges done."""
        self._check_open()
        self._expire_files()
        merges = 0
        while self._compact_once():
            merges += 1
        return merges

    def _compact_once(self) -> bool:
        with self._compaction_lock:
            chosen = pick(self._manifest.files, self._files_per_level)
            if chosen is None:
                return False
            names = {entry.name for entry in chosen}
            version = self._versions.acquire()
            try:
                inputs = [table for table in version.files if table.entry.name in names]
                output = compact(
                    inputs, self._sequence_dir, self.registry, self._purge(), self.settings.timestamp_precision
                )
            finally:
                self._versions.release(version)
            tables = []
            if output is not None:
                path = self._sequence_dir / output.name
                try:
                    tables.append(TableFile(path, output))
                except BaseException:
                    path.unlink(missing_ok=True)
                    blockstats.remove(path)
                    raise
            try:
                with self._manifest_lock:
                    self._publish(self._manifest.with_compaction(names, output), add_files=tables, drop_files=names)
            except BaseException:
                for table in tables:
                    table.source.close()  # the file stays: the next open removes it unless the manifest lists it
                raise
            log.info("compacted %s into %s", sorted(names), "nothing" if output is None else output.name)
            return True

    def _expire_files(self) -> int:
        """Remove the files every point of which has expired by TTL; returns how many."""
        ttl = self._ttl
        if not ttl:
            return 0
        with self._compaction_lock:
            now = ttl.now()
            doomed = {
                table.entry.name
                for table in self._versions.current.files
                if table.series and all(info.end_time < ttl.cutoff(key, now) for key, info in table.series.items())
            }
            if not doomed:
                return 0
            with self._manifest_lock:
                self._publish(self._manifest.without_files(doomed), drop_files=doomed)
        log.info("removed %s: every point expired by TTL", sorted(doomed))
        return len(doomed)

    def _compaction_loop(self) -> None:
        while not self._stopping:
            self._wake_compaction.wait(1.0)
            self._wake_compaction.clear()
            if self._stopping:
                continue
            try:
                self._expire_files()
                if not self.settings.enable_compaction:
                    continue
                while not self._stopping and self._compact_once():
                    pass
            except Exception:
                log.exception("compaction in %s failed; retrying later", self.data_dir)
                time.sleep(_RETRY_DELAY)

    # ------------------------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Call the shutdown hook, stop accepting writes, flush every memtable, stop the threads, unlock.

        If the final flush fails the data stays in the WAL (replayed on the next open) and the error is
        raised after everything is closed.
        """
        with self._close_lock:
            if self._closed:
                return
            self._hook.iotdb_shutdown(engine=self)
            self._closed = True
        with self._memory:
            self._memory.notify_all()
        self._gate.close()
        self._gate.open()
        self._stopping = True
        with self._wake_flush:
            self._wake_flush.notify_all()
        self._wake_compaction.set()
        self._flush_thread.join()
        self._compaction_thread.join()
        error: BaseException | None = None
        try:
            self._freeze()
            self._flush_sealed()
        except Exception as exc:
            error = exc
            log.exception("final flush of %s failed; its data stays in the WAL", self.data_dir)
        finally:
            try:
                self._wal.close()
            finally:
                self._versions.close()
                self.registry.close()
                os.close(self._lock_fd)
        if error is not None:
            raise StorageError(f"closing {self.data_dir}: final flush failed: {error}") from error

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Engine({str(self.data_dir)!r}, {state})"


def _last_points_of(tables: Iterable[TableFile]) -> LastCache:
    """The last-point cache from the files' metadata (a newer file wins a tie).

    TEXT values are read from the data: the metadata's copy of a string ends at its first U+0000.
    """
    newest: dict[SeriesKey, tuple[int, TableFile]] = {}
    for table in sorted(tables, key=lambda t: t.entry.version):
        for key, info in table.series.items():
            current = newest.get(key)
            if info.count and (current is None or info.end_time >= current[0]):
                newest[key] = (info.end_time, table)
    cache = LastCache()
    for key, (end, table) in newest.items():
        info = table.series[key]
        value = info.last_value
        if info.data_type is TSDataType.TEXT:
            run = table.read(key, TSDataType.TEXT, end, end)
            value = None if run is None else run[1][-1]
        cache.offer(key, end, value)
    return cache


def _lock_data_dir(data_dir: Path) -> int:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLockedError(
            f"data directory {data_dir} is in use by another process or engine (lock held on {data_dir / LOCK_FILE})"
        ) from None
    return fd


def _whole_file_exact(info: SeriesInfo, data_type: TSDataType) -> bool:
    """True when a file's statistics of a series are exact (numeric and BOOLEAN; FLOAT/DOUBLE without NaN)."""
    if info.data_type is not data_type or None in (info.sum_value, info.first_value, info.last_value):
        return False
    return data_type is TSDataType.BOOLEAN or (info.min_value is not None and info.max_value is not None)


def _block_segments(
    table: TableFile, key: SeriesKey, data_type: TSDataType, blocks: BlockStats, lo: int, hi: int
) -> list[Segment]:
    """A file's series within ``[lo, hi]`` (nothing else touching it there): one StatsSegment per usable block
    lying wholly inside, points read from the file for the rest (blocks cut by the range, blocks with NaN)."""
    starts, ends = blocks.start_time, blocks.end_time
    used = np.flatnonzero(blocks.usable & (starts >= lo) & (ends <= hi))
    segments: list[Segment] = []

    def read(a: int, b: int) -> None:
        run = table.read(key, data_type, a, b)
        if run is not None and len(run[0]):
            segments.append(PointsSegment(run[0], run[1]))

    if not len(used):
        read(lo, hi)
        return segments
    first, last = int(used[0]), int(used[-1])
    # Points lie between two used blocks only where an unused block sits between them.
    gaps = np.flatnonzero(np.diff(used) > 1)
    gap_after = set(used[gaps].tolist())
    columns = [
        starts[used].tolist(),
        ends[used].tolist(),
        blocks.count[used].tolist(),
        blocks.sum[used].tolist(),
        [None] * len(used) if blocks.min_value is None else blocks.min_value[used].tolist(),
        [None] * len(used) if blocks.max_value is None else blocks.max_value[used].tolist(),
        blocks.first_value[used].tolist(),
        blocks.last_value[used].tolist(),
    ]
    if first > 0 and int(ends[first - 1]) >= lo:
        read(lo, int(starts[first]) - 1)
    for place, (index, *row) in enumerate(zip(used.tolist(), *columns, strict=True)):
        segments.append(StatsSegment(*row))
        if index in gap_after:
            read(row[1] + 1, columns[0][place + 1] - 1)
    if last + 1 < len(blocks) and int(starts[last + 1]) <= hi:
        read(int(ends[last]) + 1, hi)
    return segments


def _holds_between(timestamps: np.ndarray, low: int, high: int) -> bool:
    """True when sorted ``timestamps`` hold a time within ``[low, high]``."""
    index = int(np.searchsorted(timestamps, low, side="left"))
    return index < len(timestamps) and int(timestamps[index]) <= high


def _tablet_rows(
    device: str,
    timestamps: Sequence[int] | np.ndarray,
    measurements: Sequence[str],
    columns: Sequence[Sequence[Any] | np.ndarray],
    types: Sequence[TSDataType | None] | None,
) -> list[Row]:
    """A tablet as rows, for hook implementations."""
    names = tuple(measurements)
    kinds = None if types is None else tuple(types)
    stamps = timestamps.tolist() if isinstance(timestamps, np.ndarray) else list(timestamps)
    lists = [column.tolist() if isinstance(column, np.ndarray) else list(column) for column in columns]
    return [
        Row(device, stamp, names, tuple(column[i] for column in lists), kinds) for i, stamp in enumerate(stamps)
    ]



class PendingWrite:
    """A write whose rows are logged and applied but whose durability wait is still to come."""

    __slots__ = ("_done", "_engine", "result", "rows", "ticket")

    def __init__(self, engine: Engine, rows: list[Row], result: WriteResult, ticket: int) -> None:
        self._engine = engine
        self.rows = rows
        self.result = result
        self.ticket = ticket
        self._done = False

    def wait(self) -> WriteResult:
        """Return the result once the rows are durable per ``wal_mode`` (then ``iotdb_after_write`` runs)."""
        if not self._done:
            self._engine._wait_durable(self)
            self._done = True
        return self.result
