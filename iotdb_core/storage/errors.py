"""Errors the storage engine reports to its callers; each message names what failed and where."""

from __future__ import annotations

from iotdb_core.datatypes import ValueTypeError
from iotdb_core.errors import IoTDBError
from iotdb_core.paths import PathError


class StorageError(IoTDBError):
    """Base of the storage engine's errors."""


class DataDirLockedError(StorageError):
    """Another process (or another engine in this process) holds the data directory."""


class EngineClosedError(StorageError):
    """The engine was used after :meth:`Engine.close`."""


class WriteRejectedError(StorageError):
    """A write was refused as a whole (memory budget exceeded, or every point invalid with partial insert off)."""


class SchemaError(StorageError):
    """A database or series cannot be created or used as asked (already exists, nested database, unknown)."""


class CorruptionError(StorageError):
    """A durable file (manifest, schema log, WAL) is damaged in a way recovery cannot repair by itself."""


class InvalidArgumentError(StorageError, ValueError):
    """A call was malformed as a whole (an argument of the wrong type or length); the message names the argument.

    Also a ValueError, which is what such a call raised before this class existed.
    """


class InvalidPathError(InvalidArgumentError, PathError):
    """A path or path pattern the engine cannot use (also a PathError: SQL reports it as illegal path, 509)."""


class InvalidValueError(InvalidArgumentError, ValueTypeError):
    """A value that does not fit the type asked for (also a ValueTypeError)."""


class InvalidArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type (also a TypeError, which is what such a call raised before)."""


class ReadOnlyError(StorageError):
    """The engine refuses writes for now: a WAL or TsFile directory cannot be written (nothing was acknowledged).

    It returns to normal by itself once a probe write succeeds (or on :meth:`Engine.resume`). MQTT should
    answer with reason code 0x97 (quota exceeded) for :class:`StorageFullError` and 0x80 otherwise; REST
    answers HTTP 503.
    """


class StorageFullError(ReadOnlyError):
    """The disk holding the WAL or the TsFiles is full (ENOSPC or a quota)."""
