"""The forwarder's durable outbox: every point written locally, in write order, until the target has it.

``<data_dir>/forward/`` holds append-only segment files ``outbox-<number>.log`` and ``cursor.json``, the
position up to which the target acknowledged. A record is a header (payload length, CRC-32 of the payload,
wall-clock time of the append, number of points) and a payload of row groups encoded with :mod:`marshal`
(format version 4, fixed since Python 3.4): ``(device, measurements, types, timestamps, columns)``.

Appends are made durable as the local write is (``wal_mode``): SYNC fsyncs before :meth:`Outbox.append`
returns, shared by the writers that wait at the same time; ASYNC leaves it to a background fsync every
second; DISABLE never fsyncs. The cursor is replaced atomically after each acknowledged batch: after a crash
the sender resumes there, and what it resends is harmless, since a point rewritten at its timestamp is the
same point. A torn record at the end of the last segment (a crash during the append) is cut off on open.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotdb_core.durable import atomic_write, fsync_dir

log = logging.getLogger("iotdb.forward")

#: A row group: device, measurements, IoTDB type names (``None`` where the local schema decides), timestamps
#: and one list of values per measurement (``None`` for no value).
RowGroup = tuple[str, tuple[str, ...], tuple[str | None, ...], list[int], list[list[Any]]]

_HEADER = struct.Struct("<IIdI")
_MARSHAL_VERSION = 4
#: A segment is closed once it is this large; segments the cursor has passed are deleted.
SEGMENT_BYTES = 64 * 1024 * 1024
_CURSOR = "cursor.json"


@dataclass(frozen=True, order=True)
class Position:
    """A place in the outbox: segment number and byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class Record:
    """One appended write, as read back."""

    end: Position
    appended_at: float
    points: int
    groups: list[RowGroup]
    size: int


class Outbox:
    """Segmented append-only log with a durable cursor; appends from many threads, one reader."""

    def __init__(self, directory: Path, fsync: str = "SYNC") -> None:
        self.directory = directory
        self.fsync_mode = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self.cursor, self.forwarded_points = self._read_cursor()
        self._segments = sorted(self._segment_numbers())
        if not self._segments or self._segments[-1] < self.cursor.segment:
            self._segments.append(max(self.cursor.segment, self._segments[-1] + 1 if self._segments else 0))
        self._repair_tail()
        self._write_number = self._segments[-1]
        self._file = open(self._path(self._write_number), "ab")  # noqa: SIM115 - kept open for appends
        self._written = self._file.tell()
        self._synced_seq = 0
        self._append_seq = 0
        #: Points and bytes appended and not yet acknowledged by the target, and the oldest such append.
        self.backlog_points, self.backlog_bytes, self.oldest_unsent = self._scan_backlog()
        self.appended_points = self.forwarded_points + self.backlog_points
        self._read_position = self.cursor

    # ------------------------------------------------------------------ writing

    def append(self, groups: Sequence[RowGroup], points: int) -> None:
        """Append one write's row groups; durable per the fsync mode when this returns."""
        payload = marshal.dumps(list(groups), _MARSHAL_VERSION)
        now = time.time()
        record = _HEADER.pack(len(payload), zlib.crc32(payload), now, points) + payload
        with self._lock:
            if self._written >= SEGMENT_BYTES:
                self._roll()
            self._file.write(record)
            self._file.flush()
            self._written += len(record)
            self._append_seq += 1
            seq = self._append_seq
            self.backlog_points += points
            self.backlog_bytes += len(record)
            self.appended_points += points
            if self.oldest_unsent is None:
                self.oldest_unsent = now
            self._appended.notify_all()
        if self.fsync_mode == "SYNC":
            self._sync_through(seq)

    def sync(self) -> None:
        """Make every append so far durable (the ASYNC mode's periodic call, and shutdown)."""
        with self._lock:
            seq = self._append_seq
        self._sync_through(seq)

    def _sync_through(self, seq: int) -> None:
        with self._sync_lock:  # one fsync covers every append made before it started
            if self._synced_seq >= seq:
                return
            with self._lock:
                # A duplicate descriptor: an append may roll the segment (fsync and close it) meanwhile.
                target, fd = self._append_seq, os.dup(self._file.fileno())
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._synced_seq = target

    def _roll(self) -> None:
        """Close the current segment and start the next (caller holds the lock)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._write_number += 1
        self._segments.append(self._write_number)
        self._file = open(self._path(self._write_number), "ab")  # noqa: SIM115 - kept open for appends
        self._written = 0
        fsync_dir(self.directory)

    # ------------------------------------------------------------------ reading

    def wait_for_data(self, timeout: float) -> bool:
        """Wait until something past the read position is appended; True if there is."""
        with self._lock:
            if self._has_unread():
                return True
            self._appended.wait(timeout)
            return self._has_unread()

    def _has_unread(self) -> bool:
        return self._read_position < Position(self._write_number, self._written)

    def read(self, max_points: int) -> list[Record]:
        """Records from the read position, up to about ``max_points`` points (at least one record)."""
        with self._lock:
            end = Position(self._write_number, self._written)
        records: list[Record] = []
        points = 0
        position = self._read_position
        while position < end and (not records or points < max_points):
            if position.segment != end.segment and position.offset >= self._segment_size(position.segment):
                position = Position(self._next_segment(position.segment), 0)
                continue
            limit = end.offset if position.segment == end.segment else self._segment_size(position.segment)
            batch = self._read_segment(position, limit, max_points - points)
            if not batch:
                break
            records.extend(batch)
            points += sum(record.points for record in batch)
            position = batch[-1].end
        if records:
            self._read_position = records[-1].end
        return records

    def rewind(self) -> None:
        """Read again from the cursor (a send failed)."""
        self._read_position = self.cursor

    def acknowledge(self, records: Sequence[Record]) -> None:
        """The target stored ``records``: move the durable cursor past them and drop passed segments."""
        if not records:
            return
        end = records[-1].end
        points = sum(record.points for record in records)
        size = sum(record.size for record in records)
        self.forwarded_points += points
        atomic_write(self.directory / _CURSOR, json.dumps(
            {"segment": end.segment, "offset": end.offset, "forwarded_points": self.forwarded_points}).encode())
        with self._lock:
            self.cursor = end
            self.backlog_points -= points
            self.backlog_bytes -= size
            self.oldest_unsent = self._oldest_after(records[-1]) if self.backlog_points else None
            passed = [number for number in self._segments if number < end.segment]
            self._segments = [number for number in self._segments if number >= end.segment]
        for number in passed:
            self._path(number).unlink(missing_ok=True)

    def _oldest_after(self, record: Record) -> float | None:
        """Append time of the record after ``record`` (peeked), or now when it cannot be read yet."""
        peek = self._read_segment(record.end, self._segment_size(record.end.segment), 1)
        return peek[0].appended_at if peek else record.appended_at

    def close(self) -> None:
        """Make the appends durable and close the file."""
        with self._lock:
            self._file.flush()
            if self.fsync_mode != "DISABLE":
                os.fsync(self._file.fileno())
            self._file.close()

    # ------------------------------------------------------------------ files

    def _path(self, number: int) -> Path:
        return self.directory / f"outbox-{number:016d}.log"

    def _segment_numbers(self) -> list[int]:
        numbers = []
        for path in self.directory.glob("outbox-*.log"):
            try:
                numbers.append(int(path.stem.split("-", 1)[1]))
            except ValueError:
                log.warning("ignoring %s: not an outbox segment name", path)
        return numbers

    def _segment_size(self, number: int) -> int:
        if number == self._write_number:
            return self._written
        try:
            return self._path(number).stat().st_size
        except FileNotFoundError:
            return 0

    def _next_segment(self, number: int) -> int:
        with self._lock:
            later = [n for n in self._segments if n > number]
        return later[0] if later else self._write_number

    def _read_cursor(self) -> tuple[Position, int]:
        path = self.directory / _CURSOR
        if not path.exists():
            return Position(0, 0), 0
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Position(int(data["segment"]), int(data["offset"])), int(data["forwarded_points"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OSError(f"{path}: unreadable forwarding cursor ({exc}); remove it to resend the whole outbox") \
                from None

    def _read_segment(self, start: Position, limit: int, max_points: int) -> list[Record]:
        """Valid records of one segment from ``start`` up to byte ``limit``."""
        records: list[Record] = []
        try:
            with open(self._path(start.segment), "rb") as handle:
                handle.seek(start.offset)
                data = handle.read(limit - start.offset)
        except FileNotFoundError:
            return records
        pos, points = 0, 0
        while pos + _HEADER.size <= len(data) and (not records or points < max_points):
            length, crc, appended_at, count = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size: pos + _HEADER.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            size = _HEADER.size + length
            pos += size
            records.append(Record(Position(start.segment, start.offset + pos), appended_at, count,
                                  marshal.loads(body), size))
            points += count
        return records

    def _valid_length(self, number: int) -> int:
        """Bytes of the segment that are whole, valid records."""
        path = self._path(number)
        if not path.exists():
            return 0
        data = path.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc, _at, _count = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size: pos + _HEADER.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            pos += _HEADER.size + length
        return pos

    def _repair_tail(self) -> None:
        """Cut a torn record off the last segment (a crash during an append)."""
        last = self._segments[-1]
        path = self._path(last)
        if not path.exists():
            return
        valid = self._valid_length(last)
        if valid < path.stat().st_size:
            log.warning("%s: cut a torn record at byte %d (a crash during an append)", path, valid)
            with open(path, "r+b") as handle:
                handle.truncate(valid)
                os.fsync(handle.fileno())

    def _scan_backlog(self) -> tuple[int, int, float | None]:
        """Points and bytes after the cursor, and the append time of the first such record."""
        points, size, oldest = 0, 0, None
        for number in self._segments:
            if number < self.cursor.segment:
                continue
            offset = self.cursor.offset if number == self.cursor.segment else 0
            for record in self._read_segment(Position(number, offset), self._segment_size(number), 1 << 62):
                points += record.points
                size += record.size
                if oldest is None:
                    oldest = record.appended_at
        return points, size, oldest
