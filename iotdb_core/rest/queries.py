"""Running one query statement for a REST endpoint: parse, refuse what is not a query, execute, time it.

Every query endpoint (``/rest/v1/query``, ``/rest/v2/query``, ``/grafana/v*/query/expression`` and
``variable``) goes through :func:`run_query`, so they share the statement kinds they accept, IoTDB's status
codes and the latency histogram (``query_duration_seconds`` with ``surface="rest"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from iotdb_core.config import Settings
from iotdb_core.metrics import QUERY_DURATION, ServiceCounters
from iotdb_core.query import MetadataResult, QueryError, ResultSet, RowLimitExceededError, ast, execute, parse

if TYPE_CHECKING:
    from iotdb_core.auth import Session

__all__ = ["EXECUTE_STATEMENT_ERROR", "QUERY_STATEMENTS", "QueryOutcome", "StatementFailure", "run_query"]

#: A query sent to a write endpoint or a write sent to a query endpoint (IoTDB's EXECUTE_STATEMENT_ERROR).
EXECUTE_STATEMENT_ERROR = 301

#: The statements the query endpoints run; everything else belongs to ``nonQuery``.
QUERY_STATEMENTS = (
    ast.Select,
    ast.ShowDatabases,
    ast.ShowDevices,
    ast.ShowTimeseries,
    ast.CountTimeseries,
    ast.CountDevices,
    *ast.SECURITY_QUERIES,
)


class StatementFailure(Exception):
    """The statement did not run; ``code`` and ``message`` are IoTDB's status (answered with HTTP 200)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QueryOutcome:
    """A parsed query statement and its result."""

    statement: ast.Statement
    result: ResultSet | MetadataResult


def run_query(
    engine: Any,
    settings: Settings,
    sql: str | ast.Statement,
    limit: int,
    counters: ServiceCounters | None = None,
    *,
    endpoint: str = "/rest/v2/query",
    non_query_endpoint: str = "/rest/v2/nonQuery",
    session: Session | None = None,
) -> QueryOutcome:
    """Run ``sql`` (text or an already built statement) with ``limit`` rows at most.

    Raises :class:`StatementFailure`: the SQL does not parse (700), cannot run (701, 508, ...), is not a
    query (301, naming ``endpoint`` and ``non_query_endpoint``) or has more than ``limit`` rows (708).
    The time taken, failures included, is recorded in ``counters``' query latency histogram.
    """
    started = time.perf_counter()
    try:
        statement = parse(sql) if isinstance(sql, str) else sql
        if not isinstance(statement, QUERY_STATEMENTS):
            raise StatementFailure(
                EXECUTE_STATEMENT_ERROR,
                f"EXECUTE_STATEMENT_ERROR: {endpoint} runs SELECT, SHOW and COUNT statements; "
                f"send other statements to {non_query_endpoint}",
            )
        result = execute(engine, statement, settings=settings, row_limit=limit, session=session)
    except RowLimitExceededError as exc:
        raise StatementFailure(exc.code, exc.message) from None
    except QueryError as exc:
        raise StatementFailure(exc.code, exc.message) from None
    finally:
        if counters is not None:
            counters.histogram(QUERY_DURATION).observe(time.perf_counter() - started, "rest")
    assert isinstance(result, (ResultSet, MetadataResult))
    return QueryOutcome(statement, result)
