"""The SQL page's statement runner: any statement, with the parser's line and column on a syntax error.

Queries answer in the REST API v2 shape (:func:`iotdb_core.rest.convert.result_body`), with ``kind: "query"``;
other statements answer ``kind: "update"`` with what they changed. Errors are ``{"code", "message"}`` with IoTDB's
codes, plus ``line`` and ``column`` for a parse error. Statements run as the logged-in user (``session``), with the
privilege checks of every other surface (803 when a privilege is missing).
"""

from __future__ import annotations

from typing import Any

from iotdb_core.auth import Session
from iotdb_core.config import Settings
from iotdb_core.query import MetadataResult, ParseError, QueryError, ResultSet, UpdateResult, execute, parse
from iotdb_core.rest.convert import result_body

__all__ = ["run_sql"]


def run_sql(engine: Any, settings: Settings, sql: str, row_limit: int, session: Session) -> dict[str, Any]:
    """Run one statement as ``session.user``; the answer body (never raises for a statement's own error)."""
    try:
        statement = parse(sql)
        outcome = execute(engine, statement, settings=settings, row_limit=row_limit, session=session)
    except ParseError as exc:
        return {"code": exc.code, "message": exc.message, "line": exc.line, "column": exc.column}
    except QueryError as exc:
        return {"code": exc.code, "message": exc.message}
    if isinstance(outcome, ResultSet | MetadataResult):
        return {"code": 200, "kind": "query", "rows": len(outcome), **result_body(statement, outcome)}
    assert isinstance(outcome, UpdateResult)
    return {"code": 200, "kind": "update", "statement": outcome.statement, "count": outcome.count,
            "message": outcome.message or "SUCCESS_STATUS"}
