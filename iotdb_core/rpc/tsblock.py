"""Query results as IoTDB TsBlocks, the binary pages ``executeQueryStatementV2`` and ``fetchResultsV2`` return.

Layout (read by the client's ``iotdb/tsfile/utils/tsblock_serde.py``)::

    int32 value-column count | one type byte per column | int32 row count | (columns + 1) encoding bytes
    | time column | value columns

A column is a may-have-null byte, when set a packed null bitmap (most significant bit first, 1 = null), then
the values of the non-null rows: int32 array (INT32, FLOAT), int64 array (INT64, DOUBLE, the time column),
binary array (TEXT: int32 length + UTF-8 per value). BOOLEAN is a byte-array column: one packed bit per row,
nulls included. Columns are converted with numpy (``astype`` to big-endian, ``tobytes``).

:class:`ResultPages` holds one statement's result and cuts it into pages of ``fetch_size`` rows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.query import MetadataResult, ResultSet
from iotdb_core.rpc.values import type_code

__all__ = ["Column", "ResultPages", "encode_block", "pages_of"]

_ENCODING = {
    TSDataType.BOOLEAN: 0, TSDataType.INT32: 1, TSDataType.FLOAT: 1, TSDataType.INT64: 2,
    TSDataType.DOUBLE: 2, TSDataType.TEXT: 3,
}
_WIRE_DTYPE = {TSDataType.INT32: ">i4", TSDataType.FLOAT: ">f4", TSDataType.INT64: ">i8", TSDataType.DOUBLE: ">f8"}
_HEADER = struct.Struct(">i")
_TIME_ENCODING = 2


@dataclass(frozen=True, slots=True)
class Column:
    """One result column: its type (TEXT for a column of nulls only), values and null mask (None: no null)."""

    data_type: TSDataType
    values: np.ndarray
    nulls: np.ndarray | None


def _encode_column(column: Column, start: int, stop: int) -> bytes:
    values = column.values[start:stop]
    nulls = None if column.nulls is None else column.nulls[start:stop]
    parts: list[bytes] = []
    if nulls is not None and nulls.any():
        parts.append(b"\x01")
        parts.append(np.packbits(nulls).tobytes())
        present = values if column.data_type is TSDataType.BOOLEAN else values[~nulls]
    else:
        parts.append(b"\x00")
        present = values
    data_type = column.data_type
    if data_type is TSDataType.BOOLEAN:
        parts.append(np.packbits(present.astype(bool)).tobytes())
    elif data_type is TSDataType.TEXT:
        for item in present.tolist():
            data = str(item).encode("utf-8")
            parts.append(_HEADER.pack(len(data)))
            parts.append(data)
    else:
        parts.append(present.astype(_WIRE_DTYPE[data_type], copy=False).tobytes())
    return b"".join(parts)


def encode_block(timestamps: np.ndarray, columns: list[Column], start: int, stop: int) -> bytes:
    """Rows ``start:stop`` of the columns as one TsBlock."""
    rows = stop - start
    header = [
        _HEADER.pack(len(columns)),
        bytes(type_code(column.data_type) for column in columns),
        _HEADER.pack(rows),
        bytes([_TIME_ENCODING, *(_ENCODING[column.data_type] for column in columns)]),
        b"\x00",
        timestamps[start:stop].astype(">i8", copy=False).tobytes(),
    ]
    return b"".join(header + [_encode_column(column, start, stop) for column in columns])


class ResultPages:
    """A statement's result as named, typed columns, handed out ``fetch_size`` rows at a time."""

    def __init__(
        self, names: list[str], columns: list[Column], timestamps: np.ndarray | None, rows: int
    ) -> None:
        self.names = names
        self.columns = columns
        self.ignore_timestamp = timestamps is None
        self.timestamps = timestamps if timestamps is not None else np.zeros(rows, dtype=np.int64)
        self.rows = rows
        self.position = 0

    @property
    def type_names(self) -> list[str]:
        """IoTDB's type names of the columns (``dataTypeList``)."""
        return [column.data_type.value for column in self.columns]

    @property
    def more(self) -> bool:
        return self.position < self.rows

    def next_page(self, fetch_size: int) -> list[bytes]:
        """The next TsBlock (an empty list once every row was handed out)."""
        if not self.more:
            return []
        stop = min(self.rows, self.position + max(1, fetch_size))
        block = encode_block(self.timestamps, self.columns, self.position, stop)
        self.position = stop
        return [block]


def _metadata_column(values: list[Any]) -> Column:
    present = [value for value in values if value is not None]
    nulls = np.array([value is None for value in values], dtype=bool) if len(present) != len(values) else None
    if present and all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in present):
        return Column(TSDataType.INT64, np.array([0 if v is None else int(v) for v in values], np.int64), nulls)
    text = np.array(["" if value is None else _text(value) for value in values], dtype=object)
    return Column(TSDataType.TEXT, text, nulls)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pages_of(result: ResultSet | MetadataResult) -> ResultPages:
    """The pages of a SELECT result (typed columns) or a SHOW/COUNT result (INT64 or TEXT columns)."""
    if isinstance(result, MetadataResult):
        rows = result.rows()
        by_column = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in result.columns]
        return ResultPages(list(result.columns), [_metadata_column(c) for c in by_column], None, len(rows))
    columns = []
    count = len(result)
    for values, nulls, data_type in zip(result.values, result.nulls, result.data_types, strict=True):
        if data_type is None:
            columns.append(Column(TSDataType.TEXT, np.full(count, "", dtype=object), np.ones(count, dtype=bool)))
        else:
            columns.append(Column(data_type, values, nulls))
    return ResultPages(list(result.columns), columns, result.timestamps, count)
