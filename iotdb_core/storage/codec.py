"""The WAL record payload: validated inserts, encoded compactly with struct and numpy.

Every integer is little-endian. A payload starts with a kind byte.

``KIND_TABLET`` (1): one device, rows sharing timestamps, columns with an optional presence mask::

    u8 kind | u16 len + device UTF-8 | u32 rows | u16 columns | rows x i64 timestamps
    per column: u16 len + measurement UTF-8 | u8 type | u8 has_mask
                [ceil(rows / 8) bytes numpy.packbits mask, when has_mask] | values of the present rows

``KIND_SERIES`` (2): any number of series chunks, each with its own timestamps::

    u8 kind | u32 chunks
    per chunk: u16 len + device UTF-8 | u16 len + measurement UTF-8 | u8 type | u32 count
               count x i64 timestamps | values

``KIND_TABLETS`` (3): the tablets of one ``Engine.write_tablets`` call, each laid out as a ``KIND_TABLET``
payload without its kind byte::

    u8 kind | u32 tablets | per tablet: u16 len + device UTF-8 | u32 rows | u16 columns | ...

Values, for ``n`` points, by type code (the TsFile type ids): BOOLEAN 0 = n x u8; INT32 1 = n x i32;
INT64 2 = n x i64; FLOAT 3 = n x f32; DOUBLE 4 = n x f64; TEXT 5 = n x u32 byte lengths then the
concatenated UTF-8 bytes.

Only validated, coerced points are logged, so replay needs no schema and cannot fail on a value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage.columns import NUMPY_DTYPE, Values
from iotdb_core.storage.errors import CorruptionError

KIND_TABLET = 1
KIND_SERIES = 2
KIND_TABLETS = 3

TYPE_CODE: dict[TSDataType, int] = {
    TSDataType.BOOLEAN: 0,
    TSDataType.INT32: 1,
    TSDataType.INT64: 2,
    TSDataType.FLOAT: 3,
    TSDataType.DOUBLE: 4,
    TSDataType.TEXT: 5,
}
CODE_TYPE: dict[int, TSDataType] = {code: data_type for data_type, code in TYPE_CODE.items()}
_WIRE_DTYPE: dict[TSDataType, np.dtype] = {
    TSDataType.BOOLEAN: np.dtype("u1"),
    TSDataType.INT32: np.dtype("<i4"),
    TSDataType.INT64: np.dtype("<i8"),
    TSDataType.FLOAT: np.dtype("<f4"),
    TSDataType.DOUBLE: np.dtype("<f8"),
}
_STRUCT_CHAR = {
    TSDataType.BOOLEAN: "?",
    TSDataType.INT32: "i",
    TSDataType.INT64: "q",
    TSDataType.FLOAT: "f",
    TSDataType.DOUBLE: "d",
}
_ONE = {data_type: struct.Struct("<" + char).pack for data_type, char in _STRUCT_CHAR.items()}
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TABLET_HEAD = struct.Struct("<IH")
_COLUMN_HEAD = struct.Struct("<BB")
_CHUNK_HEAD = struct.Struct("<BI")
_I64 = np.dtype("<i8")


@dataclass(frozen=True, slots=True)
class SeriesChunk:
    """Points of one series, in write order (timestamps may repeat or go back)."""

    device: str
    measurement: str
    data_type: TSDataType
    timestamps: np.ndarray | Sequence[int]
    values: Values


class TabletColumn(NamedTuple):
    """One measurement of a tablet; ``mask`` marks the rows that have a value (None: every row).

    A named tuple: a call of many small tablets creates one per column, and a tuple is cheap to create.
    """

    measurement: str
    data_type: TSDataType
    mask: np.ndarray | None
    values: Values


@lru_cache(maxsize=65536)
def _name(text: str) -> bytes:
    """A name as logged: u16 length and UTF-8 (cached: the same devices and measurements come again and again)."""
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


# A part of a payload: bytes, or a view of a contiguous array that the payload's one join copies (not tobytes() too).
_Part = bytes | memoryview


def _pack_timestamps(timestamps: np.ndarray | Sequence[int]) -> _Part:
    if isinstance(timestamps, np.ndarray):
        return np.ascontiguousarray(timestamps, dtype=_I64).data
    if len(timestamps) == 1:
        return _ONE[TSDataType.INT64](timestamps[0])
    return struct.pack(f"<{len(timestamps)}q", *timestamps)


def _pack_values(data_type: TSDataType, values: Values) -> _Part:
    if data_type is TSDataType.TEXT:
        encoded = [value.encode() for value in values]
        return np.fromiter(map(len, encoded), dtype="<u4", count=len(encoded)).tobytes() + b"".join(encoded)
    if isinstance(values, np.ndarray):
        return np.ascontiguousarray(values, dtype=_WIRE_DTYPE[data_type]).data
    if len(values) == 1:
        return _ONE[data_type](values[0])
    return struct.pack(f"<{len(values)}{_STRUCT_CHAR[data_type]}", *values)


def encode_series(chunks: Sequence[SeriesChunk]) -> bytes:
    """Encode series chunks as one ``KIND_SERIES`` payload."""
    parts: list[_Part] = [_U8.pack(KIND_SERIES), _U32.pack(len(chunks))]
    append = parts.append
    for chunk in chunks:
        append(_name(chunk.device))
        append(_name(chunk.measurement))
        append(_CHUNK_HEAD.pack(TYPE_CODE[chunk.data_type], len(chunk.timestamps)))
        append(_pack_timestamps(chunk.timestamps))
        append(_pack_values(chunk.data_type, chunk.values))
    return b"".join(parts)


def _tablet_parts(parts: list[_Part], device: str, timestamps: np.ndarray, columns: Sequence[TabletColumn]) -> None:
    """Append one tablet's body (a ``KIND_TABLET`` payload after its kind byte) to ``parts``."""
    append = parts.append
    append(_name(device))
    append(_TABLET_HEAD.pack(len(timestamps), len(columns)))
    append(_pack_timestamps(timestamps))
    for column in columns:
        append(_name(column.measurement))
        append(_COLUMN_HEAD.pack(TYPE_CODE[column.data_type], column.mask is not None))
        if column.mask is not None:
            append(np.packbits(column.mask).tobytes())
        append(_pack_values(column.data_type, column.values))


def encode_row(device: str, timestamp: int, points: Sequence[tuple[str, TSDataType, Any]]) -> bytes:
    """One row's points, ``(measurement, type, value)``, as the ``KIND_SERIES`` payload :func:`encode_series`
    makes of them (a chunk of one point each), without building the chunks."""
    parts = [_U8.pack(KIND_SERIES), _U32.pack(len(points))]
    append = parts.append
    device_name = _name(device)
    stamp = _ONE[TSDataType.INT64](timestamp)
    for measurement, data_type, value in points:
        append(device_name)
        append(_name(measurement))
        append(_CHUNK_HEAD.pack(TYPE_CODE[data_type], 1))
        append(stamp)
        if data_type is TSDataType.TEXT:
            raw = value.encode()
            append(_U32.pack(len(raw)))
            append(raw)
        else:
            append(_ONE[data_type](value))
    return b"".join(parts)


def encode_tablet(device: str, timestamps: np.ndarray, columns: Sequence[TabletColumn]) -> bytes:
    """Encode one device's rows as a ``KIND_TABLET`` payload."""
    parts: list[_Part] = [_U8.pack(KIND_TABLET)]
    _tablet_parts(parts, device, timestamps, columns)
    return b"".join(parts)


def encode_tablets(tablets: Sequence[tuple[str, np.ndarray, Sequence[TabletColumn]]]) -> bytes:
    """Encode ``(device, timestamps, columns)`` tablets as one ``KIND_TABLETS`` payload."""
    parts: list[_Part] = [_U8.pack(KIND_TABLETS), _U32.pack(len(tablets))]
    for device, timestamps, columns in tablets:
        _tablet_parts(parts, device, timestamps, columns)
    return b"".join(parts)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int) -> memoryview:
        end = self.pos + size
        if end > len(self.data):
            raise CorruptionError(f"WAL payload ends early: needs {end} bytes, has {len(self.data)}")
        view = self.data[self.pos : end]
        self.pos = end
        return view

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size))

    def name(self) -> str:
        (size,) = self.unpack(_U16)
        return str(self.take(size), "utf-8")

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        return np.frombuffer(self.take(count * dtype.itemsize), dtype=dtype, count=count)

    def values(self, data_type: TSDataType, count: int) -> np.ndarray:
        if data_type is TSDataType.TEXT:
            lengths = self.array(np.dtype("<u4"), count)
            blob = bytes(self.take(int(lengths.sum(dtype=np.int64))))
            ends = np.cumsum(lengths, dtype=np.int64).tolist()
            out = np.empty(count, dtype=object)
            start = 0
            for index, end in enumerate(ends):
                out[index] = blob[start:end].decode()
                start = end
            return out
        return self.array(_WIRE_DTYPE[data_type], count).astype(NUMPY_DTYPE[data_type])

    def data_type(self, code: int) -> TSDataType:
        try:
            return CODE_TYPE[code]
        except KeyError:
            raise CorruptionError(f"WAL payload names unknown type code {code}") from None


def _decode_tablet(reader: _Reader) -> Iterator[SeriesChunk]:
    """One tablet's body as series chunks."""
    device = reader.name()
    rows, columns = reader.unpack(_TABLET_HEAD)
    timestamps = reader.array(_I64, rows).astype(np.int64)
    for _ in range(columns):
        measurement = reader.name()
        code, has_mask = reader.unpack(_COLUMN_HEAD)
        data_type = reader.data_type(code)
        if has_mask:
            packed = reader.array(np.dtype("u1"), (rows + 7) // 8)
            mask = np.unpackbits(packed, count=rows).astype(bool)
            column_ts = timestamps[mask]
        else:
            column_ts = timestamps
        yield SeriesChunk(device, measurement, data_type, column_ts, reader.values(data_type, len(column_ts)))


def decode(payload: bytes) -> Iterator[SeriesChunk]:
    """Yield a payload's points as series chunks (numpy arrays, native byte order)."""
    reader = _Reader(payload)
    (kind,) = reader.unpack(_U8)
    if kind == KIND_SERIES:
        (count,) = reader.unpack(_U32)
        for _ in range(count):
            device = reader.name()
            measurement = reader.name()
            code, points = reader.unpack(_CHUNK_HEAD)
            data_type = reader.data_type(code)
            timestamps = reader.array(_I64, points).astype(np.int64)
            yield SeriesChunk(device, measurement, data_type, timestamps, reader.values(data_type, points))
    elif kind == KIND_TABLET:
        yield from _decode_tablet(reader)
    elif kind == KIND_TABLETS:
        (count,) = reader.unpack(_U32)
        for _ in range(count):
            yield from _decode_tablet(reader)
    else:
        raise CorruptionError(f"WAL payload has unknown kind {kind}")
    if reader.pos != len(reader.data):
        raise CorruptionError(f"WAL payload has {len(reader.data) - reader.pos} unexpected trailing bytes")
