"""Time-aligned block statistics of a TsFile's series, kept in a sidecar file ``<name>.tsfile.stats``.

Each numeric or BOOLEAN series is cut into blocks of a duration ``D`` from :func:`ladder` (1 s, 10 s, 1 min,
10 min, 1 h, 1 d, 7 d in the engine's timestamp unit), block ``k`` holding the points with
``k * D <= t < (k + 1) * D``; ``D`` is the smallest whose non-empty blocks hold :data:`MIN_BLOCK_POINTS` points
on average. Per block: start/end time, count, sum, min, max, first, last, and whether it is usable (a
FLOAT/DOUBLE block holding NaN is not). Series with fewer points, or a single block, get none (the file's
own statistics are as good). The sidecar is optional: a missing or unreadable one means no blocks.

Format: the 8-byte magic ``IOTDBBLK``, a little-endian uint32 version, then an ``np.savez`` archive whose
``meta`` entry is UTF-8 JSON ``[[device, measurement, data_type, duration], ...]`` and whose ``{i}_times``
(int64 ``[3, n]``: start, end, count), ``{i}_sum``, ``{i}_min``, ``{i}_max``, ``{i}_first``, ``{i}_last``,
``{i}_usable`` entries hold series ``i``'s blocks.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.durable import fsync_dir
from iotdb_core.storage.columns import NUMPY_DTYPE
from iotdb_core.storage.tsfile_io import SeriesData

log = logging.getLogger("iotdb.storage")

SUFFIX = ".stats"
MAGIC = b"IOTDBBLK"
FORMAT_VERSION = 1
#: Average points per block the chosen duration must reach.
MIN_BLOCK_POINTS = 1000

_LADDER_MS = (1_000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000, 604_800_000)
_SCALE = {"ms": 1, "us": 1_000, "ns": 1_000_000}
_TYPES = frozenset({TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE})
_HEADER = struct.Struct("<8sI")


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


def compute(
    timestamps: np.ndarray, values: np.ndarray, data_type: TSDataType, precision: str = "ms"
) -> BlockStats | None:
    """The blocks of one series (timestamps strictly increasing), or None when it gets none."""
    if data_type not in _TYPES:
        return None
    n = len(timestamps)
    if n < MIN_BLOCK_POINTS:
        return None
    stamps = np.asarray(timestamps, dtype=np.int64)
    ids = None
    duration = 0
    for duration in ladder(precision):
        ids = stamps // duration
        blocks = 1 + int(np.count_nonzero(ids[1:] != ids[:-1]))
        if n >= MIN_BLOCK_POINTS * blocks:
            break
    assert ids is not None
    starts = np.concatenate(([0], np.flatnonzero(ids[1:] != ids[:-1]) + 1))
    if len(starts) < 2:
        return None
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
    for given in series:
        try:
            blocks = compute(given.timestamps, given.values, given.data_type, precision)  # type: ignore[arg-type]
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
    meta = []
    arrays: dict[str, np.ndarray] = {}
    for i, ((device, measurement), (data_type, stats)) in enumerate(blocks.items()):
        meta.append([device, measurement, data_type.name, stats.duration])
        arrays[f"{i}_times"] = np.stack([stats.start_time, stats.end_time, stats.count])
        arrays[f"{i}_sum"] = stats.sum
        if stats.min_value is not None and stats.max_value is not None:
            arrays[f"{i}_min"] = stats.min_value
            arrays[f"{i}_max"] = stats.max_value
        arrays[f"{i}_first"] = stats.first_value
        arrays[f"{i}_last"] = stats.last_value
        arrays[f"{i}_usable"] = stats.usable
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    buffer.write(_HEADER.pack(MAGIC, FORMAT_VERSION))
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # mypy lets **arrays fill allow_pickle; no key is that
    temp = final.with_name(final.name + ".tmp")
    try:
        with open(temp, "wb") as out:
            out.write(buffer.getbuffer())
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


def _parse(data: bytes) -> dict[tuple[str, str], tuple[TSDataType, BlockStats]]:
    magic, version = _HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise ValueError("not a block statistics file of this version")
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
            if n and (np.any(times[0] > times[1]) or np.any(times[1][:-1] >= times[0][1:]) or np.any(times[2] < 1)):
                raise ValueError("block statistics out of order")
            found[(device, measurement)] = (
                data_type,
                BlockStats(
                    int(duration), times[0], times[1], times[2], sums, low, high, columns[0], columns[1], usable
                ),
            )
    return found
