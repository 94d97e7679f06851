"""IoTDB's ``TSStatus`` codes and the mapping of this project's exceptions onto them.

Codes are IoTDB's ``TSStatusCode`` values (see ``iotdb_core.query.errors`` for the statement codes), so the
``apache-iotdb`` client raises its usual ``StatementExecutionException("<code>: <message>")``.
"""

from __future__ import annotations

from iotdb.thrift.common.ttypes import TSStatus

from iotdb_core.query import QueryError
from iotdb_core.query.errors import METADATA_ERROR, SEMANTIC_ERROR, write_error_code
from iotdb_core.storage.results import WriteResult

SUCCESS_STATUS = 200
#: A session asked for a protocol or dialect this server does not speak (IoTDB's INCOMPATIBLE_VERSION).
INCOMPATIBLE_VERSION = 201
#: A call this server does not implement (IoTDB's UNSUPPORTED_OPERATION).
UNSUPPORTED_OPERATION = 300
#: A query id or statement the session does not hold, or a query sent as an update (EXECUTE_STATEMENT_ERROR).
EXECUTE_STATEMENT_ERROR = 301
#: A call that carries several statuses; they are in ``subStatus``.
MULTIPLE_ERROR = 302
#: A request whose buffers disagree with their counts or carry an unknown type code (ILLEGAL_PARAMETER).
ILLEGAL_PARAMETER = 303
INTERNAL_SERVER_ERROR = 305
WRONG_LOGIN_PASSWORD = 801
#: A call with a session id that is not open on this connection (IoTDB's NOT_LOGIN).
NOT_LOGIN = 802
#: Points listed in the message of a partly failed insert.
FAILED_POINTS_SHOWN = 10


class BadRequest(Exception):
    """A request that cannot be decoded as the protocol defines it; the message says what and where."""

    def __init__(self, message: str, code: int = ILLEGAL_PARAMETER) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status(code: int, message: str | None = None) -> TSStatus:
    """A ``TSStatus`` with ``code`` and ``message``."""
    return TSStatus(code=code, message=message)


def success() -> TSStatus:
    return TSStatus(code=SUCCESS_STATUS, message="Executed successfully.")


def from_exception(exc: Exception) -> TSStatus:
    """The status of a statement or write that raised ``exc``; anything unknown is re-raised."""
    if isinstance(exc, BadRequest):
        return status(exc.code, exc.message)
    if isinstance(exc, QueryError):
        return status(exc.code, exc.message)
    code = write_error_code(exc)
    if code is not None:
        return status(code, str(exc))
    if isinstance(exc, ValueError):
        return status(SEMANTIC_ERROR, str(exc))
    raise exc


def from_write(result: WriteResult, what: str) -> TSStatus:
    """Success, or 507 naming the points the engine did not write (the others are written and durable)."""
    if not result.failures:
        return success()
    failures = result.failures
    shown = "; ".join(
        f"{f.device}.{f.measurement} at {f.timestamp}: {f.reason}" for f in failures[:FAILED_POINTS_SHOWN]
    )
    more = f"; and {len(failures) - FAILED_POINTS_SHOWN} more" if len(failures) > FAILED_POINTS_SHOWN else ""
    return status(
        METADATA_ERROR,
        f"{what}: {len(failures)} value(s) not written ({result.points_written} written): {shown}{more}",
    )
