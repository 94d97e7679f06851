"""The endpoints of IoTDB's Grafana data source: ``/grafana/v1/...`` and their ``/grafana/v2/...`` twins.

Shapes follow IoTDB's ``iotdb_rest_v1.yaml`` and ``iotdb_rest_v2.yaml`` (``GrafanaApiServiceImpl``), and what
the Grafana plugin (apache/iotdb-extras ``connectors/grafana-plugin``, ``pkg/plugin/plugin.go`` and
``iotdb_resource_handler.go``) sends and parses:

``GET login``
    the health check of the data-source page: ``{"code": 200, "message": "SUCCESS_STATUS"}`` for good Basic
    credentials (wrong ones are the usual 401 with code 600).
``POST query/expression``
    ``{"expression": [...], "prefixPath": [...], "startTime": ms, "endTime": ms, "condition"?, "control"?}``
    (v2: ``prefix_path``, ``start_time``, ``end_time``) runs ``SELECT <expression,...> FROM <prefixPath,...>
    WHERE time >= start AND time <= end [AND (<condition>)] [<control>]``; ``control`` holds ``GROUP BY``,
    ``FILL``, ``LIMIT``... The times are Grafana's milliseconds, converted to ``timestamp_precision``, and the
    answer's ``timestamps`` are milliseconds again. The answer is the query result without ``code`` (the
    plugin treats any ``code`` above 0 as an error): v1 ``{"expressions", "columnNames", "timestamps",
    "values"}``, v2 with ``column_names``.
``POST variable``
    ``{"sql": "..."}``, a SHOW or SELECT statement (also ``SHOW CHILD PATHS|NODES <path>``), answered with a
    JSON array of text: the first column of the result (child paths as their last node, as IoTDB does).
``POST node``
    a JSON array of path nodes, ``["root", "sg"]`` (``*`` and ``**`` allowed), answered with the names of the
    child nodes, ``["d1", "d2"]``; ``[]`` answers ``["root"]``.

Every endpoint answers as the authenticated user: queries through :func:`run_query` with the user's session
(READ_DATA, as SQL), and the series tree of ``node`` and ``SHOW CHILD PATHS|NODES`` from only the series the
user's READ_SCHEMA covers (as IoTDB's SHOW CHILD PATHS, silently).

Errors are IoTDB statuses: HTTP 200 ``{"code": 700, ...}`` for SQL that does not parse, 301 for a statement of
the wrong kind, 509 for an illegal path; bodies that are not what the endpoint takes are HTTP 400 (701).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from iotdb_core.authz import Privilege
from iotdb_core.paths import PathError, join_path, split_path
from iotdb_core.query import MetadataResult, ResultSet
from iotdb_core.query.errors import ILLEGAL_PATH
from iotdb_core.rest.convert import SUCCESS_STATUS, dumps, result_body
from iotdb_core.rest.payloads import (
    V1_EXPRESSION,
    V2_EXPRESSION,
    ExpressionFields,
    ExpressionRequest,
    expression_request,
    node_request,
    parse_json_value,
    sql_request,
)
from iotdb_core.rest.queries import StatementFailure, run_query
from iotdb_core.rest.replies import Reply, status

if TYPE_CHECKING:
    from iotdb_core.rest.app import RestService

__all__ = ["GrafanaRoutes", "build_expression_sql", "child_paths"]

#: Timestamps per millisecond for each ``timestamp_precision``.
_PER_MILLISECOND = {"ms": 1, "us": 1000, "ns": 1_000_000}
#: ``SHOW CHILD PATHS root.sg`` / ``SHOW CHILD NODES root.sg`` (the grammar of docs/sql.md has neither).
_SHOW_CHILD = re.compile(r"\s*show\s+child\s+(paths|nodes)(?:\s+(\S+))?\s*;?\s*", re.IGNORECASE)


def build_expression_sql(request: ExpressionRequest, per_millisecond: int) -> str:
    """The SELECT statement of a Grafana expression request, as IoTDB's ``GrafanaApiServiceImpl`` builds it
    (the condition in parentheses, so an ``OR`` in it cannot escape the time range)."""
    start = int(request.start_time * per_millisecond)
    end = int(request.end_time * per_millisecond)
    sql = (
        f"SELECT {', '.join(request.expression)} FROM {', '.join(request.prefix_path)} "
        f"WHERE time >= {start} AND time <= {end}"
    )
    if request.condition:
        sql += f" AND ({request.condition})"
    if request.control:
        sql += f" {request.control}"
    return sql


def _matches_prefix(pattern: tuple[str, ...], nodes: tuple[str, ...]) -> bool:
    """Whether ``pattern`` (``*`` one node, ``**`` one or more) matches the whole of ``nodes``."""
    if not pattern:
        return not nodes
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches_prefix(rest, nodes[cut:]) for cut in range(1, len(nodes) + 1))
    return bool(nodes) and (head in ("*", nodes[0])) and _matches_prefix(rest, nodes[1:])


def child_paths(engine: Any, pattern_nodes: tuple[str, ...], visible: Callable[[str], bool]) -> list[str]:
    """Every path one level below a path matching ``pattern_nodes``, sorted (IoTDB's SHOW CHILD PATHS), from
    the series ``visible`` accepts."""
    if not pattern_nodes:
        return ["root"]
    children: set[str] = set()
    for schema in engine.list_series(join_path(*pattern_nodes, "**")):
        if not visible(schema.path):
            continue
        nodes = split_path(schema.path)
        for depth in range(len(pattern_nodes), len(nodes)):
            if _matches_prefix(pattern_nodes, nodes[:depth]):
                children.add(join_path(*nodes[: depth + 1]))
    return sorted(children)


def _last_node(path: str) -> str:
    return split_path(path)[-1]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, np.generic):
        return _text(value.item())
    return str(value)


def _first_column(result: ResultSet | MetadataResult) -> list[str]:
    """The non-null values of a result's first column as text (IoTDB's ``fillGrafanaVariablesResult``)."""
    if isinstance(result, MetadataResult):
        return [_text(row[0]) for row in result.rows() if row and row[0] is not None]
    if not result.values:
        return []
    column, nulls = result.values[0], result.nulls[0]
    return [_text(value) for index, value in enumerate(column.tolist()) if nulls is None or not nulls[index]]


def _to_milliseconds(timestamps: np.ndarray, per_millisecond: int) -> list[int]:
    if per_millisecond == 1:
        return timestamps.tolist()
    # truncated toward zero, as IoTDB's Java division does
    return (np.sign(timestamps) * (np.abs(timestamps) // per_millisecond)).tolist()


class GrafanaRoutes:
    """The Grafana endpoints of both versions, served by a :class:`RestService`."""

    def __init__(self, service: RestService) -> None:
        self.service = service
        self.per_millisecond = _PER_MILLISECOND[service.precision]

    def register(self, application: web.Application) -> None:
        for version, fields, names_key in (("v1", V1_EXPRESSION, "columnNames"), ("v2", V2_EXPRESSION, "column_names")):
            base = f"/grafana/{version}"
            application.router.add_get(f"{base}/login", self.login)
            application.router.add_post(f"{base}/query/expression", partial(self.expression, fields, names_key))
            application.router.add_post(f"{base}/variable", self.variable)
            application.router.add_post(f"{base}/node", self.node)

    async def login(self, _request: web.Request) -> web.Response:
        """``GET /grafana/v*/login``: the credentials were checked by the authentication middleware."""
        return self.service._response(status(SUCCESS_STATUS, "SUCCESS_STATUS"))

    async def expression(self, fields: ExpressionFields, names_key: str, request: web.Request) -> web.Response:
        """``POST /grafana/v*/query/expression``."""
        service = self.service
        query = expression_request(await service._json(request), fields)
        reply: Reply = await service._off_loop(self._run_expression, query, names_key, request.path,
                                                request["user"])
        service._count("rest_rows_returned", reply.rows)
        return service._response(reply)

    async def variable(self, request: web.Request) -> web.Response:
        """``POST /grafana/v*/variable``: ``{"sql"}`` -> a JSON array of text."""
        sql = sql_request(await self.service._json(request))
        return self.service._response(await self.service._off_loop(self._run_variable, sql, request.path,
                                                                    request["user"]))

    async def node(self, request: web.Request) -> web.Response:
        """``POST /grafana/v*/node``: path nodes -> child node names."""
        body = await request.read()
        nodes = node_request(parse_json_value(body, 'a JSON array of path nodes like ["root", "sg"]'))
        return self.service._response(await self.service._off_loop(self._run_node, nodes, request["user"]))

    # ------------------------------------------------------------------------- work on the thread pool

    def _schema_visible(self, user: str) -> Callable[[str], bool]:
        """Whether a series is in ``user``'s series tree: READ_SCHEMA (or WRITE_SCHEMA) covers it."""
        authorizer = self.service.users.authorizer
        return lambda path: authorizer.can(user, Privilege.READ_SCHEMA, path)

    def _run_expression(self, query: ExpressionRequest, names_key: str, endpoint: str, user: str) -> Reply:
        service = self.service
        sql = build_expression_sql(query, self.per_millisecond)
        try:
            outcome = run_query(service.engine, service.settings, sql, service.default_limit, service.counters,
                                endpoint=endpoint, session=service.users.session(user))
        except StatementFailure as exc:
            return status(exc.code, f"{exc.message} (in: {sql})")
        result = outcome.result
        body = result_body(outcome.statement, result, names_key=names_key)
        if isinstance(result, ResultSet) and result.timestamps is not None:
            body["timestamps"] = _to_milliseconds(result.timestamps, self.per_millisecond)
        return Reply(200, dumps(body), rows=len(result))

    def _run_variable(self, sql: str, endpoint: str, user: str) -> Reply:
        service = self.service
        show_child = _SHOW_CHILD.fullmatch(sql)
        try:
            if show_child:
                pattern = split_path(show_child.group(2) or "root", allow_wildcards=True)
                paths = child_paths(service.engine, pattern, self._schema_visible(user))
                return Reply(200, dumps([_last_node(path) for path in paths]), rows=len(paths))
            outcome = run_query(service.engine, service.settings, sql, service.default_limit, service.counters,
                                endpoint=endpoint, session=service.users.session(user))
        except PathError as exc:
            return status(ILLEGAL_PATH, str(exc))
        except StatementFailure as exc:
            return status(exc.code, exc.message)
        values = _first_column(outcome.result)
        return Reply(200, dumps(values), rows=len(values))

    def _run_node(self, nodes: list[str], user: str) -> Reply:
        if not nodes:
            return Reply(200, dumps(["root"]), rows=1)
        try:
            pattern = split_path(join_path(*nodes), allow_wildcards=True)
        except PathError as exc:
            return status(ILLEGAL_PATH, f"{nodes}: {exc}")
        children = [_last_node(path) for path in child_paths(self.service.engine, pattern, self._schema_visible(user))]
        unique = sorted(set(children))
        return Reply(200, dumps(unique), rows=len(unique))
