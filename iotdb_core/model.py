"""The data model shared by every layer: rows, values, what a flush wrote, a backend's health.

Neutral ground: it imports only :mod:`iotdb_core.datatypes`, so the storage engine, the formatter SPI,
the hook specifications and the services can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from iotdb_core.datatypes import TSDataType

__all__ = ["FlushInfo", "Health", "Row", "Value"]

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
