"""The manifest: which TsFiles are live and where WAL replay starts.

Stored as ``MANIFEST`` in the data directory, replaced atomically (write ``MANIFEST.tmp``, fsync,
rename, fsync the directory), so a crash leaves either the old or the new manifest. Its content is one
JSON object::

    {"format": 1, "crc32": <zlib.crc32 of the canonical state JSON>, "state": {
        "next_version": 17,          # every live file and unflushed memtable version is below this
        "wal_replay_from": 5302,     # WAL records with seq >= this are not in any live file
        "files": [{"name": "000000000016-L1.tsfile", "level": 1, "version": 16, "min_version": 13,
                   "size": 123456, "points": 4000000}, ...]}}

A file's ``version`` is the newest memtable version whose points it holds and ``min_version`` the
oldest; flushed files have both equal to their memtable's version. Where files hold the same timestamp
of a series, the one with the larger version wins.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from iotdb_core.storage.durable import atomic_write
from iotdb_core.storage.errors import CorruptionError

MANIFEST = "MANIFEST"
FORMAT = 1
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


@dataclass(frozen=True, slots=True)
class ManifestState:
    """The durable state of the engine apart from the WAL and the schema."""

    next_version: int = 1
    wal_replay_from: int = 0
    files: tuple[FileEntry, ...] = field(default_factory=tuple)

    def with_flush(self, entry: FileEntry | None, wal_replay_from: int | None, next_version: int) -> ManifestState:
        """The state after a memtable flush (``entry`` None when the memtable held no points)."""
        files = self.files if entry is None else (*self.files, entry)
        replay = self.wal_replay_from if wal_replay_from is None else max(self.wal_replay_from, wal_replay_from)
        return replace(self, files=files, wal_replay_from=replay, next_version=max(self.next_version, next_version))

    def with_compaction(self, inputs: set[str], output: FileEntry) -> ManifestState:
        """The state after ``inputs`` were merged into ``output``."""
        files = (*(entry for entry in self.files if entry.name not in inputs), output)
        return replace(self, files=files)


def _body(state: ManifestState) -> str:
    return json.dumps(
        {
            "next_version": state.next_version,
            "wal_replay_from": state.wal_replay_from,
            "files": [asdict(entry) for entry in sorted(state.files, key=lambda e: e.version)],
        },
        sort_keys=True,
        separators=(",", ":"),
    )


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
        if document.get("format") != FORMAT:
            raise CorruptionError(f"manifest {path}: unsupported format {document.get('format')!r}")
        state = document["state"]
        files = tuple(FileEntry(**entry) for entry in state["files"])
        parsed = ManifestState(int(state["next_version"]), int(state["wal_replay_from"]), files)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptionError(f"manifest {path} cannot be parsed: {exc}") from None
    if zlib.crc32(_body(parsed).encode()) != document["crc32"]:
        raise CorruptionError(f"manifest {path}: checksum mismatch")
    return parsed
