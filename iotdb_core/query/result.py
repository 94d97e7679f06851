"""What ``execute`` returns: a column-oriented :class:`ResultSet` for SELECT, a small row-oriented
:class:`MetadataResult` for SHOW and COUNT, and an :class:`UpdateResult` for statements that change data
or schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.datatypes import TSDataType


class ResultSet:
    """A query result by column.

    ``timestamps`` is an int64 array with one entry per row, or None when the result has no Time column
    (an aggregation without GROUP BY). Value column ``i`` is named ``columns[i]``, typed ``data_types[i]``
    (None for a column that holds only nulls), and stored as ``values[i]`` — a numpy array of that type's
    dtype (bool, int32, int64, float32, float64; object holding ``str`` for TEXT) — with ``nulls[i]`` a
    boolean array marking null rows (None: no null in that column). Entries of ``values[i]`` at null rows
    are meaningless.
    """

    __slots__ = ("columns", "data_types", "nulls", "timestamps", "values")

    def __init__(
        self,
        columns: Sequence[str],
        data_types: Sequence[TSDataType | None],
        timestamps: np.ndarray | None,
        values: Sequence[np.ndarray],
        nulls: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        self.columns = list(columns)
        self.data_types = list(data_types)
        self.timestamps = timestamps
        self.values = list(values)
        self.nulls = list(nulls) if nulls is not None else [None] * len(self.values)
        if not len(self.columns) == len(self.data_types) == len(self.values) == len(self.nulls):
            raise ValueError("ResultSet: columns, data_types, values and nulls differ in length")

    @classmethod
    def empty(cls, with_time: bool = True) -> ResultSet:
        """A result with no value column and no row."""
        return cls([], [], np.empty(0, dtype=np.int64) if with_time else None, [], [])

    @property
    def has_time(self) -> bool:
        return self.timestamps is not None

    @property
    def header(self) -> list[str]:
        """Column names as IoTDB prints them: ``Time`` first when there is a time column."""
        return (["Time"] if self.timestamps is not None else []) + self.columns

    def __len__(self) -> int:
        if self.timestamps is not None:
            return len(self.timestamps)
        return len(self.values[0]) if self.values else 0

    def column(self, key: int | str) -> list[Any]:
        """One value column as Python values, None for nulls (by index or name; ``"Time"`` for times)."""
        if key == "Time" and self.timestamps is not None:
            return self.timestamps.tolist()
        index = key if isinstance(key, int) else self.columns.index(key)
        items = self.values[index].tolist()
        nulls = self.nulls[index]
        if nulls is not None:
            for position in np.flatnonzero(nulls).tolist():
                items[position] = None
        return items

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows as tuples of Python values (time first when there is a time column), None for nulls."""
        columns = [self.column(i) for i in range(len(self.columns))]
        if self.timestamps is not None:
            columns.insert(0, self.timestamps.tolist())
        return list(zip(*columns, strict=True)) if columns else []

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows())

    def to_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by :attr:`header`."""
        header = self.header
        return [dict(zip(header, row, strict=True)) for row in self.rows()]

    def __repr__(self) -> str:
        return f"ResultSet(header={self.header!r}, rows={len(self)})"


class MetadataResult:
    """The result of SHOW and COUNT statements: column names and rows of Python values (None for nulls)."""

    __slots__ = ("_rows", "columns")

    def __init__(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]] = ()) -> None:
        self.columns = list(columns)
        self._rows = [tuple(row) for row in rows]

    @property
    def header(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def column(self, key: int | str) -> list[Any]:
        index = key if isinstance(key, int) else self.columns.index(key)
        return [row[index] for row in self._rows]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self._rows]

    def __repr__(self) -> str:
        return f"MetadataResult(header={self.columns!r}, rows={len(self._rows)})"


@dataclass(frozen=True)
class UpdateResult:
    """The outcome of INSERT, CREATE, DELETE and TTL statements.

    ``count`` is what the statement affected — points written by INSERT, series created or deleted,
    databases created — or None when the storage engine does not report it (DELETE FROM, TTL).
    """

    statement: str
    count: int | None = None
    message: str = ""
