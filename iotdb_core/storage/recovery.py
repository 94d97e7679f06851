"""Opening a data directory: lock it, load the schema and the manifest, clean ``sequence/``, replay the WAL.

:func:`open_state` returns a recovered :class:`~iotdb_core.storage.state.EngineState` (threads not yet
started), or raises and releases everything it took. Steps (``docs/storage.md``, Recovery):

1. take ``LOCK`` (:class:`DataDirLockedError` if held);
2. load ``schema.log`` (a torn tail is truncated) and ``MANIFEST`` (none: empty state);
3. remove every file of ``sequence/`` the manifest does not list; open the listed TsFiles and seed the
   last-point cache from their metadata;
4. replay the WAL records from the manifest's replay point into memtables, applying each tombstone at its
   place among them; open the WAL for appending; correct the last-point cache where tombstones cover it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pluggy

from iotdb_core.config import Settings
from iotdb_core.datatypes import INT64_MAX, TSDataType
from iotdb_core.storage import blockstats, codec
from iotdb_core.storage.codec import SeriesChunk
from iotdb_core.storage.errors import CorruptionError, DataDirLockedError
from iotdb_core.storage.ingest import Ingest
from iotdb_core.storage.manifest import MANIFEST, read_manifest
from iotdb_core.storage.memtable import LastCache, SeriesKey
from iotdb_core.storage.reads import ReadPath
from iotdb_core.storage.schema import SchemaRegistry, make_schema
from iotdb_core.storage.state import EngineState
from iotdb_core.storage.tombstones import Tombstone
from iotdb_core.storage.ttl import TtlRules
from iotdb_core.storage.version import TableFile, VersionSet
from iotdb_core.storage.wal import WalCorruptionError, WriteAheadLog
from iotdb_core.storage.writes import apply_chunks

__all__ = ["LOCK_FILE", "WAL_DIR", "open_state"]

log = logging.getLogger("iotdb.storage")

LOCK_FILE = "LOCK"
WAL_DIR = "wal"


def open_state(data_dir: Path, settings: Settings, plugins: pluggy.PluginManager | None) -> EngineState:
    """Lock and recover ``data_dir``. Raises DataDirLockedError, CorruptionError or an OSError."""
    data_dir.mkdir(parents=True, exist_ok=True)
    state = EngineState(data_dir, settings, plugins, _lock_data_dir(data_dir))
    try:
        _recover(state)
    except BaseException:
        _abandon(state)
        raise
    return state


def _recover(s: EngineState) -> None:
    settings = s.settings
    s.sequence_dir.mkdir(exist_ok=True)
    s.registry = SchemaRegistry(s.data_dir, settings.default_database_level)
    s.ingest = Ingest(s.registry, s.conversion, settings.enable_auto_create_schema, settings.enable_partial_insert)

    s.manifest = read_manifest(s.data_dir)
    (s.data_dir / (MANIFEST + ".tmp")).unlink(missing_ok=True)
    live = {entry.name: entry for entry in s.manifest.files}
    for path in s.sequence_dir.iterdir():
        if path.name.endswith(blockstats.SUFFIX) and path.name[: -len(blockstats.SUFFIX)] in live:
            continue  # the block statistics of a live file
        if path.name not in live and path.is_file():
            log.info("removing %s: not in the manifest (left by an interrupted flush or compaction)", path)
            path.unlink()
    tables: list[TableFile] = []
    for name, entry in live.items():
        path = s.sequence_dir / name
        if not path.is_file():
            raise CorruptionError(f"manifest {s.data_dir / MANIFEST} lists {path}, which is missing")
        tables.append(TableFile(path, entry))
    s.next_version = s.manifest.next_version
    s.ttl = TtlRules(dict(s.manifest.ttl), settings.timestamp_precision)
    s.last = _last_points_of(tables)

    # Every live file is older than next_version; tombstones of memtables that were never flushed
    # get the version of the memtable they are replayed into.
    first = s.next_version
    tombstones = [replace(t, version=min(t.version, first)) for t in s.manifest.tombstones]
    s.versions = VersionSet(tables, s.new_memtable(), tombstones)
    wal_dir = s.data_dir / WAL_DIR
    tombstones = _replay(s, wal_dir, tombstones)
    s.wal = WriteAheadLog(
        wal_dir,
        s.wal_mode,
        segment_size=int(settings.wal_file_size_threshold_in_byte),
        sync_delay_ms=float(settings.wal_sync_mode_fsync_delay_in_ms),
        async_delay_ms=float(settings.wal_async_mode_fsync_delay_in_ms),
    )
    # A log without records (wal_mode DISABLE) numbers anew: no record can precede those tombstones.
    boundary = s.wal.next_seq
    tombstones = [t if t.seq <= boundary else replace(t, seq=boundary) for t in tombstones]
    s.manifest = replace(s.manifest, tombstones=tuple(tombstones))
    s.versions.install(tombstones=tombstones)
    _repair_last(s)


def _abandon(s: EngineState) -> None:
    """Release what a failed open acquired."""
    for name in ("wal", "versions", "registry"):
        part = s.__dict__.get(name)
        if part is not None:
            try:
                part.close()
            except Exception:
                log.exception("closing %s after a failed open of %s", name, s.data_dir)
    os.close(s.lock_fd)


def _replay(s: EngineState, wal_dir: Path, tombstones: list[Tombstone]) -> list[Tombstone]:
    """Apply WAL records not yet in a TsFile, sealing memtables that reach the size threshold.

    A tombstone whose WAL boundary lies among the replayed records is applied to the memtable being
    rebuilt when replay reaches it, and takes that memtable's version. Returns the tombstones.
    """
    start = s.manifest.wal_replay_from
    pending = sorted((t for t in tombstones if t.seq > start), key=lambda t: (t.seq, t.id))
    done: dict[int, Tombstone] = {}

    def apply_pending(seq: int) -> None:
        while pending and pending[0].seq <= seq:
            tombstone = pending.pop(0)
            mutable = s.versions.current.mutable
            mutable.delete(tombstone.touches, tombstone.start, tombstone.end)
            done[tombstone.id] = replace(tombstone, version=mutable.version)

    records = 0
    try:
        for seq, payload in WriteAheadLog.replay(wal_dir, skip_corrupt=s.settings.wal_skip_corrupt_records):
            if seq < start:
                continue
            apply_pending(seq)
            mutable = s.versions.current.mutable
            if mutable.size >= s.threshold:
                mutable.freeze(seq)
                s.versions.install(add_memtable=s.new_memtable())
                mutable = s.versions.current.mutable
            chunks = [chunk for chunk in codec.decode(payload) if _replayable(s, chunk)]
            with mutable.lock:
                apply_chunks(s.last, mutable, chunks)
            records += 1
    except WalCorruptionError as exc:
        raise CorruptionError(str(exc)) from exc
    apply_pending(INT64_MAX)
    if records:
        log.info("replayed %d WAL records from %s", records, wal_dir)
    return [done.get(t.id, t) for t in tombstones]


def _replayable(s: EngineState, chunk: SeriesChunk) -> bool:
    """Whether a logged chunk belongs to a live series, creating its schema if it was never recorded.

    A chunk of a series deleted since (absent, or re-created with another type) is skipped: the
    deletion's tombstone hides it.
    """
    schema = s.registry.get(chunk.device, chunk.measurement)
    if schema is None:
        if s.registry.was_dropped(chunk.device, chunk.measurement):
            return False
        schema = make_schema(chunk.device, chunk.measurement, chunk.data_type)
        s.registry.create_series([schema], auto_database=True, exist_ok=True)
        return True
    return schema.data_type is chunk.data_type


def _repair_last(s: EngineState) -> None:
    """Correct the recovered last-point cache where tombstones or deleted series make it wrong."""
    version = s.versions.current
    reads = ReadPath(s)
    for key, point in s.last.items():
        schema = s.registry.get(*key)
        if schema is None:
            s.last.set(key, None)
        elif any(t.start <= point[0] <= t.end and t.touches(key) for t in version.tombstones):
            s.last.set(key, reads.tail(version, key, schema, INT64_MAX))


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
