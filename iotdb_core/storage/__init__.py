"""The storage engine: WAL, memtables, TsFiles, compaction and reads (see ``docs/storage.md``)."""

from iotdb_core.storage.engine import Engine
from iotdb_core.storage.errors import (
    CorruptionError,
    DataDirLockedError,
    EngineClosedError,
    SchemaError,
    StorageError,
    WriteRejectedError,
)
from iotdb_core.storage.results import PointsSegment, Segment, SeriesResult, StatsSegment, WriteFailure, WriteResult
from iotdb_core.storage.schema import SeriesSchema

__all__ = [
    "CorruptionError",
    "DataDirLockedError",
    "Engine",
    "EngineClosedError",
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
