"""Everything an open engine holds, and every lock with what it guards: the one place to look.

The jobs of the engine (:mod:`~iotdb_core.storage.recovery`, :mod:`~iotdb_core.storage.reads`,
:mod:`~iotdb_core.storage.writes`, :mod:`~iotdb_core.storage.background`) share one :class:`EngineState`;
none of them keeps state of its own. Lock order, outermost first (a thread holding one lock only takes
locks below it): ``close_lock``; ``flush_lock``/``compaction_lock``; ``gate`` (exclusive); ``manifest_lock``;
the WAL's and the version set's internal locks; a memtable's ``lock``; ``memory``; ``wake_flush``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pluggy

from iotdb_core.config import Settings
from iotdb_core.storage.columns import Conversion
from iotdb_core.storage.errors import EngineClosedError
from iotdb_core.storage.gate import Gate
from iotdb_core.storage.health import HealthMonitor
from iotdb_core.storage.ingest import Ingest
from iotdb_core.storage.manifest import SEQUENCE_DIR, ManifestState, write_manifest
from iotdb_core.storage.memtable import LastCache, MemTable
from iotdb_core.storage.schema import SchemaRegistry
from iotdb_core.storage.stats import WorkTracker
from iotdb_core.storage.tombstones import Purge, discardable
from iotdb_core.storage.ttl import TtlRules
from iotdb_core.storage.version import TableFile, VersionSet
from iotdb_core.storage.wal import WalMode, WriteAheadLog

__all__ = ["EngineState", "NoHooks"]


class _NoHook:
    """A hook nobody implements: calling it returns no results."""

    def __call__(self, **kwargs: Any) -> list[Any]:
        return []

    def get_hookimpls(self) -> list[Any]:
        return []


class NoHooks:
    """The hook relay of an engine opened without a plugin manager."""

    _hook = _NoHook()

    def __getattr__(self, name: str) -> _NoHook:
        return self._hook


class EngineState:
    """The shared state of one open data directory (filled by :func:`~iotdb_core.storage.recovery.recover`)."""

    def __init__(
        self, data_dir: Path, settings: Settings, plugins: pluggy.PluginManager | None, lock_fd: int
    ) -> None:
        # ---- fixed at open
        self.data_dir = data_dir
        self.settings = settings
        self.plugins = plugins
        #: the ``iotdb`` hooks (``hookspecs``); without a plugin manager none is implemented
        self.hook: Any = plugins.hook if plugins is not None else NoHooks()
        self.lock_fd = lock_fd  #: flock on <data_dir>/LOCK, held until close
        self.sequence_dir = data_dir / SEQUENCE_DIR
        self.conversion = Conversion.from_settings(settings)
        self.threshold = int(settings.memtable_size_threshold)
        self.budget = int(settings.memtable_memory_budget_in_byte)
        self.stall_timeout = settings.write_stall_timeout_in_ms / 1000.0
        self.flush_interval = settings.memtable_flush_interval_in_ms / 1000.0
        self.files_per_level = int(settings.compaction_files_per_level)
        self.wal_mode = WalMode(settings.wal_mode)

        # ---- set by recovery; the objects guard themselves (registry, WAL, version set: internal locks)
        self.registry: SchemaRegistry
        self.ingest: Ingest
        self.versions: VersionSet  #: the current Version; readers pin one (``versions.pinned()``)
        self.wal: WriteAheadLog
        self.last: LastCache  #: newest point per series; written under the mutable memtable's ``lock``
        self.health: HealthMonitor  #: the read-only state (full or unwritable disk); guards itself

        # ---- guarded by ``manifest_lock``: the manifest on disk and its in-memory copy change together
        self.manifest_lock = threading.Lock()
        self.manifest: ManifestState
        self.ttl: TtlRules  #: replaced whole (readers take the reference without the lock)

        # ---- guarded by ``gate``: a writer holds it shared from WAL append to memtable insert; sealing a
        # memtable, deletions and TTL changes hold it exclusively
        self.gate = Gate()
        self.next_version = 0  #: version of the next memtable (exclusive gate, or recovery)
        self.schema_epoch = 0  #: bumped by delete_timeseries: writes validated before it validate again

        # ---- guarded by ``memory``: bytes reserved by writes in flight beyond the memtables' size
        self.memory = threading.Condition(threading.Lock())
        self.reserved = 0

        # ---- background work
        self.flush_lock = threading.Lock()  #: one flusher writes sealed memtables at a time
        self.compaction_lock = threading.Lock()  #: one compaction or TTL expiry at a time
        self.wake_flush = threading.Condition(threading.Lock())  #: guards ``freeze_requested``
        self.freeze_requested = False
        self.wake_compaction = threading.Event()
        self.stopping = False  #: set once by close; the threads exit
        self.background_error: BaseException | None = None  #: the last flush failure, for error messages
        self.flush_work = WorkTracker()  #: flushes running, done, failed and their durations; guards itself
        self.compaction_work = WorkTracker()  #: the same for compactions

        # ---- guarded by ``close_lock``
        self.close_lock = threading.Lock()
        self.closed = False

    def check_open(self) -> None:
        if self.closed:
            raise EngineClosedError(f"storage engine on {self.data_dir} is closed")

    def new_memtable(self) -> MemTable:
        """A memtable with the next version (the caller holds the gate exclusively, or recovers)."""
        memtable = MemTable(self.next_version)
        self.next_version += 1
        return memtable

    def purge(self) -> Purge:
        """What a flush or compaction starting now leaves out: tombstoned and expired points."""
        with self.manifest_lock:
            tombstones = self.versions.current.tombstones
            mark = self.manifest.next_tombstone - 1
            ttl = self.ttl
        now = ttl.now()
        return Purge(tombstones, mark, lambda key: ttl.cutoff(key, now))

    def publish(
        self,
        state: ManifestState,
        *,
        add_files: Sequence[TableFile] = (),
        drop_files: Iterable[str] = (),
        drop_memtable: MemTable | None = None,
    ) -> None:
        """Write ``state`` as the manifest and install the matching version (the caller holds ``manifest_lock``).

        Tombstones that can no longer hide anything in the resulting version are dropped from both.
        """
        dropped = set(drop_files)
        current = self.versions.current
        files = [table for table in current.files if table.entry.name not in dropped] + list(add_files)
        memtables = [mem.version for mem in current.memtables if mem is not drop_memtable]
        kept = tuple(t for t in state.tombstones if not discardable(t, state.wal_replay_from, files, memtables))
        if len(kept) != len(state.tombstones):
            state = replace(state, tombstones=kept)
        write_manifest(self.data_dir, state)
        self.manifest = state
        self.versions.install(add_files=add_files, drop_files=dropped, drop_memtable=drop_memtable, tombstones=kept)
