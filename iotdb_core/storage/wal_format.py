"""On-disk format of the write-ahead log: segment files and the records framed in them.

A segment is a file named ``<first_seq:020d>.wal`` (the sequence number of its first record, zero-padded
so that names sort in sequence order). It has no file header: records are stored back to back. The segment
being written may end in zero bytes: space allocated ahead of the records (see :mod:`iotdb_core.storage.wal`),
which :func:`scan` reports as :class:`Unused`, not as damage.

A record is a 16-byte header, ``struct.Struct('<IIQ')``, followed by the payload::

    offset  size  field
    0       4     payload length n (unsigned, little-endian)
    4       4     CRC32 (zlib.crc32) of bytes 8..16 (the sequence number as stored) followed by the payload
    8       8     sequence number (unsigned, little-endian)
    16      n     payload

The CRC covers the sequence number so that a record copied to the wrong place, or a stale record left
behind, does not verify. A record is *valid* when its header and payload are complete, its CRC matches and
its sequence number is greater than that of the valid record before it. After damage, :func:`scan`
resynchronises by testing every following byte offset for a valid record. A record's header holds a
non-zero sequence number, so no record starts in the zero bytes at the end of a segment.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

HEADER = struct.Struct("<IIQ")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD_SIZE = 2**32 - 1
SEGMENT_SUFFIX = ".wal"

_SEQ = struct.Struct("<Q")
_SEGMENT_NAME = re.compile(r"^(\d{20})\.wal$")
_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
_pack_seq = _SEQ.pack
_crc32 = zlib.crc32


class Record(NamedTuple):
    """A valid record found by :func:`scan`, at byte ``offset`` of the segment."""

    offset: int
    seq: int
    payload: bytes


class BadRegion(NamedTuple):
    """Bytes of a segment that hold no valid record.

    ``trailing`` is true when no valid record follows the region in the segment.
    """

    offset: int
    size: int
    trailing: bool


class Unused(NamedTuple):
    """Zero bytes at the end of a segment after its last record: allocated space, not data."""

    offset: int
    size: int


def segment_name(first_seq: int) -> str:
    """File name of the segment whose first record has sequence number ``first_seq``."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segments in ``directory`` as ``(first_seq, path)`` in sequence order; other files are ignored."""
    found = []
    for path in directory.iterdir():
        match = _SEGMENT_NAME.match(path.name)
        if match is not None and path.is_file():
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def encode(seq: int, payload: bytes) -> bytes:
    """Frame one record."""
    return header(seq, payload) + payload


def header(seq: int, payload: bytes) -> bytes:
    """The header that frames ``payload`` as record ``seq`` (the record is the header, then the payload)."""
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise ValueError(f"WAL payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD_SIZE}")
    return _pack_header(len(payload), _crc32(payload, _crc32(_pack_seq(seq))), seq)


def encode_many(first_seq: int, payloads: Iterable[bytes]) -> bytes:
    """Frame consecutive records numbered from ``first_seq`` into one buffer."""
    parts: list[bytes] = []
    append = parts.append
    seq = first_seq
    for payload in payloads:
        size = len(payload)
        if size > MAX_PAYLOAD_SIZE:
            raise ValueError(f"WAL payload of {size} bytes exceeds the maximum of {MAX_PAYLOAD_SIZE}")
        append(_pack_header(size, _crc32(payload, _crc32(_pack_seq(seq))), seq))
        append(payload)
        seq += 1
    return b"".join(parts)


def scan(data: bytes, after_seq: int = 0) -> Iterator[Record | BadRegion | Unused]:
    """Yield the valid records of a segment's bytes and the bad regions between them, in file order.

    A record is valid only if its sequence number exceeds ``after_seq`` and that of every valid record
    before it. When only zero bytes follow the last record, they come last, as :class:`Unused`; a trailing
    bad region runs to the end, zero bytes included.
    """
    view = memoryview(data)
    end_of_data = len(data)
    pos = 0
    used_end = -1  # end of the last non-zero byte, computed at the first failed read
    while pos < end_of_data:
        end = _record_end(view, pos, end_of_data, after_seq)
        if end < 0:
            if used_end < 0:
                used_end = len(data.rstrip(b"\0"))
            if pos >= used_end:
                yield Unused(pos, end_of_data - pos)
                return
            resume = _resync(view, pos + 1, used_end, end_of_data, after_seq)
            if resume < 0:
                yield BadRegion(pos, end_of_data - pos, trailing=True)
                return
            yield BadRegion(pos, resume - pos, trailing=False)
            pos = resume
            continue
        seq = _SEQ.unpack_from(view, pos + 8)[0]
        yield Record(pos, seq, bytes(view[pos + HEADER_SIZE : end]))
        after_seq = seq
        pos = end


def _record_end(view: memoryview, pos: int, end_of_data: int, after_seq: int) -> int:
    """End offset of the valid record at ``pos``, or -1 if there is none."""
    if pos + HEADER_SIZE > end_of_data:
        return -1
    length, crc, seq = _unpack_header(view, pos)
    end = pos + HEADER_SIZE + length
    if end > end_of_data or seq <= after_seq:
        return -1
    if _crc32(view[pos + HEADER_SIZE : end], _crc32(view[pos + 8 : pos + HEADER_SIZE])) != crc:
        return -1
    return end


def _resync(view: memoryview, start: int, used_end: int, end_of_data: int, after_seq: int) -> int:
    """Offset of the first valid record at or after ``start`` and before ``used_end``, or -1."""
    for pos in range(start, min(used_end, end_of_data - HEADER_SIZE + 1)):
        length, _, seq = _unpack_header(view, pos)
        if (
            seq > after_seq
            and pos + HEADER_SIZE + length <= end_of_data
            and _record_end(view, pos, end_of_data, after_seq) >= 0
        ):
            return pos
    return -1
