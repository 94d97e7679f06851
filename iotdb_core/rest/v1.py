"""IoTDB's REST API v1: ``/rest/v1/query``, ``/rest/v1/nonQuery`` and ``/rest/v1/insertTablet``.

The shapes follow IoTDB's ``iotdb-protocol/openapi/src/main/openapi3/iotdb_rest_v1.yaml``: v1 is v2 with
camelCase names. A query body is ``{"sql", "rowLimit"?}`` and its result names the metadata columns
``columnNames`` (v2: ``column_names``); an insertTablet body is ``{"deviceId", "timestamps",
"measurements", "dataTypes", "values", "isAligned"?}`` with ``values`` column-major, one list per
measurement, as in v2. Statuses, codes and validation are those of v2 (``app.py``), with v1's field names in
the messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from iotdb_core.rest.convert import dumps, result_body
from iotdb_core.rest.payloads import V1_TABLET, TabletRequest, query_request, sql_request, tablet_request
from iotdb_core.rest.queries import StatementFailure, run_query
from iotdb_core.rest.replies import Reply, status

if TYPE_CHECKING:
    from iotdb_core.rest.app import RestService

__all__ = ["RestV1Routes"]


class RestV1Routes:
    """The v1 endpoints, served by a :class:`RestService` (its engine, executors and counters)."""

    def __init__(self, service: RestService) -> None:
        self.service = service

    def register(self, application: web.Application) -> None:
        application.router.add_post("/rest/v1/query", self.query)
        application.router.add_post("/rest/v1/nonQuery", self.non_query)
        application.router.add_post("/rest/v1/insertTablet", self.insert_tablet)

    async def query(self, request: web.Request) -> web.Response:
        """``POST /rest/v1/query``: ``{"sql", "rowLimit"?}``."""
        service = self.service
        sql, limit = query_request(await service._json(request), service.default_limit, limit_name="rowLimit")
        reply: Reply = await service._off_loop(self._run_query, sql, limit, request["user"])
        service._count("rest_rows_returned", reply.rows)
        return service._response(reply)

    async def non_query(self, request: web.Request) -> web.Response:
        """``POST /rest/v1/nonQuery``: ``{"sql"}``."""
        sql = sql_request(await self.service._json(request))
        service = self.service
        return service._response(await service._off_loop(service._run_non_query, sql, request["user"], "v1"))

    async def insert_tablet(self, request: web.Request) -> web.Response:
        """``POST /rest/v1/insertTablet``: camelCase fields, column-major values."""
        service = self.service
        data = await service._json(request)
        tablet: TabletRequest = await service._off_loop(tablet_request, data, V1_TABLET)
        return service._response(await service._off_loop(service._insert_tablet, tablet, request["user"]))

    def _run_query(self, sql: str, limit: int, user: str) -> Reply:
        service = self.service
        try:
            outcome = run_query(
                service.engine, service.settings, sql, limit, service.counters,
                endpoint="/rest/v1/query", non_query_endpoint="/rest/v1/nonQuery",
                session=service.users.session(user),
            )
        except StatementFailure as exc:
            return status(exc.code, exc.message)
        body = result_body(outcome.statement, outcome.result, names_key="columnNames")
        return Reply(200, dumps(body), rows=len(outcome.result))
