"""Writing a frozen memtable into one TsFile.

Series are written sorted by device then measurement, each sorted by time with one point per
timestamp (the last write wins), with the encoding and compressor of their schema (a DOUBLE series whose
points in this file all have at most two decimals is stored with scaled-integer TS_2DIFF instead:
:func:`~iotdb_core.storage.tsfile_io.with_decimal_encoding`), without the points
that tombstones hide or a TTL rule expired (:class:`~iotdb_core.storage.tombstones.Purge`). The file is named
after the memtable's version at level 0 and reaches its final name only complete and fsynced
(:func:`iotdb_core.storage.tsfile_io.write_tsfile`); the manifest adopts it afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from iotdb_core.storage import blockstats
from iotdb_core.storage.manifest import FileEntry, file_name
from iotdb_core.storage.memtable import MemTable
from iotdb_core.storage.schema import SchemaRegistry, make_schema
from iotdb_core.storage.tombstones import KEEP_ALL, Purge, drop_ranges
from iotdb_core.storage.tsfile_io import SeriesData, TsFileSummary, with_decimal_encoding, write_tsfile


def share_timestamps(series: Iterable[SeriesData]) -> Iterator[SeriesData]:
    """Let series of one device with equal timestamps share one timestamp array.

    A file is written from all its series at once, so this halves the memory a flush or compaction of
    tablet-shaped data (many measurements, one clock) holds; the TsFile writer also writes such series
    together as one multi-column tablet.
    """
    device = None
    seen: list[np.ndarray] = []
    for given in series:
        if given.device != device:
            device, seen = given.device, []
        stamps = given.timestamps
        shared = next((known for known in seen if _equal(known, stamps)), None)
        if shared is None:
            seen.append(stamps)
            yield given
        else:
            yield replace(given, timestamps=shared)


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if len(a) != len(b):
        return False
    return len(a) == 0 or (a[0] == b[0] and a[-1] == b[-1] and bool(np.array_equal(a, b)))


def memtable_series(memtable: MemTable, registry: SchemaRegistry, purge: Purge = KEEP_ALL) -> Iterator[SeriesData]:
    """The memtable's series as TsFile series data, without the points ``purge`` drops."""
    for (device, measurement), data_type, all_timestamps, all_values in memtable.sorted_series():
        timestamps, values = drop_ranges(
            all_timestamps, all_values, purge.ranges((device, measurement), memtable.version, 0)
        )
        if len(timestamps) == 0:
            continue
        schema = registry.get(device, measurement)
        if schema is None or schema.data_type is not data_type:
            schema = make_schema(device, measurement, data_type)
        yield with_decimal_encoding(
            SeriesData(device, measurement, data_type, schema.encoding, schema.compressor, timestamps, values)
        )


def flush_memtable(
    memtable: MemTable, directory: Path, registry: SchemaRegistry, purge: Purge = KEEP_ALL, precision: str = "ms"
) -> tuple[FileEntry, TsFileSummary] | None:
    """Write a frozen memtable to ``directory``; None (and no file) when no point is left to write.

    The file's block statistics (:mod:`~iotdb_core.storage.blockstats`) are written next to it first.
    """
    if memtable.empty:
        return None
    series = share_timestamps(memtable_series(memtable, registry, purge))
    first = next(series, None)
    if first is None:
        return None
    name = file_name(memtable.version, 0)
    path = directory / name
    path.unlink(missing_ok=True)  # a leftover of a flush interrupted before the manifest adopted it
    blockstats.remove(path)
    blocks: dict = {}
    summary = write_tsfile(path, blockstats.collect(itertools.chain((first,), series), blocks, precision))
    blockstats.write_quietly(path, blocks)
    entry = FileEntry(
        name, 0, memtable.version, memtable.version, summary.file_size, summary.point_count, purge.mark
    )
    return entry, summary
