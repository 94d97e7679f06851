"""The storage engine: WAL, memtables, TsFiles, compaction and reads (see ``docs/storage.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iotdb_core.storage.errors import (
    CorruptionError,
    DataDirLockedError,
    EngineClosedError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidPathError,
    InvalidValueError,
    SchemaError,
    StorageError,
    WriteRejectedError,
)
from iotdb_core.storage.results import PointsSegment, Segment, SeriesResult, StatsSegment, WriteFailure, WriteResult
from iotdb_core.storage.schema import SeriesSchema

if TYPE_CHECKING:
    from iotdb_core.storage.engine import Engine

__all__ = [
    "CorruptionError",
    "DataDirLockedError",
    "Engine",
    "EngineClosedError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidPathError",
    "InvalidValueError",
    "PointsSegment",
    "SchemaError",
    "Segment",
    "SeriesResult",
    "SeriesSchema",
    "StatsSegment",
    "StorageError",
    "WriteFailure",
    "WriteRejectedError",
    "WriteResult",
]


def __getattr__(name: str) -> Any:
    """``Engine`` is imported on first use: the result and error types above do not need the engine."""
    if name == "Engine":
        from iotdb_core.storage.engine import Engine  # noqa: PLC0415

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
