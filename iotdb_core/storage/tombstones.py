"""Tombstones: deletions recorded as (path pattern, time range, version) and applied when data is read.

``Engine.delete`` does not rewrite files. It records a :class:`Tombstone` that hides, in every series the
pattern matches, the points with ``start <= time <= end`` of every *source* (TsFile or memtable) whose
version is below the tombstone's ``version``. The engine seals the mutable memtable first when it holds
points the deletion covers, so a tombstone's version is that of a memtable that received no point
before it: points written after the call, which go to that memtable or newer ones, are never hidden.

A flush or a compaction writes its output without the points the tombstones hide and records in the
output's manifest entry ``tombstone_mark``, the largest tombstone id it took into account; a tombstone
with an id at or below a file's mark is not applied to that file again. A tombstone is discarded (see
:func:`discardable`) once no source it could still hide points of remains: every live file older than
it has been written through it (or holds no matching series in its range), no older memtable is left,
and the WAL records it must be replayed against (those numbered below its ``seq``) are all in files.

Recovery replays the WAL and applies every tombstone whose ``seq`` lies within the replayed records at
its place in the sequence, directly to the memtable being rebuilt (:meth:`MemTable.delete
<iotdb_core.storage.memtable.MemTable.delete>`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from iotdb_core.patterns import Pattern, compile_pattern, matches, series_nodes

SeriesKey = tuple[str, str]
Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deletion: points of series matching ``pattern`` with ``start <= t <= end`` (inclusive).

    ``id`` orders tombstones (never reused); ``version`` is the first source version it does *not*
    hide; ``seq`` is the WAL boundary of the deletion: records numbered below it were written before.
    """

    id: int
    pattern: str
    start: int
    end: int
    version: int
    seq: int

    @property
    def nodes(self) -> Pattern:
        return compile_pattern(self.pattern)

    def hides_source(self, version: int, mark: int) -> bool:
        """True when the tombstone applies to a source of ``version`` already written through ``mark``."""
        return version < self.version and mark < self.id

    def touches(self, key: SeriesKey) -> bool:
        """True when the pattern matches the series ``key`` (canonical device, measurement)."""
        return matches(self.nodes, series_nodes(key[0], key[1]))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pattern": self.pattern,
            "start": self.start,
            "end": self.end,
            "version": self.version,
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tombstone:
        return cls(
            int(data["id"]),
            str(data["pattern"]),
            int(data["start"]),
            int(data["end"]),
            int(data["version"]),
            int(data["seq"]),
        )


def hidden_ranges(
    tombstones: Iterable[Tombstone], key: SeriesKey, version: int, mark: int, low: int, high: int
) -> list[Range]:
    """The time ranges within ``[low, high]`` that tombstones hide in one source's series, merged and sorted."""
    ranges = sorted(
        (max(t.start, low), min(t.end, high))
        for t in tombstones
        if t.start <= high and t.end >= low and t.hides_source(version, mark) and t.touches(key)
    )
    return merge_ranges(ranges)


def merge_ranges(ranges: Sequence[Range]) -> list[Range]:
    """Sorted ranges with overlapping or adjacent ones joined."""
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def covers_all(ranges: Sequence[Range], low: int, high: int) -> bool:
    """True when merged ``ranges`` cover every time of ``[low, high]``."""
    return any(start <= low and end >= high for start, end in ranges)


def keep_mask(timestamps: np.ndarray, ranges: Sequence[Range]) -> np.ndarray:
    """Boolean mask of the timestamps (in any order) outside every range."""
    keep = np.ones(len(timestamps), dtype=bool)
    for start, end in ranges:
        keep &= (timestamps < start) | (timestamps > end)
    return keep


def drop_ranges(timestamps: np.ndarray, values: np.ndarray, ranges: Sequence[Range]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted points without those in the (merged, sorted) ``ranges``; the arrays are returned as is if none is hit."""
    if not ranges or len(timestamps) == 0:
        return timestamps, values
    keep: list[tuple[int, int]] = []
    position = 0
    for start, end in ranges:
        low = int(np.searchsorted(timestamps, start, side="left"))
        high = int(np.searchsorted(timestamps, end, side="right"))
        if low > position:
            keep.append((position, low))
        position = max(position, high)
    if position < len(timestamps):
        keep.append((position, len(timestamps)))
    if len(keep) == 1 and keep[0] == (0, len(timestamps)):
        return timestamps, values
    if not keep:
        return timestamps[:0], values[:0]
    if len(keep) == 1:
        return timestamps[keep[0][0] : keep[0][1]], values[keep[0][0] : keep[0][1]]
    return (
        np.concatenate([timestamps[a:b] for a, b in keep]),
        np.concatenate([values[a:b] for a, b in keep]),
    )


class FileView(Protocol):
    """What :func:`discardable` needs of a live file: its version, mark and series time ranges."""

    @property
    def version(self) -> int: ...

    @property
    def mark(self) -> int: ...

    def time_range(self, key: SeriesKey) -> Range | None: ...

    def series_keys(self) -> Iterable[SeriesKey]: ...


def discardable(
    tombstone: Tombstone, wal_replay_from: int, files: Iterable[FileView], memtable_versions: Iterable[int]
) -> bool:
    """True when no source can hold a point the tombstone hides, now or after a crash and replay."""
    if wal_replay_from < tombstone.seq:
        return False
    if any(version < tombstone.version for version in memtable_versions):
        return False
    for view in files:
        if not tombstone.hides_source(view.version, view.mark):
            continue
        for key in view.series_keys():
            span = view.time_range(key)
            if span is not None and span[0] <= tombstone.end and span[1] >= tombstone.start and tombstone.touches(key):
                return False
    return True


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Purge:
    """What a flush or a compaction leaves out of its output.

    The points the ``tombstones`` hide (every tombstone with an id up to ``mark``; the output records
    ``mark``) and the points a TTL rule has expired: ``cutoff(key)`` is the smallest timestamp kept.
    """

    tombstones: tuple[Tombstone, ...]
    mark: int
    cutoff: Callable[[SeriesKey], int]

    def ranges(self, key: SeriesKey, version: int, mark: int) -> list[Range]:
        """The ranges to drop from a source's series (merged, sorted)."""
        ranges = hidden_ranges(self.tombstones, key, version, mark, INT64_MIN, INT64_MAX)
        cutoff = self.cutoff(key)
        if cutoff > INT64_MIN:
            ranges = merge_ranges([*ranges, (INT64_MIN, cutoff - 1)])
        return ranges


KEEP_ALL = Purge((), 0, lambda key: INT64_MIN)
