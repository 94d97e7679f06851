"""Memtables: columnar, per-series buffers of recent writes.

Each series appends into growable numpy arrays (timestamps and values) in write order; out-of-order
and duplicate timestamps are kept as written and resolved — sorted, last write of a timestamp wins —
when the series is read or flushed. A reader copies nothing under the lock: it takes the arrays and
the current length, and since writers only ever write past that length (growth allocates new arrays),
the prefix it sees never changes.

A memtable is mutable until frozen; a frozen one is only read and flushed, and its series are sorted
once (:meth:`MemTable.normalize`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage.columns import NUMPY_DTYPE
from iotdb_core.storage.merge import sort_dedup
from iotdb_core.storage.tombstones import keep_mask

SeriesKey = tuple[str, str]
_TEXT_OVERHEAD = 56  # bytes of a small str object beyond its characters
_MIN_CAPACITY = 16
CHUNK_POINTS = 1024  # an extend of this many points or more is kept as a chunk


class LastCache:
    """The newest point (largest timestamp; last written among equals) of every series."""

    def __init__(self) -> None:
        self._points: dict[SeriesKey, tuple[int, Any]] = {}

    def get(self, key: SeriesKey) -> tuple[int, Any] | None:
        return self._points.get(key)

    def items(self) -> list[tuple[SeriesKey, tuple[int, Any]]]:
        return list(self._points.items())

    def offer(self, key: SeriesKey, timestamp: int, value: Any) -> None:
        """Record a point written after every point offered so far."""
        current = self._points.get(key)
        if current is None or timestamp >= current[0]:
            self._points[key] = (timestamp, value)

    def set(self, key: SeriesKey, point: tuple[int, Any] | None) -> None:
        """Replace a series' newest point (after a deletion); None forgets the series."""
        if point is None:
            self._points.pop(key, None)
        else:
            self._points[key] = point

    def offer_many(
        self, key: SeriesKey, timestamps: np.ndarray, values: np.ndarray, newest: int | None = None
    ) -> None:
        """Record points written in array order after every point offered so far.

        ``newest`` is :func:`newest_index` of ``timestamps`` when the caller knows it already.
        """
        if len(timestamps) == 0:
            return
        index = newest_index(timestamps) if newest is None else newest
        self.offer(key, int(timestamps[index]), _scalar(values[index]))


def newest_index(timestamps: np.ndarray) -> int:
    """The position of the last of the largest timestamps (the point a last-point cache keeps)."""
    return len(timestamps) - 1 - int(np.argmax(timestamps[::-1]))


def strictly_increasing(timestamps: np.ndarray) -> bool:
    return len(timestamps) < 2 or bool(np.all(timestamps[1:] > timestamps[:-1]))


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _JoinedTimestamps:
    """Timestamp chunks already joined during one pass over a memtable, by the identity of the chunks.

    It holds the chunk arrays themselves, so no other array can take their ids while it lives.
    """

    def __init__(self) -> None:
        self._joined: dict[tuple[int, ...], tuple[list[np.ndarray], np.ndarray]] = {}

    def find(self, chunks: list[np.ndarray]) -> np.ndarray | None:
        found = self._joined.get(tuple(map(id, chunks)))
        return None if found is None else found[1]

    def add(self, chunks: list[np.ndarray], joined: np.ndarray) -> None:
        self._joined[tuple(map(id, chunks))] = (chunks, joined)


class SeriesBuffer:
    """The points of one series: sealed chunks, then a growable tail, in write order.

    A large extend (a tablet's column) becomes a chunk of its own instead of being copied into one growing
    array: growing by copying moved every point about twice more and touched fresh memory each time, the
    largest cost of tablet ingest. Chunks are joined once, when the whole series is needed (a flush, a
    sort, a deletion, an unsorted read); a sorted range read joins only the chunks it overlaps.
    """

    __slots__ = ("_chunks", "count", "data_type", "is_sorted", "last_ts", "tail_count", "timestamps", "values")

    def __init__(self, data_type: TSDataType) -> None:
        self.data_type = data_type
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.timestamps = np.empty(_MIN_CAPACITY, dtype=np.int64)
        self.values = np.empty(_MIN_CAPACITY, dtype=NUMPY_DTYPE[data_type])
        self.tail_count = 0  # points in the tail arrays
        self.count = 0  # points in all
        self.is_sorted = True  # timestamps strictly increase
        self.last_ts = 0

    def capacity_bytes(self) -> int:
        return self.timestamps.nbytes + self.values.nbytes

    def _grow(self, needed: int) -> int:
        """Make room for ``needed`` more points in the tail; return the bytes of capacity added."""
        capacity = len(self.timestamps)
        if self.tail_count + needed <= capacity:
            return 0
        new_capacity = max(self.tail_count + needed, capacity + (capacity >> 1), _MIN_CAPACITY)
        timestamps = np.empty(new_capacity, dtype=np.int64)
        values = np.empty(new_capacity, dtype=self.values.dtype)
        timestamps[: self.tail_count] = self.timestamps[: self.tail_count]
        values[: self.tail_count] = self.values[: self.tail_count]
        before = self.capacity_bytes()
        self.timestamps, self.values = timestamps, values
        return self.capacity_bytes() - before

    def append(self, timestamp: int, value: Any) -> int:
        """Append one point; return the bytes of memory added."""
        added = self._grow(1) if self.tail_count == len(self.timestamps) else 0
        count = self.tail_count
        self.timestamps[count] = timestamp
        self.values[count] = value
        if self.count and timestamp <= self.last_ts:
            self.is_sorted = False
        self.last_ts = timestamp
        self.tail_count = count + 1
        self.count += 1
        return added

    def extend(
        self,
        timestamps: np.ndarray,
        values: np.ndarray,
        increasing: bool | None = None,
        ends: tuple[int, int] | None = None,
        owned: bool = False,
        shared: bool = False,
    ) -> int:
        """Append points in array order; return the bytes of memory added.

        ``increasing`` is :func:`strictly_increasing` of ``timestamps`` and ``ends`` its first and last
        timestamp as ints, when the caller knows them already (columns of one tablet share them).
        ``owned`` says ``timestamps`` is a copy no one else writes to: it is then kept, not copied again.
        ``shared`` says it is also kept by other series (the columns of one tablet share one copy of its
        timestamps), whose caller counts its bytes once: they are not in the returned bytes.
        """
        size = len(timestamps)
        if size == 0:
            return 0
        first, last = (int(timestamps[0]), int(timestamps[-1])) if ends is None else ends
        if self.is_sorted and (
            (self.count and first <= self.last_ts)
            or not (strictly_increasing(timestamps) if increasing is None else increasing)
        ):
            self.is_sorted = False
        self.last_ts = last
        if size < CHUNK_POINTS:
            added = self._grow(size)
            count = self.tail_count
            self.timestamps[count : count + size] = timestamps
            self.values[count : count + size] = values
            self.tail_count = count + size
            self.count += size
            return added
        self._seal_tail()
        chunk_ts = timestamps if owned or shared else np.array(timestamps, dtype=np.int64)
        chunk_values = np.array(values, dtype=self.values.dtype)
        self._chunks.append((chunk_ts, chunk_values))
        self.count += size
        return chunk_values.nbytes + (0 if shared else chunk_ts.nbytes)

    def _seal_tail(self) -> None:
        """Move the tail's points to the chunks and start an empty tail."""
        if self.tail_count:
            self._chunks.append((self.timestamps[: self.tail_count], self.values[: self.tail_count]))
            self.timestamps = np.empty(_MIN_CAPACITY, dtype=np.int64)
            self.values = np.empty(_MIN_CAPACITY, dtype=self.values.dtype)
            self.tail_count = 0

    def _parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        parts = list(self._chunks)
        if self.tail_count:
            parts.append((self.timestamps[: self.tail_count], self.values[: self.tail_count]))
        return parts

    def view(self, joined: _JoinedTimestamps | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
        """The points written so far (immutable prefixes) and whether they are strictly increasing.

        Joins the chunks first, once (the joined arrays become the tail). With ``joined``, series whose
        chunks are the same timestamp arrays (the columns of the same tablets) get one joined array.
        """
        if self._chunks:
            parts = self._parts()
            stamps = [ts for ts, _ in parts]
            timestamps = None if joined is None or self.tail_count else joined.find(stamps)
            if timestamps is None:
                timestamps = np.concatenate(stamps)
                if joined is not None and not self.tail_count:
                    joined.add(stamps, timestamps)
            self.replace(timestamps, np.concatenate([vs for _, vs in parts]))
        count = self.tail_count
        if count == len(self.timestamps):  # the arrays themselves, so shared timestamps stay one object
            return self.timestamps, self.values, self.is_sorted
        return self.timestamps[:count], self.values[:count], self.is_sorted

    def replace(self, timestamps: np.ndarray, values: np.ndarray) -> None:
        """Make these arrays all of the series' points (the caller sets :attr:`is_sorted`)."""
        self._chunks = []
        self.timestamps, self.values = timestamps, values
        self.tail_count = self.count = len(timestamps)
        if len(timestamps):
            self.last_ts = int(timestamps[-1])

    def sorted_range(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The points with ``start <= t <= end`` of a sorted series, joining only the chunks they lie in."""
        assert self.is_sorted
        pieces = []
        for timestamps, values in self._parts():
            if not len(timestamps) or timestamps[-1] < start or timestamps[0] > end:
                continue
            low = int(np.searchsorted(timestamps, start, side="left"))
            high = int(np.searchsorted(timestamps, end, side="right"))
            if low < high:
                pieces.append((timestamps[low:high], values[low:high]))
        if not pieces:
            return None
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate([ts for ts, _ in pieces]), np.concatenate([vs for _, vs in pieces])


class MemTable:
    """The series buffers of one flush unit. ``version`` orders memtables and files: newer is larger."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.created = time.monotonic()
        self.wal_end: int | None = None  # first WAL seq *not* in this memtable, set when frozen
        self.size = 0
        self.points = 0
        self.frozen = False
        self.lock = threading.Lock()
        self._series: dict[SeriesKey, SeriesBuffer] = {}

    def __repr__(self) -> str:
        return f"MemTable(version={self.version}, points={self.points}, size={self.size}, frozen={self.frozen})"

    @property
    def empty(self) -> bool:
        return self.points == 0

    def _buffer(self, key: SeriesKey, data_type: TSDataType) -> SeriesBuffer:
        buffer = self._series.get(key)
        if buffer is None:
            buffer = self._series[key] = SeriesBuffer(data_type)
            self.size += buffer.capacity_bytes()
        return buffer

    def append(self, key: SeriesKey, data_type: TSDataType, timestamp: int, value: Any) -> None:
        """Append one point (caller holds :attr:`lock`)."""
        buffer = self._buffer(key, data_type)
        self.size += buffer.append(timestamp, value)
        if data_type is TSDataType.TEXT:
            self.size += len(value) + _TEXT_OVERHEAD
        self.points += 1

    def extend(
        self,
        key: SeriesKey,
        data_type: TSDataType,
        timestamps: np.ndarray,
        values: np.ndarray,
        increasing: bool | None = None,
        ends: tuple[int, int] | None = None,
        owned: bool = False,
        shared: bool = False,
    ) -> None:
        """Append points in array order (caller holds :attr:`lock`); ``increasing``, ``ends``, ``owned`` and
        ``shared`` as for :meth:`SeriesBuffer.extend` (a caller passing ``shared`` adds the timestamps'
        bytes to :attr:`size` once)."""
        buffer = self._buffer(key, data_type)
        self.size += buffer.extend(timestamps, values, increasing, ends, owned, shared)
        if data_type is TSDataType.TEXT:
            self.size += sum(map(len, values)) + _TEXT_OVERHEAD * len(values)
        self.points += len(timestamps)

    def freeze(self, wal_end: int) -> None:
        """Stop accepting writes; ``wal_end`` is the first WAL sequence number of the next memtable."""
        with self.lock:
            self.frozen = True
            self.wal_end = wal_end

    def normalize(self) -> None:
        """Sort and deduplicate every series of a frozen memtable in place (readers keep old arrays)."""
        assert self.frozen
        joined = _JoinedTimestamps()
        with self.lock:
            for buffer in self._series.values():
                timestamps, values, is_sorted = buffer.view(joined)
                if not is_sorted:
                    buffer.replace(*sort_dedup(timestamps, values))
                    buffer.is_sorted = True

    def read(self, key: SeriesKey, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Points of a series with ``start <= t <= end``, sorted and deduplicated; None if it has none."""
        buffer = self._series.get(key)
        if buffer is None:
            return None
        with self.lock:
            if buffer.is_sorted:
                return buffer.sorted_range(start, end)
            timestamps, values, _ = buffer.view()
        keep = (timestamps >= start) & (timestamps <= end)
        timestamps, values = sort_dedup(timestamps[keep], values[keep])
        return (timestamps, values) if len(timestamps) else None

    def delete(self, match: Callable[[SeriesKey], bool], start: int, end: int) -> None:
        """Remove the points with ``start <= t <= end`` of every series ``match`` accepts (recovery only).

        A series left without points is removed, so a series re-created with another type starts anew.
        """
        with self.lock:
            for key in [key for key in self._series if match(key)]:
                buffer = self._series[key]
                timestamps, values, _ = buffer.view()
                keep = keep_mask(timestamps, [(start, end)])
                if bool(keep.all()):
                    continue
                kept = int(keep.sum())
                self.points -= buffer.count - kept
                if kept == 0:
                    del self._series[key]
                    continue
                buffer.replace(timestamps[keep], values[keep])

    def series_type(self, key: SeriesKey) -> TSDataType | None:
        """The type of a series' points in this memtable, or None when it holds none."""
        buffer = self._series.get(key)
        return None if buffer is None else buffer.data_type

    def keys(self) -> list[SeriesKey]:
        """The series present, sorted by device then measurement."""
        with self.lock:
            return sorted(self._series)

    def data_type(self, key: SeriesKey) -> TSDataType:
        return self._series[key].data_type

    def sorted_series(self) -> Iterator[tuple[SeriesKey, TSDataType, np.ndarray, np.ndarray]]:
        """Every series' points, sorted and deduplicated, in key order (for a flush).

        Series whose points came in the same tablets share one timestamp array.
        """
        joined = _JoinedTimestamps()
        for key in self.keys():
            buffer = self._series[key]
            with self.lock:
                timestamps, values, is_sorted = buffer.view(joined)
            if not is_sorted:
                timestamps, values = sort_dedup(timestamps, values)
            yield key, buffer.data_type, timestamps, values

    def last_points(self) -> Iterator[tuple[SeriesKey, int, Any]]:
        """The newest point of each series (for rebuilding the last cache)."""
        for key, _, timestamps, values in self.sorted_series():
            if len(timestamps):
                yield key, int(timestamps[-1]), _scalar(values[-1])
