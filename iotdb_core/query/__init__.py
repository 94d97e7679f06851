"""The SQL query layer: IoTDB's tree-model dialect over the storage engine (see ``docs/sql.md``).

``execute(engine, sql)`` runs one statement and returns a :class:`ResultSet` (SELECT), a
:class:`MetadataResult` (SHOW, COUNT) or an :class:`UpdateResult` (INSERT, CREATE, DELETE, TTL);
``parse(sql)`` returns the statement's AST (:mod:`iotdb_core.query.ast`). Every error is a
:class:`QueryError` carrying an IoTDB status code.
"""

from iotdb_core.query import ast
from iotdb_core.query.errors import ParseError, QueryError, RowLimitExceededError, SemanticError
from iotdb_core.query.executor import execute
from iotdb_core.query.parser import parse
from iotdb_core.query.pushdown import ExecutionStats
from iotdb_core.query.result import MetadataResult, ResultSet, UpdateResult

__all__ = [
    "ExecutionStats",
    "MetadataResult",
    "ParseError",
    "QueryError",
    "ResultSet",
    "RowLimitExceededError",
    "SemanticError",
    "UpdateResult",
    "ast",
    "execute",
    "parse",
]
