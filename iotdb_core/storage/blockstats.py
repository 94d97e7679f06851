"""Time-aligned block statistics of a TsFile's series, kept in a sidecar file ``<name>.tsfile.stats``.

Each numeric or BOOLEAN series is cut into blocks of a duration ``D`` from :func:`ladder` (1 s, 10 s, 1 min,
10 min, 1 h, 1 d, 7 d in the engine's timestamp unit), block ``k`` holding the points with
``k * D <= t < (k + 1) * D``; ``D`` is the smallest whose non-empty blocks hold :data:`MIN_BLOCK_POINTS` points
on average. Per block: start/end time, count, sum, min, max, first, last, and whether it is usable (a
FLOAT/DOUBLE block holding NaN is not). Series with fewer points, or a single block, get none (the file's
own statistics are as good). The sidecar is optional: a missing or unreadable one means no blocks.

Format (version 2): the 8-byte magic ``IOTDBBLK``, then little-endian uint32 version, uint32 index
length and uint32 CRC-32 of everything after the header; the index, UTF-8 JSON
``[[device, measurement, data_type, duration, blocks], ...]``; then per series in index order its arrays,
little-endian and back to back: ``times`` (int64 ``[3, n]``: start, end, count), ``sum`` (float64),
``min`` and ``max`` (the type's dtype; not for BOOLEAN), ``first``, ``last`` (the type's dtype) and
``usable`` (uint8). Loading is one read, one CRC and array views over the buffer: a query's first use of
a file costs well under a millisecond. Version 1 sidecars (an ``np.savez`` archive after the magic and
version, with ``meta`` and ``{i}_times``, ``{i}_sum``, ... entries) are still read.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.durable import fsync_dir
from iotdb_core.storage.columns import NUMPY_DTYPE
from iotdb_core.storage.results import ColumnSegment, PointsSegment, StatsRun
from iotdb_core.storage.tsfile_io import SeriesData

log = logging.getLogger("iotdb.storage")

SUFFIX = ".stats"
MAGIC = b"IOTDBBLK"
FORMAT_VERSION = 2
_SAVEZ_VERSION = 1
#: Average points per block the chosen duration must reach.
MIN_BLOCK_POINTS = 1000

_LADDER_MS = (1_000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000, 604_800_000)
_SCALE = {"ms": 1, "us": 1_000, "ns": 1_000_000}
_TYPES = frozenset({TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE})
_HEADER = struct.Struct("<8sI")
_V2_HEADER = struct.Struct("<8sIII")


def ladder(precision: str = "ms") -> tuple[int, ...]:
    """The block durations, shortest first, in units of ``precision`` (ms, us or ns)."""
    scale = _SCALE[precision]
    return tuple(step * scale for step in _LADDER_MS)


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the block statistics of the TsFile at ``path`` are kept."""
    return Path(str(path) + SUFFIX)


@dataclass(frozen=True, slots=True)
class BlockStats:
    """One series' blocks, in time order (parallel arrays)."""

    duration: int
    start_time: np.ndarray
    end_time: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    min_value: np.ndarray | None  # None for BOOLEAN
    max_value: np.ndarray | None
    first_value: np.ndarray
    last_value: np.ndarray
    usable: np.ndarray

    def __len__(self) -> int:
        return len(self.start_time)

    def run(self, index: slice) -> StatsRun:
        """The blocks at ``index`` as a :class:`StatsRun` (views of these arrays)."""
        return StatsRun(
            self.start_time[index], self.end_time[index], self.count[index], self.sum[index],
            None if self.min_value is None else self.min_value[index],
            None if self.max_value is None else self.max_value[index],
            self.first_value[index], self.last_value[index],
        )


def block_runs(
    blocks: BlockStats, lo: int, hi: int, read: Callable[[int, int], PointsSegment | None]
) -> list[ColumnSegment]:
    """A file's series within ``[lo, hi]``, where nothing else touches it, from its blocks: a run of each stretch
    of consecutive usable blocks lying wholly inside, and the points ``read(a, b)`` gives for the rest (blocks
    the range cuts, blocks with NaN), all in time order."""
    starts, ends = blocks.start_time, blocks.end_time
    used = np.flatnonzero(blocks.usable & (starts >= lo) & (ends <= hi))
    pieces: list[ColumnSegment] = []

    def points(a: int, b: int) -> None:
        found = read(a, b)
        if found is not None:
            pieces.append(found)

    if not len(used):
        points(lo, hi)
        return pieces
    first, last = int(used[0]), int(used[-1])
    if first > 0 and int(ends[first - 1]) >= lo:
        points(lo, int(starts[first]) - 1)
    # Stretches of consecutive used blocks; points lie between two only where unused blocks sit between them.
    breaks = (np.flatnonzero(np.diff(used) > 1) + 1).tolist()
    edges = [0, *breaks, len(used)]
    for a, b in itertools.pairwise(edges):
        pieces.append(blocks.run(slice(int(used[a]), int(used[b - 1]) + 1)))
        if b < len(used):
            points(int(ends[used[b - 1]]) + 1, int(starts[used[b]]) - 1)
    if last + 1 < len(blocks) and int(starts[last + 1]) <= hi:
        points(int(ends[last]) + 1, hi)
    return pieces


_Layout = tuple[int, np.ndarray] | None  # (duration, first index of each block), or no blocks


def _layout(stamps: np.ndarray, precision: str) -> _Layout:
    """The block duration of these timestamps and where each block starts; None for a single block."""
    n = len(stamps)
    ids = None
    duration = 0
    for duration in ladder(precision):
        ids = stamps // duration
        blocks = 1 + int(np.count_nonzero(ids[1:] != ids[:-1]))
        if n >= MIN_BLOCK_POINTS * blocks:
            break
    assert ids is not None
    starts = np.concatenate(([0], np.flatnonzero(ids[1:] != ids[:-1]) + 1))
    return None if len(starts) < 2 else (duration, starts)


def compute(
    timestamps: np.ndarray, values: np.ndarray, data_type: TSDataType, precision: str = "ms"
) -> BlockStats | None:
    """The blocks of one series (timestamps strictly increasing), or None when it gets none."""
    if data_type not in _TYPES or len(timestamps) < MIN_BLOCK_POINTS:
        return None
    stamps = np.asarray(timestamps, dtype=np.int64)
    return _blocks(stamps, values, data_type, _layout(stamps, precision))


def _blocks(stamps: np.ndarray, values: np.ndarray, data_type: TSDataType, layout: _Layout) -> BlockStats | None:
    """:func:`compute` for timestamps whose :func:`_layout` is known (series sharing timestamps share it)."""
    if layout is None:
        return None
    n = len(stamps)
    duration, starts = layout
    ends = np.append(starts[1:], n) - 1
    vals = np.asarray(values).astype(NUMPY_DTYPE[data_type], copy=False)
    sums = np.add.reduceat(vals.astype(np.float64), starts)
    if data_type is TSDataType.BOOLEAN:
        low = high = None
    else:
        low = np.minimum.reduceat(vals, starts)
        high = np.maximum.reduceat(vals, starts)
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE):
        usable = ~np.logical_or.reduceat(np.isnan(vals), starts)
    else:
        usable = np.ones(len(starts), dtype=bool)
    return BlockStats(
        duration, stamps[starts], stamps[ends], np.diff(np.append(starts, n)).astype(np.int64), sums,
        low, high, vals[starts], vals[ends], usable,
    )


def collect(
    series: Iterable[SeriesData], sink: dict[tuple[str, str], tuple[TSDataType, BlockStats]], precision: str = "ms"
) -> Iterator[SeriesData]:
    """Pass ``series`` through, adding the blocks of each to ``sink``."""
    shared: np.ndarray | None = None  # the last timestamp array seen, and its layout
    layout: _Layout = None
    for given in series:
        try:
            blocks = None
            if given.data_type in _TYPES and len(given.timestamps) >= MIN_BLOCK_POINTS:
                stamps = np.asarray(given.timestamps, dtype=np.int64)
                if given.timestamps is not shared:
                    shared, layout = given.timestamps, _layout(stamps, precision)
                blocks = _blocks(stamps, given.values, given.data_type, layout)  # type: ignore[arg-type]
        except Exception:  # the statistics are optional; the file is written regardless
            log.exception("cannot compute block statistics of %s.%s", given.device, given.measurement)
            blocks = None
        if blocks is not None:
            sink[(given.device, given.measurement)] = (given.data_type, blocks)
        yield given


def write(path: str | os.PathLike[str], blocks: dict[tuple[str, str], tuple[TSDataType, BlockStats]]) -> None:
    """Write the sidecar of the TsFile at ``path`` atomically (temp file, fsync, rename, directory fsync).

    Nothing is written (and a stale sidecar is removed) when there are no blocks.
    """
    final = sidecar_path(path)
    final.unlink(missing_ok=True)
    if not blocks:
        return
    index = []
    parts: list[bytes] = []
    for (device, measurement), (data_type, stats) in blocks.items():
        index.append([device, measurement, data_type.name, stats.duration, len(stats)])
        dtype = _wire(NUMPY_DTYPE[data_type])
        parts.append(np.stack([stats.start_time, stats.end_time, stats.count]).astype("<i8").tobytes())
        parts.append(stats.sum.astype("<f8").tobytes())
        if stats.min_value is not None and stats.max_value is not None:
            parts += [stats.min_value.astype(dtype).tobytes(), stats.max_value.astype(dtype).tobytes()]
        parts += [stats.first_value.astype(dtype).tobytes(), stats.last_value.astype(dtype).tobytes()]
        parts.append(stats.usable.astype(np.uint8).tobytes())
    body = json.dumps(index).encode()
    index_length = len(body)
    body += b"".join(parts)
    data = _V2_HEADER.pack(MAGIC, FORMAT_VERSION, index_length, zlib.crc32(body)) + body
    temp = final.with_name(final.name + ".tmp")
    try:
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_quietly(path: str | os.PathLike[str], blocks: dict[tuple[str, str], tuple[TSDataType, BlockStats]]) -> None:
    """:func:`write`, logging instead of raising: a TsFile without its sidecar is still correct."""
    try:
        write(path, blocks)
    except Exception:
        log.exception("cannot write block statistics of %s", path)
        remove(path)


def remove(path: str | os.PathLike[str]) -> None:
    """Remove the sidecar of the TsFile at ``path`` (and a leftover temporary one), if any."""
    final = sidecar_path(path)
    for candidate in (final, final.with_name(final.name + ".tmp")):
        try:
            candidate.unlink(missing_ok=True)
        except OSError:
            log.exception("cannot remove %s", candidate)


def load(path: str | os.PathLike[str]) -> dict[tuple[str, str], tuple[TSDataType, BlockStats]]:
    """The blocks of the TsFile at ``path``; empty when the sidecar is missing or unreadable."""
    final = sidecar_path(path)
    try:
        data = final.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError:
        log.warning("cannot read %s; using whole-file statistics", final)
        return {}
    try:
        return _parse(data)
    except Exception:
        log.warning("ignoring unreadable block statistics %s", final)
        return {}


def _wire(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.uint8) if dtype == np.bool_ else dtype.newbyteorder("<")


def _parse(data: bytes) -> dict[tuple[str, str], tuple[TSDataType, BlockStats]]:
    magic, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not a block statistics file")
    if version == FORMAT_VERSION:
        return _parse_v2(data)
    if version == _SAVEZ_VERSION:
        return _parse_savez(data)
    raise ValueError(f"block statistics version {version} is not known")


def _parse_v2(data: bytes) -> dict[tuple[str, str], tuple[TSDataType, BlockStats]]:
    _, _, index_length, crc = _V2_HEADER.unpack_from(data)
    body = memoryview(data)[_V2_HEADER.size:]
    if zlib.crc32(body) != crc:
        raise ValueError("block statistics checksum mismatch")
    index = json.loads(bytes(body[:index_length]).decode())
    position = _V2_HEADER.size + index_length
    found: dict[tuple[str, str], tuple[TSDataType, BlockStats]] = {}

    def take(dtype: np.dtype, count: int) -> np.ndarray:
        nonlocal position
        array = np.frombuffer(data, dtype=dtype, count=count, offset=position)
        position += count * dtype.itemsize
        return array

    for device, measurement, type_name, duration, n in index:
        data_type = TSDataType[type_name]
        native = NUMPY_DTYPE[data_type]
        wire = _wire(native)
        times = take(np.dtype("<i8"), 3 * n).reshape(3, n).astype(np.int64, copy=False)
        sums = take(np.dtype("<f8"), n).astype(np.float64, copy=False)
        low = high = None
        if data_type is not TSDataType.BOOLEAN:
            low, high = (take(wire, n).astype(native, copy=False) for _ in range(2))
        first, last = (take(wire, n).astype(native, copy=False) for _ in range(2))
        usable = take(np.dtype(np.uint8), n).astype(bool)
        _check_order(times)
        found[(device, measurement)] = (
            data_type, BlockStats(int(duration), times[0], times[1], times[2], sums, low, high, first, last, usable)
        )
    if position != len(data):
        raise ValueError("block statistics have trailing bytes")
    return found


def _check_order(times: np.ndarray) -> None:
    n = times.shape[1]
    if n and (np.any(times[0] > times[1]) or np.any(times[1][:-1] >= times[0][1:]) or np.any(times[2] < 1)):
        raise ValueError("block statistics out of order")


def _parse_savez(data: bytes) -> dict[tuple[str, str], tuple[TSDataType, BlockStats]]:
    found: dict[tuple[str, str], tuple[TSDataType, BlockStats]] = {}
    with np.load(io.BytesIO(data[_HEADER.size:]), allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes().decode())
        for i, (device, measurement, type_name, duration) in enumerate(meta):
            data_type = TSDataType[type_name]
            dtype = NUMPY_DTYPE[data_type]
            times = archive[f"{i}_times"].astype(np.int64, copy=False)
            n = times.shape[1]
            boolean = data_type is TSDataType.BOOLEAN
            columns = [archive[f"{i}_{name}"] for name in ("first", "last")]
            low = None if boolean else archive[f"{i}_min"]
            high = None if boolean else archive[f"{i}_max"]
            sums = archive[f"{i}_sum"].astype(np.float64, copy=False)
            usable = archive[f"{i}_usable"].astype(bool, copy=False)
            for column in (*columns, low, high):
                if column is not None and (column.shape != (n,) or column.dtype != dtype):
                    raise ValueError("malformed block statistics")
            if times.shape != (3, n) or sums.shape != (n,) or usable.shape != (n,):
                raise ValueError("malformed block statistics")
            _check_order(times)
            found[(device, measurement)] = (
                data_type,
                BlockStats(
                    int(duration), times[0], times[1], times[2], sums, low, high, columns[0], columns[1], usable
                ),
            )
    return found
