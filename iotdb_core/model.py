"""The data model shared by every layer: rows, tablets, values, what a flush wrote, a backend's health.

Neutral ground: it imports only :mod:`iotdb_core.datatypes`, so the storage engine, the formatter SPI,
the hook specifications and the services can all use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from iotdb_core.datatypes import TSDataType

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FlushInfo", "Health", "Row", "Tablet", "Value"]

Value = bool | int | float | str


class Row(NamedTuple):
    """One device's values at one timestamp.

    ``types`` is ``None`` when the payload said nothing about types (the engine then uses the
    series' schema or infers a type), otherwise one entry per measurement, ``None`` meaning
    "infer this one". A ``None`` value means "no value for that measurement" and is skipped.
    A named tuple rather than a dataclass: formatters build one per row on the ingest hot path,
    and a tuple is several times cheaper to create. Use ``row._replace(values=...)`` to derive one.
    """

    device: str
    timestamp: int
    measurements: tuple[str, ...]
    values: tuple[Value | None, ...]
    types: tuple[TSDataType | None, ...] | None = None


def _frozen(value: Any) -> Any:
    """A list as a tuple; anything else as given (the engine refuses what is not a sequence)."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class Tablet:
    """One device's rows given column by column: the unit of a batched write (``Engine.write_tablets``).

    ``timestamps`` holds one int64 time per row (a numpy integer array or a sequence of ints);
    ``columns`` holds one column per entry of ``measurements``, each with one entry per row (a numpy array
    of the type's dtype, or a sequence of values where ``None`` is "no value"). ``types`` is ``None`` (the
    series' schema or type inference decides) or one :class:`TSDataType`, IoTDB type name (``"DOUBLE"``) or
    ``None`` per measurement. ``nulls`` is ``None`` or one entry per column: ``None`` (every row has a value)
    or a boolean array (or sequence) with one entry per row, true where the row has no value, as IoTDB's tablet bitmaps
    say; the column's entry at such a row is ignored.

    Immutable: lists given for ``measurements``, ``columns``, ``types`` and ``nulls`` are kept as tuples.
    Arrays are not copied, so do not change them while a write that was given them runs. Shapes are not
    checked here: the engine refuses a tablet whose lengths disagree, naming it and the field.
    """

    device: str
    timestamps: np.ndarray | Sequence[int]
    measurements: Sequence[str]
    columns: Sequence[np.ndarray | Sequence[Any]]
    types: Sequence[TSDataType | str | None] | None = None
    nulls: Sequence[np.ndarray | Sequence[bool] | None] | None = None

    def __post_init__(self) -> None:
        for name in ("measurements", "columns", "types", "nulls"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))


@dataclass(frozen=True, slots=True)
class FlushInfo:
    """What one memtable flush wrote."""

    path: Path
    series_count: int
    point_count: int
    file_size: int


@dataclass(frozen=True, slots=True)
class Health:
    """Whether a storage backend accepts writes now.

    ``writable`` is False while it is read-only (a full disk, an unwritable WAL or TsFile directory);
    ``reason`` then says why, in a line fit for ``/ping`` and the log.
    """

    writable: bool = True
    reason: str = ""
