"""The dead-letter log: payloads that could not be stored, kept with who sent them and why.

Records are JSON lines in ``<data_dir>/deadletter/deadletter-<number>.jsonl``. A file is closed
when it reaches a quarter of the size budget, and the oldest files are removed while the total
exceeds the budget, so the log is bounded. Each append is fsynced before it returns: an MQTT
client whose payload was rejected is acknowledged only once the payload is kept here.

A record: ``time`` (ISO 8601, UTC), ``client_id``, ``username``, ``topic``, ``qos``, ``reason``,
``payload`` (the text when it is UTF-8, else base64) and ``payload_encoding`` (``utf-8`` or ``base64``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from iotdb_core.storage.durable import atomic_write

DIRECTORY = "deadletter"
_FILE = re.compile(r"deadletter-(\d{8})\.jsonl")
_ID = re.compile(r"(\d{1,8})-(\d{1,12})-([0-9a-f]{8})")


class DeadLetterChanged(LookupError):
    """The record an id names is no longer in the log (discarded, rotated out, or its file rewritten)."""


@dataclass(frozen=True)
class DeadLetter:
    """One rejected payload."""

    time: str
    client_id: str
    username: str | None
    topic: str
    qos: int
    reason: str
    payload: str
    payload_encoding: str

    @classmethod
    def of(cls, *, client_id: str, username: str | None, topic: str, qos: int, reason: str,
           payload: bytes) -> DeadLetter:
        """Build a record stamped with the current time."""
        try:
            text, encoding = payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        return cls(stamp, client_id, username, topic, qos, reason, text, encoding)

    def payload_bytes(self) -> bytes:
        """The original payload."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")


class DeadLetterLog:
    """Appends rejected payloads durably, rotating and bounding the files. Thread-safe."""

    def __init__(self, data_dir: Path, max_bytes: int) -> None:
        self.directory = Path(data_dir) / DIRECTORY
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._file_limit = max(1024, max_bytes // 4)
        self._lock = threading.Lock()
        numbers = self._numbers()
        self._number = numbers[-1] if numbers else 1

    def _numbers(self) -> list[int]:
        return sorted(int(match.group(1)) for entry in os.listdir(self.directory)
                      if (match := _FILE.fullmatch(entry)))

    def _file(self, number: int) -> Path:
        return self.directory / f"deadletter-{number:08d}.jsonl"

    def append(self, letters: Sequence[DeadLetter]) -> None:
        """Write ``letters`` and fsync them before returning."""
        if not letters:
            return
        data = "".join(json.dumps(asdict(letter), ensure_ascii=False) + "\n" for letter in letters).encode("utf-8")
        with self._lock:
            path = self._file(self._number)
            if path.exists() and path.stat().st_size + len(data) > self._file_limit:
                self._number += 1
                path = self._file(self._number)
            with open(path, "ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._enforce_budget()

    def _enforce_budget(self) -> None:
        numbers = self._numbers()
        sizes = {number: self._file(number).stat().st_size for number in numbers}
        total = sum(sizes.values())
        for number in numbers[:-1]:
            if total <= self.max_bytes:
                break
            self._file(number).unlink()
            total -= sizes[number]

    def read(self) -> Iterator[DeadLetter]:
        """Every kept record, oldest first; a torn last line is skipped."""
        for number in self._numbers():
            try:
                handle = open(self._file(number), encoding="utf-8", errors="replace")  # noqa: SIM115
            except FileNotFoundError:
                continue  # removed by the running service's size budget since it was listed
            with handle:
                for line in handle:
                    try:
                        yield DeadLetter(**json.loads(line))
                    except (ValueError, TypeError):
                        continue

    def entries(self) -> Iterator[tuple[str, DeadLetter]]:
        """Every kept record with its id (file number, byte offset and checksum of the line), oldest first.

        An id stays valid until its record is discarded or rotated out; a discard rewrites the record's file,
        so ids of later records of that file change (the checksum makes a stale id fail, never hit another
        record).
        """
        for number in self._numbers():
            try:
                handle = open(self._file(number), "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            with handle:
                offset = 0
                for line in handle:
                    start, offset = offset, offset + len(line)
                    try:
                        letter = DeadLetter(**json.loads(line.decode("utf-8", errors="replace")))
                    except (ValueError, TypeError):
                        continue
                    yield f"{number}-{start}-{zlib.crc32(line):08x}", letter

    def get(self, letter_id: str) -> DeadLetter:
        """The record of ``letter_id``; :class:`DeadLetterChanged` when it is gone."""
        _, _, line = self._locate(letter_id)
        return DeadLetter(**json.loads(line.decode("utf-8", errors="replace")))

    def discard(self, letter_id: str) -> DeadLetter:
        """Remove the record of ``letter_id`` from the log (its file is rewritten atomically) and return it."""
        with self._lock:
            number, start, line = self._locate(letter_id)
            path = self._file(number)
            data = path.read_bytes()
            atomic_write(path, data[:start] + data[start + len(line):])
        return DeadLetter(**json.loads(line.decode("utf-8", errors="replace")))

    def _locate(self, letter_id: str) -> tuple[int, int, bytes]:
        match = _ID.fullmatch(letter_id)
        if match is None:
            raise DeadLetterChanged(f"{letter_id!r} is not a dead-letter id (file-offset-checksum)")
        number, start, checksum = int(match.group(1)), int(match.group(2)), match.group(3)
        try:
            with open(self._file(number), "rb") as handle:
                handle.seek(start)
                line = handle.readline()
        except FileNotFoundError:
            line = b""
        if not line or f"{zlib.crc32(line):08x}" != checksum:
            raise DeadLetterChanged(f"dead letter {letter_id} is no longer in the log; reload the list")
        return number, start, line
