"""The query layer's one error family: :class:`QueryError` with an IoTDB status code.

Codes are IoTDB's ``TSStatusCode`` values, so a client that knows IoTDB can act on them:

====  ======================  ===================================================================
code  name                    raised for
====  ======================  ===================================================================
501   DATABASE_ALREADY_EXISTS ``CREATE DATABASE`` of an existing database
503   TIMESERIES_ALREADY_EXIST ``CREATE TIMESERIES`` of an existing series
507   METADATA_ERROR          a schema operation the storage engine refused; a value that does not
                              fit its series on ``INSERT``
508   PATH_NOT_EXIST          ``DELETE TIMESERIES`` of a pattern that matches no series
509   ILLEGAL_PATH            a path IoTDB would reject (bad node, no ``root``, misplaced wildcard)
601   STORAGE_ENGINE_ERROR    the storage engine failed (closed, I/O)
606   WRITE_PROCESS_REJECT    the storage engine rejected a write (memory budget)
700   SQL_PARSE_ERROR         text that is not a statement of the grammar
701   SEMANTIC_ERROR          a well-formed statement that cannot be executed as written
708   QUERY_PROCESS_ERROR     a result larger than the caller's ``row_limit``
====  ======================  ===================================================================
"""

from __future__ import annotations

from iotdb_core.errors import IoTDBError

DATABASE_ALREADY_EXISTS = 501
TIMESERIES_ALREADY_EXIST = 503
METADATA_ERROR = 507
PATH_NOT_EXIST = 508
ILLEGAL_PATH = 509
STORAGE_ENGINE_ERROR = 601
WRITE_PROCESS_REJECT = 606
SQL_PARSE_ERROR = 700
SEMANTIC_ERROR = 701
QUERY_PROCESS_ERROR = 708


class QueryError(IoTDBError):
    """A statement failed; ``code`` is IoTDB's status code and ``message`` says what and where."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return (QueryError, (self.code, self.message))


class ParseError(QueryError):
    """The text is not a statement of the grammar (700); ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None and column is not None else ""
        super().__init__(SQL_PARSE_ERROR, where + message)
        self.line = line
        self.column = column


class SemanticError(QueryError):
    """A well-formed statement that cannot be executed as written (701)."""

    def __init__(self, message: str) -> None:
        super().__init__(SEMANTIC_ERROR, message)


class RowLimitExceededError(QueryError):
    """The result has more rows than the caller's ``row_limit`` (708, as IoTDB's REST service reports it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(QUERY_PROCESS_ERROR, f"Dataset row size exceeded the given max row size ({limit})")
        self.limit = limit

    def __reduce__(self) -> tuple[type, tuple[int]]:  # type: ignore[override]
        return (RowLimitExceededError, (self.limit,))


def write_error_code(exc: BaseException) -> int | None:
    """IoTDB's status code for an exception the storage engine raised on a write (None: not a client-facing
    error, let it propagate). The services' shared rule: 606 rejected (memory), 507 schema, 509 path, 601 other
    storage failures."""
    from iotdb_core.paths import PathError  # noqa: PLC0415 - the query layer's errors import nothing else at load
    from iotdb_core.storage.errors import SchemaError, StorageError, WriteRejectedError  # noqa: PLC0415

    if isinstance(exc, WriteRejectedError):
        return WRITE_PROCESS_REJECT
    if isinstance(exc, SchemaError):
        return METADATA_ERROR
    if isinstance(exc, PathError):
        return ILLEGAL_PATH
    if isinstance(exc, (StorageError, IoTDBError)):
        return STORAGE_ENGINE_ERROR
    return None
