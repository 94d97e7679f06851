"""Size-tiered compaction: merging the oldest files of a level into one file of the next level.

When ``compaction_files_per_level`` files exist at a level, the oldest that many are merged into one
file at level + 1 named after the newest input's version. Every series present in any input is merged
newest-wins (the input with the larger version wins a timestamp). Files are ordered by version and a
level's files are always contiguous in that order (older files sit at higher levels), so the output
takes the inputs' place: no other file holds versions between them.

Points hidden by tombstones (each applied to the inputs older than it that were not yet written
through it) and points expired by TTL are left out (:class:`~iotdb_core.storage.tombstones.Purge`);
the output records the purge's tombstone mark. A series whose type differs from the schema's is the
data of a deleted and re-created series, which its deletion's tombstone hides, and is left out too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

from iotdb_core.storage import blockstats
from iotdb_core.storage.flush import share_timestamps
from iotdb_core.storage.manifest import FileEntry, file_name
from iotdb_core.storage.merge import merge_runs
from iotdb_core.storage.schema import SchemaRegistry
from iotdb_core.storage.tombstones import KEEP_ALL, Purge, drop_ranges
from iotdb_core.storage.tsfile_io import SeriesData, with_decimal_encoding, write_tsfile
from iotdb_core.storage.version import TableFile

_ALL = (-(2**63), 2**63 - 1)


def pick(files: Sequence[FileEntry], files_per_level: int) -> list[FileEntry] | None:
    """The files to merge next (oldest first), or None when no level is full."""
    ordered = sorted(files, key=lambda entry: entry.version)
    for level in sorted({entry.level for entry in ordered}):
        at_level = [entry for entry in ordered if entry.level == level]
        if len(at_level) < files_per_level:
            continue
        chosen = at_level[:files_per_level]
        low, high = chosen[0].version, chosen[-1].version
        between = [entry for entry in ordered if low <= entry.version <= high]
        if len(between) == len(chosen):
            return chosen
    return None


def _merged_series(inputs: Sequence[TableFile], registry: SchemaRegistry, purge: Purge) -> Iterator[SeriesData]:
    keys = sorted({key for table in inputs for key in table.series})
    for key in keys:
        device, measurement = key
        schema = registry.get(device, measurement)
        data_type = schema.data_type if schema is not None else next(
            table.series[key].data_type for table in inputs if key in table.series
        )
        runs = []
        for table in inputs:
            info = table.series.get(key)
            if info is None or info.data_type is not data_type:
                continue
            run = table.read(key, data_type, *_ALL)
            if run is None:
                continue
            ranges = purge.ranges(key, table.entry.version, table.entry.tombstone_mark)
            if ranges:
                run = drop_ranges(run[0], run[1], ranges)
            runs.append(run)
        merged = merge_runs(runs)
        if merged is None:
            continue
        encoding = schema.encoding if schema is not None else None
        compressor = schema.compressor if schema is not None else None
        yield with_decimal_encoding(
            SeriesData.of(device, measurement, data_type, merged[0], merged[1], encoding, compressor)
        )


def compact(
    inputs: Sequence[TableFile],
    directory: Path,
    registry: SchemaRegistry,
    purge: Purge = KEEP_ALL,
    precision: str = "ms",
) -> FileEntry | None:
    """Merge ``inputs`` (oldest first, one level) into a new file at the next level; return its entry.

    None (and no file) when no point is left. The output's block statistics are written next to it first.
    """
    ordered = sorted(inputs, key=lambda table: table.entry.version)
    level = ordered[0].entry.level + 1
    version = ordered[-1].entry.version
    name = file_name(version, level)
    path = directory / name
    path.unlink(missing_ok=True)  # a leftover of a compaction interrupted before the manifest adopted it
    blockstats.remove(path)
    series = share_timestamps(_merged_series(ordered, registry, purge))
    first = next(series, None)
    if first is None:
        return None
    blocks: dict = {}
    summary = write_tsfile(path, blockstats.collect(itertools.chain((first,), series), blocks, precision))
    blockstats.write_quietly(path, blocks)
    return FileEntry(
        name,
        level,
        version,
        min(t.entry.min_version for t in ordered),
        summary.file_size,
        summary.point_count,
        purge.mark,
    )
