"""The manifest file and the choice of files to compact."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_core.storage.compaction import pick
from iotdb_core.storage.errors import CorruptionError
from iotdb_core.storage.manifest import MANIFEST, FileEntry, ManifestState, file_name, read_manifest, write_manifest


def entry(version: int, level: int = 0, min_version: int | None = None) -> FileEntry:
    low = version if min_version is None else min_version
    return FileEntry(file_name(version, level), level, version, low, 100, 10)


def test_round_trip_and_missing(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == ManifestState()
    state = ManifestState().with_flush(entry(1), 17, 2).with_flush(entry(2), 30, 3).with_flush(None, 35, 5)
    write_manifest(tmp_path, state)
    assert read_manifest(tmp_path) == state
    assert state.wal_replay_from == 35 and state.next_version == 5
    assert not (tmp_path / (MANIFEST + ".tmp")).exists()
    merged = state.with_compaction({entry(1).name, entry(2).name}, entry(2, 1, 1))
    assert [e.name for e in merged.files] == ["000000000002-L1.tsfile"]


def test_damage_is_detected(tmp_path: Path) -> None:
    write_manifest(tmp_path, ManifestState().with_flush(entry(1), 5, 2))
    path = tmp_path / MANIFEST
    path.write_text(path.read_text().replace('"points":10', '"points":11'))
    with pytest.raises(CorruptionError, match="checksum"):
        read_manifest(tmp_path)
    path.write_text("{not json")
    with pytest.raises(CorruptionError, match="cannot be parsed"):
        read_manifest(tmp_path)


def test_pick_oldest_full_level() -> None:
    assert pick([entry(1), entry(2), entry(3)], 4) is None
    files = [entry(8, 1, 5), entry(9), entry(10), entry(11), entry(12), entry(13)]
    chosen = pick(files, 4)
    assert chosen is not None and [e.version for e in chosen] == [9, 10, 11, 12]
    level_one = [entry(4, 1, 1), entry(8, 1, 5), entry(12, 1, 9), entry(16, 1, 13), entry(17)]
    chosen = pick(level_one, 4)
    assert chosen is not None and [e.level for e in chosen] == [1, 1, 1, 1]
