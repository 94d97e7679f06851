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


class SeriesBuffer:
    """Growable timestamp and value arrays of one series."""

    __slots__ = ("count", "data_type", "is_sorted", "last_ts", "timestamps", "values")

    def __init__(self, data_type: TSDataType) -> None:
        self.data_type = data_type
        self.timestamps = np.empty(_MIN_CAPACITY, dtype=np.int64)
        self.values = np.empty(_MIN_CAPACITY, dtype=NUMPY_DTYPE[data_type])
        self.count = 0
        self.is_sorted = True  # timestamps strictly increase
        self.last_ts = 0

    def capacity_bytes(self) -> int:
        return self.timestamps.nbytes + self.values.nbytes

    def _grow(self, needed: int) -> int:
        """Make room for ``needed`` more points; return the bytes of capacity added."""
        capacity = len(self.timestamps)
        if self.count + needed <= capacity:
            return 0
        new_capacity = max(self.count + needed, capacity + (capacity >> 1), _MIN_CAPACITY)
        timestamps = np.empty(new_capacity, dtype=np.int64)
        values = np.empty(new_capacity, dtype=self.values.dtype)
        timestamps[: self.count] = self.timestamps[: self.count]
        values[: self.count] = self.values[: self.count]
        before = self.capacity_bytes()
        self.timestamps, self.values = timestamps, values
        return self.capacity_bytes() - before

    def append(self, timestamp: int, value: Any) -> int:
        """Append one point; return the bytes of memory added."""
        added = self._grow(1) if self.count == len(self.timestamps) else 0
        count = self.count
        self.timestamps[count] = timestamp
        self.values[count] = value
        if count and timestamp <= self.last_ts:
            self.is_sorted = False
        self.last_ts = timestamp
        self.count = count + 1
        return added

    def extend(
        self,
        timestamps: np.ndarray,
        values: np.ndarray,
        increasing: bool | None = None,
        ends: tuple[int, int] | None = None,
    ) -> int:
        """Append points in array order; return the bytes of memory added.

        ``increasing`` is :func:`strictly_increasing` of ``timestamps`` and ``ends`` its first and last
        timestamp as ints, when the caller knows them already (columns of one tablet share them).
        """
        size = len(timestamps)
        if size == 0:
            return 0
        first, last = (int(timestamps[0]), int(timestamps[-1])) if ends is None else ends
        added = self._grow(size)
        count = self.count
        self.timestamps[count : count + size] = timestamps
        self.values[count : count + size] = values
        if self.is_sorted and (
            (count and first <= self.last_ts)
            or not (strictly_increasing(timestamps) if increasing is None else increasing)
        ):
            self.is_sorted = False
        self.last_ts = last
        self.count = count + size
        return added

    def view(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """The points written so far (immutable prefixes) and whether they are strictly increasing."""
        count = self.count
        return self.timestamps[:count], self.values[:count], self.is_sorted


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
    ) -> None:
        """Append points in array order (caller holds :attr:`lock`); ``increasing`` and ``ends`` as for
        :meth:`SeriesBuffer.extend`."""
        buffer = self._buffer(key, data_type)
        self.size += buffer.extend(timestamps, values, increasing, ends)
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
        with self.lock:
            for buffer in self._series.values():
                timestamps, values, is_sorted = buffer.view()
                if not is_sorted:
                    timestamps, values = sort_dedup(timestamps, values)
                    buffer.timestamps, buffer.values = timestamps, values
                    buffer.count = len(timestamps)
                    buffer.is_sorted = True

    def read(self, key: SeriesKey, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Points of a series with ``start <= t <= end``, sorted and deduplicated; None if it has none."""
        buffer = self._series.get(key)
        if buffer is None:
            return None
        with self.lock:
            timestamps, values, is_sorted = buffer.view()
        if not is_sorted:
            keep = (timestamps >= start) & (timestamps <= end)
            timestamps, values = sort_dedup(timestamps[keep], values[keep])
            return (timestamps, values) if len(timestamps) else None
        low = int(np.searchsorted(timestamps, start, side="left"))
        high = int(np.searchsorted(timestamps, end, side="right"))
        if low >= high:
            return None
        return timestamps[low:high], values[low:high]

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
                buffer.timestamps, buffer.values = timestamps[keep], values[keep]
                buffer.count = kept
                buffer.last_ts = int(buffer.timestamps[-1])

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
        """Every series' points, sorted and deduplicated, in key order (for a flush)."""
        for key in self.keys():
            buffer = self._series[key]
            with self.lock:
                timestamps, values, is_sorted = buffer.view()
            if not is_sorted:
                timestamps, values = sort_dedup(timestamps, values)
            yield key, buffer.data_type, timestamps, values

    def last_points(self) -> Iterator[tuple[SeriesKey, int, Any]]:
        """The newest point of each series (for rebuilding the last cache)."""
        for key, _, timestamps, values in self.sorted_series():
            if len(timestamps):
                yield key, int(timestamps[-1]), _scalar(values[-1])
