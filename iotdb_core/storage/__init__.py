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
from iotdb_core.storage.results import SeriesResult, WriteFailure, WriteResult
from iotdb_core.storage.schema import SeriesSchema

__all__ = [
    "CorruptionError",
    "DataDirLockedError",
    "Engine",
    "EngineClosedError",
    "SchemaError",
    "SeriesResult",
    "SeriesSchema",
    "StorageError",
    "WriteFailure",
    "WriteRejectedError",
    "WriteResult",
]
