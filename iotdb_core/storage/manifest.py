"""The manifest: which TsFiles are live, where WAL replay starts, the tombstones and the TTL rules.

Stored as ``MANIFEST`` in the data directory, replaced atomically (write ``MANIFEST.tmp``, fsync,
rename, fsync the directory), so a crash leaves either the old or the new manifest. Its content is one
JSON object::

    {"format": 2, "crc32": <zlib.crc32 of the canonical state JSON>, "state": {
        "next_version": 17,          # every live file and unflushed memtable version is below this
        "wal_replay_from": 5302,     # WAL records with seq >= this are not in any live file
        "files": [{"name": "000000000016-L1.tsfile", "level": 1, "version": 16, "min_version": 13,
                   "size": 123456, "points": 4000000, "tombstone_mark": 3}, ...],
        "next_tombstone": 5,         # the id of the next tombstone
        "tombstones": [{"id": 4, "pattern": "root.sg.*.s1", "start": 0, "end": 99,
                        "version": 17, "seq": 5310}, ...],
        "ttl": {"root.sg.**": 3600000}}}

A file's ``version`` is the newest memtable version whose points it holds and ``min_version`` the
oldest; flushed files have both equal to their memtable's version. Where files hold the same timestamp
of a series, the one with the larger version wins. ``tombstone_mark`` is the largest tombstone id the
file was written through (:mod:`~iotdb_core.storage.tombstones`). Format 1 (no tombstones, no TTL,
no marks) is still read.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from iotdb_core.durable import atomic_write
from iotdb_core.storage.errors import CorruptionError
from iotdb_core.storage.tombstones import Tombstone

MANIFEST = "MANIFEST"
FORMAT = 2
SEQUENCE_DIR = "sequence"


def file_name(version: int, level: int) -> str:
    """The name of a TsFile: ``<version:012d>-L<level>.tsfile``."""
    return f"{version:012d}-L{level}.tsfile"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One live TsFile under ``sequence/``."""

    name: str
    level: int
    version: int
    min_version: int
    size: int
    points: int
    tombstone_mark: int = 0


@dataclass(frozen=True, slots=True)
class ManifestState:
    """The durable state of the engine apart from the WAL and the schema."""

    next_version: int = 1
    wal_replay_from: int = 0
    files: tuple[FileEntry, ...] = field(default_factory=tuple)
    next_tombstone: int = 1
    tombstones: tuple[Tombstone, ...] = field(default_factory=tuple)
    ttl: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    def with_flush(self, entry: FileEntry | None, wal_replay_from: int | None, next_version: int) -> ManifestState:
        """The state after a memtable flush (``entry`` None when the memtable held no points)."""
        files = self.files if entry is None else (*self.files, entry)
        replay = self.wal_replay_from if wal_replay_from is None else max(self.wal_replay_from, wal_replay_from)
        return replace(self, files=files, wal_replay_from=replay, next_version=max(self.next_version, next_version))

    def with_compaction(self, inputs: set[str], output: FileEntry | None) -> ManifestState:
        """The state after ``inputs`` were merged into ``output`` (None: every point was purged)."""
        kept = tuple(entry for entry in self.files if entry.name not in inputs)
        return replace(self, files=kept if output is None else (*kept, output))

    def without_files(self, names: set[str]) -> ManifestState:
        """The state with the named files removed (expired by TTL)."""
        return replace(self, files=tuple(entry for entry in self.files if entry.name not in names))

    def with_tombstone(self, pattern: str, start: int, end: int, version: int, seq: int) -> ManifestState:
        """The state with a new tombstone, numbered ``next_tombstone``."""
        tombstone = Tombstone(self.next_tombstone, pattern, start, end, version, seq)
        return replace(self, tombstones=(*self.tombstones, tombstone), next_tombstone=self.next_tombstone + 1)

    def with_ttl(self, rules: dict[str, int]) -> ManifestState:
        return replace(self, ttl=tuple(sorted(rules.items())))


def _body(state: ManifestState, fmt: int = FORMAT) -> str:
    files: list[dict[str, Any]] = [asdict(entry) for entry in sorted(state.files, key=lambda e: e.version)]
    document: dict[str, Any] = {"next_version": state.next_version, "wal_replay_from": state.wal_replay_from}
    if fmt == 1:
        for entry in files:
            del entry["tombstone_mark"]
    else:
        document["next_tombstone"] = state.next_tombstone
        document["tombstones"] = [t.to_json() for t in sorted(state.tombstones, key=lambda t: t.id)]
        document["ttl"] = dict(state.ttl)
    document["files"] = files
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def write_manifest(directory: Path, state: ManifestState) -> None:
    """Atomically replace the manifest in ``directory`` with ``state``."""
    body = _body(state)
    text = f'{{"format":{FORMAT},"crc32":{zlib.crc32(body.encode())},"state":{body}}}\n'
    atomic_write(directory / MANIFEST, text.encode())


def read_manifest(directory: Path) -> ManifestState:
    """The manifest in ``directory``, or an empty state if there is none. Raises CorruptionError."""
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ManifestState()
    try:
        document = json.loads(raw)
        fmt = document.get("format")
        if fmt not in (1, FORMAT):
            raise CorruptionError(f"manifest {path}: unsupported format {fmt!r}")
        state = document["state"]
        files = tuple(FileEntry(**entry) for entry in state["files"])
        parsed = ManifestState(
            int(state["next_version"]),
            int(state["wal_replay_from"]),
            files,
            int(state.get("next_tombstone", 1)),
            tuple(Tombstone.from_json(item) for item in state.get("tombstones", ())),
            tuple(sorted((str(k), int(v)) for k, v in state.get("ttl", {}).items())),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptionError(f"manifest {path} cannot be parsed: {exc}") from None
    if zlib.crc32(_body(parsed, fmt).encode()) != document["crc32"]:
        raise CorruptionError(f"manifest {path}: checksum mismatch")
    return parsed
