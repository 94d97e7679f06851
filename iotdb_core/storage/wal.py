"""The write-ahead log: every write is appended here before it is applied to a memtable.

Files
    ``<data_dir>/wal/`` holds segment files ``<first_seq:020d>.wal`` and a ``LOCK`` file. An open
    :class:`WriteAheadLog` holds an exclusive ``flock`` on ``LOCK``, so one log at a time writes a directory.

Record format (details in :mod:`iotdb_core.storage.wal_format`)
    A 16-byte header ``struct '<IIQ'`` = payload length, CRC32 (``zlib.crc32`` over the 8 stored bytes of
    the sequence number followed by the payload), sequence number; then the payload. Records follow each
    other with no padding; sequence numbers strictly increase through the log (gaps are allowed).

Durability (:class:`WalMode`)
    SYNC: :meth:`WriteAheadLog.append` returns once the record is on disk. Concurrent writers share
    fsyncs (group commit): an append only queues its framed record in memory, and a batch is the records
    queued since the last fsync. A writer whose record is not yet durable waits for the fsync in progress;
    if none is running, the writer whose record completes the batch — as many appends as the previous
    fsync covered — leads the next one at once: it writes every queued record with one pwritev(2) (a
    record's header and payload are separate buffers, so a large payload is not copied once more) and
    fdatasyncs, then wakes the others. A writer that finds its batch incomplete sleeps until that fsync
    ends, or at most ``sync_delay_ms``, after which it leads the fsync itself; a smaller batch than
    expected makes the next expected batch one append smaller (so a writer that left is not waited for
    for long); a lone writer never waits. Thus each fsync costs one sleep and one
    wake-up per writer but the leader, and no hand-over to another thread: with several writers per fsync
    the hand-overs between threads would cost as much as the fsync itself. Queuing spares each writer
    its own write(2), during which another thread would take the interpreter lock.
    ASYNC: ``append`` returns after write(2): the record survives a crash of the process but not of the
    machine until a background thread fsyncs, every ``async_delay_ms``.
    DISABLE: nothing is written; sequence numbers are still handed out.

Segments
    A new segment starts when the next write would take the current one past ``segment_size``, on
    :meth:`WriteAheadLog.roll`, and when a log is opened on a directory whose last segment is not empty.
    The segment being closed is cut to its records and fsynced before the next is created, so only the
    last segment of a directory can end in a partly written record. :meth:`WriteAheadLog.release`
    deletes segments whose records are all older than a given sequence number.

    The segment being written is allocated ahead of its records, ``PREALLOCATE_BYTES`` at a time, with
    ``posix_fallocate``: the space reads as zero bytes until written. On ext4 (measured by
    ``bench/storage_bench.py``) an fsync after a write into allocated space costs about a third less than
    after a write that extends the file, and in SYNC mode that fsync is what a write waits for. Recovery
    treats zero bytes after the last record as unused space, not as damage, and cuts them off silently.

Recovery
    Opening a log, and :meth:`WriteAheadLog.replay`, truncate a torn tail: non-zero bytes at the end of
    the last segment after which no valid record follows (an interrupted write). Any other damage is corruption:
    replay raises :class:`WalCorruptionError` naming the segment and byte offset, or, with
    ``skip_corrupt`` (configuration ``wal_skip_corrupt_records=true``), logs it and resumes at the next
    valid record.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from iotdb_core.durable import fsync_dir
from iotdb_core.storage.wal_format import (
    HEADER_SIZE,
    BadRegion,
    Record,
    Unused,
    encode_many,
    header,
    list_segments,
    scan,
    segment_name,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "WalCorruptionError",
    "WalError",
    "WalMode",
    "WalStats",
    "WriteAheadLog",
]

DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024
#: How far ahead of its records the segment being written is allocated.
PREALLOCATE_BYTES = 1024 * 1024
LOCK_FILE = "LOCK"

_log = logging.getLogger("iotdb.wal")
_IOV_MAX = max(16, os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 1024)  # buffers per pwritev
_datasync = getattr(os, "fdatasync", os.fsync)


class WalMode(enum.Enum):
    """When an append is durable; named after IoTDB's ``wal_mode``."""

    SYNC = "SYNC"
    ASYNC = "ASYNC"
    DISABLE = "DISABLE"


class WalError(Exception):
    """The write-ahead log cannot be used: it is closed, in use, or an I/O error made it unreliable."""


class WalCorruptionError(WalError):
    """A segment holds bytes that are not valid records and are not a torn tail."""

    def __init__(self, path: Path, offset: int, size: int, trailing: bool) -> None:
        where = "up to the end of the segment" if trailing else "before the next valid record"
        super().__init__(
            f"corrupt WAL record in segment {path} at byte offset {offset}: {size} bytes {where} cannot "
            f"be read; start with wal_skip_corrupt_records=true to skip them (their records are lost)"
        )
        self.path = path
        self.offset = offset
        self.size = size


@dataclass(frozen=True)
class WalStats:
    """Counters since the log was opened; ``writes`` counts appends, one per append or batch."""

    records: int
    writes: int
    fsyncs: int
    bytes_written: int


class WriteAheadLog:
    """A segmented, checksummed append-only log of byte payloads. Thread-safe.

    Opening truncates a torn tail of the last segment and continues numbering after its last record, in a
    new segment. Recovery reads the existing records first, before or after opening but before appending::

        for seq, payload in WriteAheadLog.replay(wal_dir, skip_corrupt=skip):
            apply(payload)
        wal = WriteAheadLog(wal_dir, WalMode.SYNC)
    """

    def __init__(
        self,
        directory: Path,
        mode: WalMode,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        sync_delay_ms: float = 1.0,
        async_delay_ms: float = 1000.0,
    ) -> None:
        if segment_size <= 0:
            raise ValueError(f"segment_size must be positive, got {segment_size}")
        if sync_delay_ms < 0:
            raise ValueError(f"sync_delay_ms must not be negative, got {sync_delay_ms}")
        if async_delay_ms <= 0:
            raise ValueError(f"async_delay_ms must be positive, got {async_delay_ms}")
        self._dir = Path(directory)
        self._mode = mode
        self._segment_size = segment_size
        self._sync_delay = sync_delay_ms / 1000.0
        self._async_delay = async_delay_ms / 1000.0

        self._lock = threading.Lock()
        # Writers waiting for an fsync (or for their batch to complete), rotations and close wait on _cond.
        self._cond = threading.Condition(self._lock)

        self._segments: list[int] = []
        self._fd: int | None = None
        self._size = 0  # bytes of the segment, the records still in _unwritten included
        self._written = 0  # bytes of the segment already written to the file
        self._unwritten: list[bytes] = []  # SYNC mode: framed records (in parts) the next fsync leader writes
        self._allocated = 0
        self._preallocate = True
        self._next_seq = 1
        self._writes = 0
        self._synced = 0
        self._syncing = False
        self._group = 1  # appends the last fsync covered: the size of a complete batch
        self._records = 0
        self._fsyncs = 0
        self._bytes = 0
        self._error: BaseException | None = None
        self._durable = 0  # bytes of the segment known to be on disk (fsynced)
        self._lost: list[tuple[int, int]] = []  # (after, upto]: tickets dropped by resume(), never durable
        self._closed = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

        self._dir.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock_directory(self._dir)
        if lock_fd is None:
            raise WalError(f"WAL directory {self._dir} is in use by another open log")
        self._lock_fd = lock_fd
        try:
            self._open_segments()
        except BaseException:
            if self._fd is not None:
                os.close(self._fd)
            os.close(lock_fd)
            raise
        if mode is WalMode.ASYNC:
            self._syncer = threading.Thread(target=self._sync_periodically, name="iotdb-wal-fsync", daemon=True)
            self._syncer.start()

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def mode(self) -> WalMode:
        return self._mode

    @property
    def next_seq(self) -> int:
        """The sequence number the next appended record will get."""
        return self._next_seq

    def stats(self) -> WalStats:
        with self._lock:
            return WalStats(self._records, self._writes, self._fsyncs, self._bytes)

    def segment_sizes(self) -> list[int]:
        """Bytes of each segment, oldest first: a closed one as on disk, the one being written as logged so far
        (without the space allocated ahead of its records). For figures; the lock is held only to copy the list."""
        with self._lock:
            segments = list(self._segments)
            current = self._size if self._fd is not None else None
        closed = segments[:-1] if current is not None else segments
        sizes = []
        for first in closed:
            try:
                sizes.append((self._dir / segment_name(first)).stat().st_size)
            except FileNotFoundError:  # released since the list was copied
                continue
        if current is not None:
            sizes.append(current)
        return sizes

    @staticmethod
    def replay(directory: Path, *, skip_corrupt: bool = False) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for every record in ``directory``, in sequence order.

        A torn tail is truncated and logged, unless a log is open on the directory (opening it already
        truncated the tail; what follows is being written). Other damage raises
        :class:`WalCorruptionError`, or with ``skip_corrupt`` is logged and skipped.
        """
        directory = Path(directory)
        if not directory.is_dir():
            return
        lock_fd = _lock_directory(directory)
        try:
            segments = list_segments(directory)
            last_seq = 0
            for index, (first_seq, path) in enumerate(segments):
                is_last = index == len(segments) - 1
                for item in scan(path.read_bytes(), max(last_seq, first_seq - 1)):
                    if isinstance(item, Record):
                        last_seq = item.seq
                        yield item.seq, item.payload
                    elif isinstance(item, Unused):
                        if is_last and lock_fd is not None:
                            _cut(path, item.offset)
                    elif is_last and item.trailing:
                        if lock_fd is not None:
                            _truncate_torn_tail(path, item)
                    elif skip_corrupt:
                        _log.warning(
                            "WAL segment %s: skipped %d corrupt bytes at byte offset %d",
                            path,
                            item.size,
                            item.offset,
                        )
                    else:
                        raise WalCorruptionError(path, item.offset, item.size, item.trailing)
        finally:
            if lock_fd is not None:
                os.close(lock_fd)

    def append(self, payload: bytes) -> int:
        """Append one record and return its sequence number once it is as durable as the mode promises."""
        with self._lock:
            seq, ticket = self._append_locked(payload)
            if ticket and self._mode is WalMode.SYNC:
                self._await_durable(ticket)
            return seq

    def append_deferred(self, payload: bytes) -> int:
        """Append one record without waiting for durability, and return its ticket.

        :meth:`wait_durable` with the ticket then waits for durability later, off the caller's thread
        (0 means there is nothing to wait for). In ASYNC mode the record is written on return; in SYNC
        mode it is queued for the fsync that :meth:`wait_durable` leads or joins.
        """
        with self._lock:
            return self._append_locked(payload)[1]

    def _append_locked(self, payload: bytes) -> tuple[int, int]:
        """Write one record (lock held); return its sequence number and write ticket (0 in DISABLE mode)."""
        self._check_writable()
        if self._mode is WalMode.DISABLE:
            seq = self._next_seq
            self._next_seq = seq + 1
            self._records += 1
            return seq, 0
        self._make_room(len(payload) + HEADER_SIZE)  # may wait, releasing the lock: read seq after it
        seq = self._next_seq
        # Header and payload stay two buffers, written with one pwritev(2): a tablet's payload is not copied.
        return seq, self._write([header(seq, payload), payload], 1)

    def wait_durable(self, ticket: int) -> None:
        """Return once every write up to ``ticket`` is as durable as the mode promises.

        Concurrent waiters share fsyncs exactly as appending writers do.
        """
        if self._mode is not WalMode.SYNC:
            return
        with self._lock:
            self._await_durable(ticket)

    def append_many(self, payloads: Sequence[bytes]) -> int:
        """Append consecutive records with one write and one durability wait; return the last one's seq.

        With no payloads nothing is written and the last sequence number handed out is returned.
        """
        with self._lock:
            self._check_writable()
            if not payloads:
                return self._next_seq - 1
            if self._mode is WalMode.DISABLE:
                self._next_seq += len(payloads)
                self._records += len(payloads)
                return self._next_seq - 1
            self._make_room(sum(map(len, payloads)) + HEADER_SIZE * len(payloads))
            first = self._next_seq
            ticket = self._write([encode_many(first, payloads)], len(payloads))
            if self._mode is WalMode.SYNC:
                self._await_durable(ticket)
            return first + len(payloads) - 1

    def roll(self) -> int:
        """Close the current segment and return the sequence number the next segment starts from.

        Every record appended before the call has a smaller sequence number than the returned one.
        """
        with self._lock:
            self._check_writable()
            if self._mode is not WalMode.DISABLE:
                while self._syncing:
                    self._cond.wait()
                    self._check_writable()
                if self._size > 0:
                    self._rotate()
            return self._next_seq

    def resume(self) -> None:
        """Accept appends again after a failed write or fsync.

        The segment being written is cut back to its last durable record (so the log holds only whole,
        fsynced records), fsynced and closed, and a new segment is started; records appended since the last
        fsync are dropped and their waiters fail (none of them was acknowledged). Raises WalError, leaving
        the log failed, when the disk still cannot take it.
        """
        with self._lock:
            self._check_open()
            while self._syncing:
                self._cond.wait()
            if self._mode is WalMode.DISABLE:
                self._error = None
                return
            try:
                fd = self._fd
                keep = self._durable if self._mode is WalMode.SYNC else self._written
                if fd is not None:
                    os.ftruncate(fd, keep)
                    _datasync(fd)
                self._unwritten.clear()
                if fd is not None and self._segments and self._segments[-1] == self._next_seq:
                    # no record of this segment got a sequence number past its name: go on writing it
                    self._size = self._written = self._allocated = self._durable = keep
                else:
                    if fd is not None:
                        os.close(fd)
                        self._fd = None
                    self._create_segment()
            except OSError as exc:
                self._error = exc
                raise WalError(f"write-ahead log in {self._dir} cannot resume: {exc}") from exc
            if self._synced < self._writes:
                self._lost.append((self._synced, self._writes))
            self._synced = self._writes
            self._group = 1
            self._error = None
            self._cond.notify_all()
            if self._mode is WalMode.ASYNC and (self._syncer is None or not self._syncer.is_alive()):
                self._syncer = threading.Thread(target=self._sync_periodically, name="iotdb-wal-fsync", daemon=True)
                self._syncer.start()

    def release(self, before_seq: int) -> int:
        """Delete every segment whose records all have sequence numbers below ``before_seq``.

        The segment being written is kept. Returns the number of segments deleted.
        """
        with self._lock:
            self._check_open()
            # A segment's records are below the next segment's first sequence number.
            ends = [*self._segments[1:], self._next_seq][: len(self._segments)]
            doomed = [first for first, end in zip(self._segments, ends, strict=True) if end <= before_seq]
            if self._fd is not None and len(doomed) == len(self._segments):
                doomed.pop()
            del self._segments[: len(doomed)]
        for first in doomed:
            (self._dir / segment_name(first)).unlink(missing_ok=True)
        if doomed:
            fsync_dir(self._dir)
        return len(doomed)

    def close(self) -> None:
        """Make every appended record durable and close the log. Closing twice does nothing."""
        self._stop.set()
        try:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                while self._syncing:
                    self._cond.wait()
                fd = self._fd
                try:
                    if fd is not None and self._error is None:
                        self._write_unwritten()
                        cut = self._allocated > self._written
                        if cut:
                            os.ftruncate(fd, self._written)
                        if cut or self._synced < self._writes:
                            _datasync(fd)
                            self._fsyncs += 1
                            self._synced = self._writes
                except OSError as exc:
                    self._error = exc
                    raise WalError(f"write or fsync of WAL segment in {self._dir} failed: {exc}") from exc
                finally:
                    self._fd = None
                    if fd is not None:
                        os.close(fd)
                    os.close(self._lock_fd)
                    self._cond.notify_all()
        finally:
            if self._syncer is not None and self._syncer is not threading.current_thread():
                self._syncer.join()

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open_segments(self) -> None:
        segments = list_segments(self._dir)
        self._segments = [first for first, _ in segments]
        reusable: Path | None = None
        if segments:
            first_seq, path = segments[-1]
            size, last_seq = _recover_tail(path, first_seq)
            self._next_seq = max(last_seq + 1, first_seq)
            if size == 0:
                reusable = path
        if self._mode is WalMode.DISABLE:
            return
        if reusable is not None:
            self._fd = os.open(reusable, os.O_WRONLY | os.O_CLOEXEC)
            self._size = self._written = self._allocated = 0
        else:
            self._create_segment()

    def _create_segment(self) -> None:
        path = self._dir / segment_name(self._next_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._size = self._written = self._allocated = self._durable = 0
        self._segments.append(self._next_seq)
        fsync_dir(self._dir)

    def _allocate(self, end: int) -> None:
        """Allocate the segment up to at least ``end`` bytes, a chunk ahead (lock held).

        Where the file system cannot allocate ahead, writes extend the file as they go.
        """
        fd = self._fd
        assert fd is not None
        target = max(end, min(end + PREALLOCATE_BYTES, self._segment_size))
        try:
            os.posix_fallocate(fd, self._allocated, target - self._allocated)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return  # no room to allocate ahead now: the write itself will tell
            self._preallocate = False
            _log.info("WAL segments in %s are not allocated ahead: %s", self._dir, exc)
            return
        self._allocated = target

    def _check_open(self) -> None:
        if self._closed:
            raise WalError(f"write-ahead log in {self._dir} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._error is not None:
            raise WalError(f"write-ahead log in {self._dir} failed earlier: {self._error}") from self._error

    def _make_room(self, size: int) -> None:
        """Start a new segment if ``size`` more bytes would overflow the current one (lock held)."""
        while self._size > 0 and self._size + size > self._segment_size:
            if self._syncing:
                self._cond.wait()
                self._check_writable()
            else:
                self._rotate()

    def _rotate(self) -> None:
        """Cut, fsync and close the current segment and create the next one (lock held, no fsync running)."""
        fd = self._fd
        assert fd is not None
        try:
            self._write_unwritten()
            if self._allocated > self._written:
                os.ftruncate(fd, self._written)
            _datasync(fd)
            self._fsyncs += 1
            self._synced = self._writes
            os.close(fd)
            self._fd = None
            self._create_segment()
        except OSError as exc:
            self._error = exc
            raise WalError(f"cannot start a new WAL segment in {self._dir}: {exc}") from exc
        finally:
            self._cond.notify_all()

    def _write(self, parts: list[bytes], records: int) -> int:
        """Log framed records at the end of the segment (lock held); return the append's ticket.

        In SYNC mode the records are only queued: the caller waits for an fsync anyway, and the leader of
        that fsync writes every queued record with one pwritev(2) just before it. In ASYNC mode they are
        written at once.
        """
        if self._mode is WalMode.SYNC:
            self._unwritten.extend(parts)
        else:
            try:
                self._write_out(parts)
            except OSError as exc:
                raise WalError(f"cannot write to WAL segment in {self._dir}: {exc}") from exc
        size = sum(map(len, parts))
        self._size += size
        self._next_seq += records
        self._records += records
        self._bytes += size
        self._writes += 1
        return self._writes

    def _write_out(self, parts: list[bytes]) -> None:
        """Write buffers, in order, at the end of what the segment file holds (lock held, or owned by the
        fsync leader)."""
        fd = self._fd
        assert fd is not None
        offset = self._written
        size = sum(map(len, parts))
        if self._preallocate and offset + size > self._allocated:
            self._allocate(offset + size)
        try:
            _pwrite_all(fd, parts, offset)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
                self._allocated = offset
            raise
        self._written = offset + size

    def _take_unwritten(self) -> list[bytes]:
        """The queued records' buffers, leaving the queue empty (lock held)."""
        parts = self._unwritten
        self._unwritten = []
        return parts

    def _write_unwritten(self) -> None:
        """Write the queued records (lock held, no fsync running)."""
        buf = self._take_unwritten()
        if buf:
            self._write_out(buf)

    def _await_durable(self, ticket: int) -> None:
        """Return once write ``ticket`` is fsynced, leading an fsync when the batch is complete (lock held)."""
        for after, upto in self._lost:
            if after < ticket <= upto:
                raise WalError(f"write-ahead log in {self._dir} failed before the record was synced; it was dropped")
        deadline = 0.0
        while self._synced < ticket:
            if self._error is not None:
                raise WalError(f"write-ahead log in {self._dir} failed: {self._error}") from self._error
            if self._closed:
                raise WalError(f"write-ahead log in {self._dir} was closed before the record was synced")
            if self._syncing:
                self._cond.wait()
                continue
            if self._writes - self._synced >= self._group or self._sync_delay <= 0:
                self._sync()
                continue
            # The batch is incomplete: the writer completing it leads the fsync, which wakes us.
            now = time.monotonic()
            if not deadline:
                deadline = now + self._sync_delay
            if now >= deadline:
                self._sync()
            else:
                self._cond.wait(deadline - now)

    def _sync(self) -> None:
        """Fsync everything written so far, releasing the lock during the fsync (lock held, none running)."""
        self._syncing = True
        try:
            fd, target = self._fd, self._writes
            if fd is None or target <= self._synced:
                return
            buf = self._take_unwritten()
            self._lock.release()
            try:
                if buf:
                    self._write_out(buf)
                end = self._written
                _datasync(fd)
            finally:
                self._lock.acquire()
            self._durable = end
            self._fsyncs += 1
            # A batch smaller than expected (a writer was late, or is gone) shrinks the next by one only:
            # one late writer must not make every later batch wait for it again, nor halve the batches.
            self._group = max(target - self._synced, self._group - 1)
            self._synced = target
        except OSError as exc:
            self._error = exc
            raise WalError(f"write or fsync of WAL segment in {self._dir} failed: {exc}") from exc
        finally:
            self._syncing = False
            self._cond.notify_all()

    def _sync_periodically(self) -> None:
        while not self._stop.wait(self._async_delay):
            with self._lock:
                if self._closed or self._error is not None:
                    return
                if self._syncing or self._synced >= self._writes:
                    continue
                try:
                    self._sync()
                except WalError:
                    _log.exception("background fsync of the write-ahead log in %s failed", self._dir)
                    return


def _pwrite_all(fd: int, parts: list[bytes], offset: int) -> None:
    """Write ``parts`` one after the other at ``offset`` with as few pwritev(2) calls as the kernel allows."""
    views = [memoryview(part) for part in parts if len(part)]
    first = 0
    while first < len(views):
        done = os.pwritev(fd, views[first : first + _IOV_MAX], offset)
        offset += done
        while first < len(views) and done >= len(views[first]):
            done -= len(views[first])
            first += 1
        if done:
            views[first] = views[first][done:]


def _lock_directory(directory: Path) -> int | None:
    """Take the directory's exclusive lock; None if another open log holds it."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _recover_tail(path: Path, first_seq: int) -> tuple[int, int]:
    """Truncate a torn tail of the last segment; return its size and last valid sequence number (or 0).

    Corruption followed by valid records is left alone: :meth:`WriteAheadLog.replay` reports it.
    Unused allocated space at the end is cut off too.
    """
    data = path.read_bytes()
    last_seq = 0
    for item in scan(data, first_seq - 1):
        if isinstance(item, Record):
            last_seq = item.seq
        elif isinstance(item, Unused):
            _cut(path, item.offset)
            return item.offset, last_seq
        elif item.trailing:
            _truncate_torn_tail(path, item)
            return item.offset, last_seq
    return len(data), last_seq


def _cut(path: Path, size: int) -> None:
    """Truncate a segment to ``size`` bytes, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_torn_tail(path: Path, region: BadRegion) -> None:
    _cut(path, region.offset)
    _log.warning(
        "WAL segment %s: dropped a torn tail of %d bytes at byte offset %d (a write interrupted by a crash)",
        path,
        region.size,
        region.offset,
    )
