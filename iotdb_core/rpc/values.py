"""Decoding the value buffers of IoTDB's insert requests: tablets (column-major) and records (typed values).

``insertTablet`` carries ``timestamps`` as ``size`` big-endian int64 and ``values`` column by column:
BOOLEAN one byte, INT32 int32, INT64 int64, FLOAT float32, DOUBLE float64, TEXT/STRING an int32 length and
the UTF-8 bytes per row. When a value is null, every column is followed (after the last column) by one
has-bitmap byte and, when set, ``size // 8 + 1`` bitmap bytes in which bit ``row % 8`` of byte ``row // 8``
marks a null. Fixed-width columns are decoded with numpy (one ``frombuffer`` per column), so a tablet of a
hundred thousand points costs no per-point Python work.

``insertRecord`` carries per value a one-byte type code then the big-endian value.

Every length is checked against the buffer: a buffer that is too short, has bytes left over, or names a type
code this server does not know raises :class:`~iotdb_core.rpc.status.BadRequest` saying which column or
value and what was expected, before anything is written.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.rpc.status import BadRequest

__all__ = ["DecodedTablet", "data_type_of", "decode_record", "decode_tablet", "type_code"]

#: IoTDB's wire type codes this server stores (STRING is stored as TEXT).
_CODES: dict[int, TSDataType] = {
    0: TSDataType.BOOLEAN, 1: TSDataType.INT32, 2: TSDataType.INT64, 3: TSDataType.FLOAT,
    4: TSDataType.DOUBLE, 5: TSDataType.TEXT, 11: TSDataType.TEXT,
}
#: Codes IoTDB defines but this server has no series type for.
_UNSUPPORTED = {8: "TIMESTAMP", 9: "DATE", 10: "BLOB"}
_WIRE_CODES = {data_type: code for code, data_type in _CODES.items() if code != 11}
_FIXED: dict[TSDataType, tuple[str, np.dtype[Any]]] = {
    TSDataType.BOOLEAN: (">?", np.dtype(np.bool_)),
    TSDataType.INT32: (">i4", np.dtype(np.int32)),
    TSDataType.INT64: (">i8", np.dtype(np.int64)),
    TSDataType.FLOAT: (">f4", np.dtype(np.float32)),
    TSDataType.DOUBLE: (">f8", np.dtype(np.float64)),
}
#: Java's ``TYPE_NULL`` in a record's value buffer: the measurement has no value.
_TYPE_NULL = 0xFE
_INT32 = struct.Struct(">i")
_RECORD_VALUE = {
    TSDataType.BOOLEAN: struct.Struct(">?"), TSDataType.INT32: struct.Struct(">i"),
    TSDataType.INT64: struct.Struct(">q"), TSDataType.FLOAT: struct.Struct(">f"),
    TSDataType.DOUBLE: struct.Struct(">d"),
}


def data_type_of(code: int, where: str) -> TSDataType:
    """The series type of wire type ``code``; BadRequest naming ``where`` for codes this server cannot store."""
    data_type = _CODES.get(code)
    if data_type is not None:
        return data_type
    if code in _UNSUPPORTED:
        raise BadRequest(
            f"{where}: type {_UNSUPPORTED[code]} ({code}) is not supported by this server "
            "(BOOLEAN, INT32, INT64, FLOAT, DOUBLE, TEXT and STRING are)"
        )
    raise BadRequest(f"{where}: type code {code} is out of range (IoTDB's codes are 0-5 and 8-11)")


def type_code(data_type: TSDataType) -> int:
    """The wire code of a series type (TEXT is 5)."""
    return _WIRE_CODES[data_type]


@dataclass(frozen=True, slots=True)
class DecodedTablet:
    """A tablet's int64 timestamps and one column per measurement (numpy, or a list with None for nulls).

    ``arrays`` and ``nulls`` are the same columns as decoded (numpy for fixed-width types, whatever the
    bitmap says) with one null mask per column (None: no null), for ``Engine.write_tablets``.
    """

    timestamps: np.ndarray
    columns: list[Any]
    types: list[TSDataType]
    arrays: list[Any]
    nulls: list[np.ndarray | None]


def decode_tablet(
    where: str, measurements: list[str], types: list[int], size: int, timestamps: bytes, values: bytes
) -> DecodedTablet:
    """Decode an ``insertTablet`` request's buffers; ``where`` names the tablet in error messages."""
    if size < 0:
        raise BadRequest(f"{where}: size {size} is negative")
    if len(types) != len(measurements):
        raise BadRequest(f"{where}: {len(measurements)} measurements but {len(types)} types")
    if len(timestamps) != 8 * size:
        raise BadRequest(f"{where}: timestamps hold {len(timestamps)} bytes; size {size} needs {8 * size}")
    data_types = [
        data_type_of(code, f"{where} column {name!r}") for code, name in zip(types, measurements, strict=True)
    ]
    stamps = np.frombuffer(timestamps, dtype=">i8", count=size).astype(np.int64)
    view = memoryview(values)
    offset = 0
    raw: list[Any] = []
    for name, data_type in zip(measurements, data_types, strict=True):
        if data_type is TSDataType.TEXT:
            column, offset = _text_column(view, offset, size, f"{where} column {name!r}")
            raw.append(column)
            continue
        wire, native = _FIXED[data_type]
        width = np.dtype(wire).itemsize
        end = offset + width * size
        if end > len(view):
            raise BadRequest(
                f"{where} column {name!r}: {data_type.value} needs {width * size} bytes for {size} rows, "
                f"{len(view) - offset} remain in the values buffer"
            )
        raw.append(np.frombuffer(view, dtype=wire, count=size, offset=offset).astype(native))
        offset = end
    nulls = [None if mask is None or not mask.any() else mask
             for mask in _bitmaps(view, offset, size, measurements, where)]
    columns: list[Any] = []
    for column, mask in zip(raw, nulls, strict=True):
        if mask is None:
            columns.append(column)
            continue
        items = column.tolist() if isinstance(column, np.ndarray) else list(column)
        for row in np.flatnonzero(mask).tolist():
            items[row] = None
        columns.append(items)
    return DecodedTablet(stamps, columns, data_types, raw, nulls)


def _text_column(view: memoryview, offset: int, size: int, where: str) -> tuple[list[Any], int]:
    out: list[Any] = []
    end = len(view)
    unpack = _INT32.unpack_from
    for row in range(size):
        if offset + 4 > end:
            raise BadRequest(f"{where}: the values buffer ends before the length of row {row} of {size}")
        (length,) = unpack(view, offset)
        offset += 4
        if length < 0 or offset + length > end:
            raise BadRequest(
                f"{where}: row {row} has length {length} but {end - offset} bytes remain in the values buffer"
            )
        out.append(_utf8(view[offset:offset + length], f"{where} row {row}"))
        offset += length
    return out, offset


def _utf8(data: memoryview, where: str) -> str:
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{where}: the text is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _bitmaps(
    view: memoryview, offset: int, size: int, measurements: list[str], where: str
) -> list[np.ndarray | None]:
    """Null masks after the columns (none when the buffer ends with the last column)."""
    if offset == len(view):
        return [None] * len(measurements)
    width = size // 8 + 1
    masks: list[np.ndarray | None] = []
    for name in measurements:
        if offset >= len(view):
            raise BadRequest(f"{where} column {name!r}: the values buffer ends before its has-bitmap byte")
        flag = view[offset]
        offset += 1
        if not flag:
            masks.append(None)
            continue
        if offset + width > len(view):
            raise BadRequest(
                f"{where} column {name!r}: the null bitmap needs {width} bytes for {size} rows, "
                f"{len(view) - offset} remain"
            )
        bits = np.frombuffer(view, dtype=np.uint8, count=width, offset=offset)
        masks.append(np.unpackbits(bits, bitorder="little")[:size].astype(bool))
        offset += width
    if offset != len(view):
        raise BadRequest(f"{where}: {len(view) - offset} byte(s) left over after the columns and bitmaps")
    return masks


@dataclass(frozen=True, slots=True)
class _Layout:
    """The layout of a record buffer holding only fixed-width values: where its type codes are, and which."""

    codes_at: Callable[[bytes], tuple[int, ...]]
    codes: tuple[int, ...]
    values: struct.Struct
    kinds: tuple[TSDataType, ...]


#: Layouts seen, by (value count, buffer length, first type code); a client sending records of one shape
#: (the usual case) has each decoded by one ``struct.unpack`` after a check of its type codes.
_LAYOUTS: dict[tuple[int, int, int], _Layout] = {}
_LAYOUTS_KEPT = 256
_FORMAT = {TSDataType.BOOLEAN: "?", TSDataType.INT32: "i", TSDataType.INT64: "q", TSDataType.FLOAT: "f",
           TSDataType.DOUBLE: "d"}


def decode_record(where: str, count: int, values: bytes) -> tuple[list[Any], list[TSDataType | None]]:
    """Decode an ``insertRecord`` value buffer of ``count`` typed values (None for Java's TYPE_NULL)."""
    key = (count, len(values), values[0] if values else -1)
    layout = _LAYOUTS.get(key)
    if layout is not None and count > 0 and layout.codes_at(values) == layout.codes:
        return list(layout.values.unpack(values)), list(layout.kinds)
    decoded, kinds = _decode_record(where, count, values)
    if count > 0 and len(_LAYOUTS) < _LAYOUTS_KEPT and all(
        kind is not None and kind is not TSDataType.TEXT for kind in kinds
    ):
        _LAYOUTS[key] = _layout(values, kinds)  # type: ignore[arg-type]
    return decoded, kinds


def _layout(values: bytes, kinds: list[TSDataType]) -> _Layout:
    positions: list[int] = []
    offset = 0
    for kind in kinds:
        positions.append(offset)
        offset += 1 + _RECORD_VALUE[kind].size
    getter = operator.itemgetter(*positions)
    codes_at: Callable[[bytes], tuple[int, ...]] = (
        getter if len(positions) > 1 else lambda buffer: (getter(buffer),))
    fmt = ">" + "".join("x" + _FORMAT[kind] for kind in kinds)
    return _Layout(codes_at, codes_at(values), struct.Struct(fmt), tuple(kinds))


def _decode_record(where: str, count: int, values: bytes) -> tuple[list[Any], list[TSDataType | None]]:
    view = memoryview(values)
    offset = 0
    out: list[Any] = []
    kinds: list[TSDataType | None] = []
    end = len(view)
    for index in range(count):
        if offset >= end:
            raise BadRequest(f"{where}: the values buffer ends before value {index} of {count}")
        code = view[offset]
        offset += 1
        if code == _TYPE_NULL:
            out.append(None)
            kinds.append(None)
            continue
        data_type = data_type_of(code, f"{where} value {index}")
        if data_type is TSDataType.TEXT:
            if offset + 4 > end:
                raise BadRequest(f"{where} value {index}: the values buffer ends before the text length")
            (length,) = _INT32.unpack_from(view, offset)
            offset += 4
            if length < 0 or offset + length > end:
                raise BadRequest(f"{where} value {index}: text length {length} but {end - offset} bytes remain")
            out.append(_utf8(view[offset:offset + length], f"{where} value {index}"))
            offset += length
        else:
            layout = _RECORD_VALUE[data_type]
            if offset + layout.size > end:
                raise BadRequest(
                    f"{where} value {index}: {data_type.value} needs {layout.size} bytes, {end - offset} remain"
                )
            (value,) = layout.unpack_from(view, offset)
            offset += layout.size
            out.append(value)
        kinds.append(data_type)
    if offset != end:
        raise BadRequest(f"{where}: {end - offset} byte(s) left over after {count} values")
    return out, kinds
