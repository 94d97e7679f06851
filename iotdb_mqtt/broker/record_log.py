"""One append-only file of CRC-checked records: the storage under the retained store and the session log.

Records are framed exactly like the database's write-ahead log (:mod:`iotdb_core.storage.wal_format`: a
length, a CRC32 over sequence number and payload, an increasing sequence number), so a record cut short
by a crash or a stale byte never verifies. On open, a damaged or zero-filled tail (what SIGKILL or a power
loss leaves) is cut off; damage followed by valid records is skipped with a warning, keeping those records.

Appends are buffered in memory and reach the file in :meth:`RecordLog.sync`, which writes what is buffered
and fsyncs once for everything appended so far; concurrent callers share that fsync (group commit). The
owner compacts with :meth:`RecordLog.rewrite`, which replaces the file with a fresh one holding only the
records it is given, through the database's atomic write (temporary file, fsync, rename, fsync directory).

Also here: the small binary field encoding of the records' payloads, and the conversion of forwarded MQTT 5
properties to and from their wire encoding (the codec's, so the values are checked the same way).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
from pathlib import Path
from typing import Any, Final

from iotdb_core.storage import wal_format
from iotdb_core.storage.durable import atomic_write, fsync_dir
from iotdb_mqtt.codec.primitives import Cursor
from iotdb_mqtt.codec.properties import Properties, PropertyOwner, decode_properties, encode_properties

log = logging.getLogger("iotdb.mqtt")

FORWARDED_PROPERTIES: Final = frozenset(
    {
        "payload_format_indicator",
        "message_expiry_interval",
        "content_type",
        "response_topic",
        "correlation_data",
        "user_properties",
        "subscription_identifiers",
    }
)
"""The PUBLISH properties a broker keeps with a stored message (all but Topic Alias, which is per connection)."""


class LogInUse(RuntimeError):
    """Another process (or another open store in this one) holds the log file."""


class LogFailed(OSError):
    """A write or fsync of the log failed earlier; the log refuses all further work.

    After a failed write the file may end in part of a record and later records would follow it, so
    nothing more is written: what was made durable before stays valid, and the store must be reopened.
    """


class RecordLog:
    """An append-only record file; see the module docstring. Thread-safe."""

    def __init__(self, path: Path, fd: int, lock_fd: int, size: int, next_seq: int) -> None:
        self._path = path
        self._fd = fd
        self._lock_fd = lock_fd
        self._size = size
        self._next_seq = next_seq
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        self._durable_seq = next_seq - 1
        self._failure: OSError | None = None
        self._lock = threading.Lock()
        """Guards the buffer and counters; held only briefly."""
        self._sync_lock = threading.Lock()
        """Serialises writes to the file, fsyncs and rewrites."""

    @classmethod
    def open(cls, path: Path) -> tuple[RecordLog, list[bytes]]:
        """Open (creating if needed) the log at ``path``; returns it and the payloads of its valid records."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise LogInUse(f"{path} is in use by another process") from None
        try:
            created = not path.exists()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            if created:
                fsync_dir(path.parent)
            payloads, end, last_seq = _recover(path, fd)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, fd, lock_fd, end, last_seq + 1), payloads

    @property
    def size(self) -> int:
        """Bytes in the file plus bytes appended and not yet written."""
        return self._size + self._buffered_bytes

    def append(self, payload: bytes) -> int:
        """Frame ``payload`` as the next record and buffer it; returns its size. Durable after :meth:`sync`."""
        with self._lock:
            self._check_usable()
            record = wal_format.encode(self._next_seq, payload)
            self._next_seq += 1
            self._buffer.append(record)
            self._buffered_bytes += len(record)
            return len(record)

    def sync(self) -> None:
        """Write what is buffered and fsync; returns once every record appended before the call is durable."""
        with self._lock:
            target = self._next_seq - 1
        with self._sync_lock:
            with self._lock:
                self._check_usable()
                if self._durable_seq >= target:
                    return  # another caller's fsync covered it
                data = b"".join(self._buffer)
                self._buffer.clear()
                self._buffered_bytes = 0
                upto = self._next_seq - 1
            try:
                _write_all(self._fd, data)
                os.fsync(self._fd)
            except OSError as error:
                self._failure = error
                raise LogFailed(f"{self._path}: write failed: {error}") from error
            with self._lock:
                self._size += len(data)
                self._durable_seq = upto

    def rewrite(self, payloads: list[bytes]) -> None:
        """Replace the file with one holding exactly ``payloads``, durably; discards what is buffered.

        The caller must not append concurrently and must pass records that stand for everything
        appended so far, buffered records included.
        """
        with self._sync_lock, self._lock:
            self._check_usable()
            data = wal_format.encode_many(self._next_seq, payloads)
            try:
                atomic_write(self._path, data)
                new_fd = os.open(self._path, os.O_RDWR | os.O_APPEND)
            except OSError as error:
                # The path holds the old file or the new one, each whole; but which one is unknown, so stop.
                self._failure = error
                raise LogFailed(f"{self._path}: compaction failed: {error}") from error
            os.close(self._fd)
            self._fd = new_fd
            self._next_seq += len(payloads)
            self._durable_seq = self._next_seq - 1
            self._buffer.clear()
            self._buffered_bytes = 0
            self._size = len(data)

    def close(self) -> None:
        """Make everything appended durable and release the file (after a failure: only release it)."""
        try:
            if self._failure is None:
                self.sync()
        finally:
            with self._sync_lock:
                os.close(self._fd)
                os.close(self._lock_fd)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise LogFailed(f"{self._path}: an earlier write failed ({self._failure}); reopen the store")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _recover(path: Path, fd: int) -> tuple[list[bytes], int, int]:
    """Read the valid records; cut a damaged tail. Returns payloads, the end of the kept data, the last sequence."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    payloads: list[bytes] = []
    last_seq = 0
    end = 0
    for item in wal_format.scan(data):
        if isinstance(item, wal_format.Record):
            payloads.append(item.payload)
            last_seq = item.seq
            end = item.offset + wal_format.HEADER_SIZE + len(item.payload)
        elif isinstance(item, wal_format.BadRegion) and not item.trailing:
            log.warning("%s: %d damaged bytes at offset %d skipped", path, item.size, item.offset)
    if end < size:
        log.info("%s: %d bytes of an incomplete last record cut off", path, size - end)
        os.ftruncate(fd, end)
        os.fsync(fd)
    return payloads, end, last_seq


# --- field encoding of record payloads ------------------------------------------------------------------

_U8: Final = struct.Struct("<B")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_F64: Final = struct.Struct("<d")


class Encoder:
    """Builds a record payload from fixed-size numbers and length-prefixed strings and bytes."""

    __slots__ = ("_parts",)

    def __init__(self, kind: int) -> None:
        self._parts: list[bytes] = [_U8.pack(kind)]

    def u8(self, value: int) -> Encoder:
        self._parts.append(_U8.pack(value))
        return self

    def u32(self, value: int) -> Encoder:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Encoder:
        self._parts.append(_U64.pack(value))
        return self

    def f64(self, value: float) -> Encoder:
        self._parts.append(_F64.pack(value))
        return self

    def text(self, value: str) -> Encoder:
        return self.blob(value.encode("utf-8"))

    def blob(self, value: bytes) -> Encoder:
        self._parts.append(_U32.pack(len(value)))
        self._parts.append(value)
        return self

    def payload(self) -> bytes:
        return b"".join(self._parts)


class Decoder:
    """Reads back what :class:`Encoder` wrote; ``kind`` is the first byte."""

    __slots__ = ("_data", "_pos", "kind")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.kind = data[0]
        self._pos = 1

    def _take(self, form: struct.Struct) -> Any:
        value = form.unpack_from(self._data, self._pos)[0]
        self._pos += form.size
        return value

    def u8(self) -> int:
        return int(self._take(_U8))

    def u32(self) -> int:
        return int(self._take(_U32))

    def u64(self) -> int:
        return int(self._take(_U64))

    def f64(self) -> float:
        return float(self._take(_F64))

    def text(self) -> str:
        return self.blob().decode("utf-8")

    def blob(self) -> bytes:
        size = self.u32()
        start = self._pos
        self._pos += size
        if self._pos > len(self._data):
            raise ValueError(f"record of kind {self.kind} is shorter than its fields")
        return self._data[start : self._pos]


# --- forwarded MQTT 5 properties --------------------------------------------------------------------------


def encode_message_properties(properties: dict[str, object]) -> bytes:
    """The MQTT wire encoding of a stored message's properties; ``ValueError`` for an unknown or invalid one.

    Checking here means a message that could not be forwarded later is refused when it is stored.
    """
    unknown = set(properties) - FORWARDED_PROPERTIES
    if unknown:
        raise ValueError(f"properties {sorted(unknown)} cannot be stored with a message")
    values: dict[str, Any] = dict(properties)
    if "user_properties" in values:
        values["user_properties"] = tuple((str(key), str(value)) for key, value in values["user_properties"])
    if "subscription_identifiers" in values:
        values["subscription_identifiers"] = tuple(values["subscription_identifiers"])
    try:
        return encode_properties(Properties(**values), PropertyOwner.PUBLISH)
    except TypeError as error:
        raise ValueError(f"invalid message property: {error}") from error


def decode_message_properties(data: bytes) -> dict[str, object]:
    """The inverse of :func:`encode_message_properties` (lists where the dict had lists)."""
    decoded = decode_properties(Cursor(data, 0, len(data), 0, "stored message"), PropertyOwner.PUBLISH)
    properties: dict[str, object] = {}
    for name in FORWARDED_PROPERTIES:
        value = getattr(decoded, name)
        if value is None or value == ():
            continue
        properties[name] = list(value) if isinstance(value, tuple) else value
    return properties


def expiry_interval(properties: dict[str, object]) -> int | None:
    """The Message Expiry Interval among a stored message's properties, if it has one."""
    interval = properties.get("message_expiry_interval")
    if interval is None:
        return None
    if not isinstance(interval, int):
        raise ValueError(f"message_expiry_interval must be an int, got {interval!r}")
    return interval
