"""Background work: sealing and flushing memtables, compaction and TTL expiry, on their own threads.

``iotdb-flush`` seals the mutable memtable when it reaches ``memtable_size_threshold``, when it is older
than ``memtable_flush_interval_in_ms`` or when asked, and writes sealed memtables to TsFiles oldest first
(:func:`~iotdb_core.storage.flush.flush_memtable`), recording each file and the WAL replay point in the
manifest. ``iotdb-compaction`` removes files whose points all expired by TTL and merges full levels
(:mod:`~iotdb_core.storage.compaction`). :meth:`Background.hold` keeps both from starting new work, so a
test can look at memtables and files that stay as they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from iotdb_core.model import FlushInfo
from iotdb_core.storage import blockstats
from iotdb_core.storage.compaction import compact, pick
from iotdb_core.storage.flush import flush_memtable
from iotdb_core.storage.health import storage_failure
from iotdb_core.storage.memtable import MemTable
from iotdb_core.storage.state import EngineState
from iotdb_core.storage.version import TableFile

__all__ = ["Background"]

log = logging.getLogger("iotdb.storage")

_RETRY_DELAY = 1.0


class Background:
    """The flush and compaction threads of one engine's state, and the calls that run the same work now."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self._flush_thread = threading.Thread(target=self._flush_loop, name="iotdb-flush", daemon=True)
        self._compaction_thread = threading.Thread(
            target=self._compaction_loop, name="iotdb-compaction", daemon=True
        )

    def start(self) -> None:
        self._flush_thread.start()
        self._compaction_thread.start()

    def stop(self) -> None:
        """Make both threads exit and wait for them (the work they are doing finishes first)."""
        s = self.state
        s.stopping = True
        with s.wake_flush:
            s.wake_flush.notify_all()
        s.wake_compaction.set()
        for thread in (self._flush_thread, self._compaction_thread):
            if thread.is_alive():
                thread.join()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Within the block no flush or compaction runs (one running when it starts finishes first).

        Writes, reads and deletions go on; memtables that fill up are sealed but stay in memory.
        """
        s = self.state
        with s.flush_lock, s.compaction_lock:
            yield

    def memory_freed(self) -> None:
        """Wake writers waiting for the memtables to shrink."""
        s = self.state
        with s.memory:
            s.memory.notify_all()

    def flush(self) -> None:
        """Seal the mutable memtable and write every sealed memtable to a TsFile before returning."""
        s = self.state
        s.check_open()
        self.freeze()
        self.flush_sealed()

    def request_freeze(self) -> None:
        s = self.state
        with s.wake_flush:
            s.freeze_requested = True
            s.wake_flush.notify()

    def freeze(self) -> None:
        """Seal the mutable memtable (if it holds points) and start a new one."""
        s = self.state
        with s.gate.exclusive():
            self.freeze_locked()

    def freeze_locked(self) -> None:
        """:meth:`_freeze` for a caller that holds the gate exclusively."""
        s = self.state
        mutable = s.versions.current.mutable
        if mutable.empty:
            return
        mutable.freeze(s.wal.roll())
        s.versions.install(add_memtable=s.new_memtable())

    def wake_flusher(self) -> None:
        """Have the flush thread write the sealed memtables now."""
        s = self.state
        with s.wake_flush:
            s.wake_flush.notify()

    def flush_sealed(self) -> None:
        """Flush sealed memtables, oldest first, until none is left."""
        s = self.state
        with s.flush_lock:
            while True:
                frozen = s.versions.current.frozen
                if not frozen:
                    return
                with s.flush_work.track():
                    self._flush_one(frozen[0])

    def _flush_one(self, memtable: MemTable) -> None:
        s = self.state
        memtable.normalize()
        written = flush_memtable(
            memtable, s.sequence_dir, s.registry, s.purge(), s.settings.timestamp_precision
        )
        assert memtable.wal_end is not None
        with s.manifest_lock:
            entry = None if written is None else written[0]
            state = s.manifest.with_flush(entry, memtable.wal_end, memtable.version + 1)
            tables = [] if entry is None else [TableFile(s.sequence_dir / entry.name, entry)]
            s.publish(state, add_files=tables, drop_memtable=memtable)
        s.wal.release(memtable.wal_end)
        self.memory_freed()
        if written is not None:
            entry, summary = written
            s.wake_compaction.set()
            s.hook.iotdb_after_flush(
                info=FlushInfo(summary.path, len(summary.series), summary.point_count, summary.file_size)
            )

    def _flush_loop(self) -> None:
        s = self.state
        while True:
            with s.wake_flush:
                if not (s.freeze_requested or s.stopping):
                    s.wake_flush.wait(min(s.flush_interval, 1.0))
                if s.stopping:
                    return
                requested, s.freeze_requested = s.freeze_requested, False
            try:
                mutable = s.versions.current.mutable
                if requested or (not mutable.empty and time.monotonic() - mutable.created >= s.flush_interval):
                    self.freeze()
                self.flush_sealed()
                s.background_error = None
            except Exception as exc:
                s.background_error = exc
                cause = storage_failure(exc)
                if cause is not None:
                    s.health.enter(cause)  # logged once; the probe resumes writes and flushes
                else:
                    log.exception("flush of %s failed; retrying", s.data_dir)
                with s.wake_flush:
                    s.freeze_requested = True
                    s.wake_flush.wait(_RETRY_DELAY)

    def compact(self) -> int:
        """Remove files expired by TTL, then merge full levels until none is left (as the background thread
        does); returns the merges done."""
        s = self.state
        s.check_open()
        self.expire_files()
        merges = 0
        while self._compact_once():
            merges += 1
        return merges

    def _compact_once(self) -> bool:
        s = self.state
        with s.compaction_lock, s.compaction_work.track(start=False) as work:
            chosen = pick(s.manifest.files, s.files_per_level)
            if chosen is None:
                return False
            work.start()
            names = {entry.name for entry in chosen}
            with s.versions.pinned() as version:
                inputs = [table for table in version.files if table.entry.name in names]
                output = compact(
                    inputs, s.sequence_dir, s.registry, s.purge(), s.settings.timestamp_precision
                )
            tables = []
            if output is not None:
                path = s.sequence_dir / output.name
                try:
                    tables.append(TableFile(path, output))
                except BaseException:
                    path.unlink(missing_ok=True)
                    blockstats.remove(path)
                    raise
            try:
                with s.manifest_lock:
                    s.publish(s.manifest.with_compaction(names, output), add_files=tables, drop_files=names)
            except BaseException:
                for table in tables:
                    table.source.close()  # the file stays: the next open removes it unless the manifest lists it
                raise
            log.info("compacted %s into %s", sorted(names), "nothing" if output is None else output.name)
            return True

    def expire_files(self) -> int:
        """Remove the files every point of which has expired by TTL; returns how many."""
        s = self.state
        ttl = s.ttl
        if not ttl:
            return 0
        with s.compaction_lock:
            now = ttl.now()
            doomed = {
                table.entry.name
                for table in s.versions.current.files
                if table.series and all(info.end_time < ttl.cutoff(key, now) for key, info in table.series.items())
            }
            if not doomed:
                return 0
            with s.manifest_lock:
                s.publish(s.manifest.without_files(doomed), drop_files=doomed)
        log.info("removed %s: every point expired by TTL", sorted(doomed))
        return len(doomed)

    def _compaction_loop(self) -> None:
        s = self.state
        while not s.stopping:
            s.wake_compaction.wait(1.0)
            s.wake_compaction.clear()
            if s.stopping:
                continue
            try:
                self.expire_files()
                if not s.settings.enable_compaction:
                    continue
                while not s.stopping and self._compact_once():
                    pass
            except Exception as exc:
                cause = storage_failure(exc)
                if cause is not None:
                    s.health.enter(cause)
                else:
                    log.exception("compaction in %s failed; retrying later", s.data_dir)
                time.sleep(_RETRY_DELAY)

