"""``POST /rest/v2/fastLastQuery``: the last point of every series under one path.

The request and answer follow IoTDB's REST v2 (``PrefixPathList`` in ``iotdb_rest_v2.yaml`` and its
``FastLastHandler``): the body is ``{"prefix_paths": ["root", "sg", "d1"]}``, the *nodes* of one path, which
IoTDB joins with ``.`` and extends by ``.**``. The answer names its three text columns in ``expressions``::

    {"expressions": ["Timeseries", "Value", "DataType"], "column_names": null,
     "data_types": ["TEXT", "TEXT", "TEXT"], "timestamps": [7, 9],
     "values": [["root.sg.d1.s1", "root.sg.d1.s2"], ["1.5", "true"], ["DOUBLE", "BOOLEAN"]]}

Values are text, as in IoTDB; with no series ``values`` and ``timestamps`` are empty lists. The query is the
engine's ``SELECT LAST ** FROM <path>`` (the series pattern ``<path>.**``), which answers from the last-point cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from iotdb_core.paths import PathError, join_path, split_path
from iotdb_core.query import MetadataResult
from iotdb_core.query.errors import ILLEGAL_PATH
from iotdb_core.rest.convert import column_to_json, dumps
from iotdb_core.rest.payloads import last_request
from iotdb_core.rest.queries import StatementFailure, run_query
from iotdb_core.rest.replies import Reply, status

if TYPE_CHECKING:
    from iotdb_core.rest.app import RestService

__all__ = ["LAST_COLUMNS", "FastLastRoute", "last_body"]

#: The column names of IoTDB's fastLastQuery answer.
LAST_COLUMNS = ["Timeseries", "Value", "DataType"]


def last_body(result: Any) -> dict[str, Any]:
    """The fastLastQuery answer for the result of a ``SELECT LAST`` (columns timeseries, value, dataType)."""
    body: dict[str, Any] = {
        "expressions": LAST_COLUMNS,
        "column_names": None,
        "data_types": ["TEXT", "TEXT", "TEXT"],
        "timestamps": [],
        "values": [],
    }
    if isinstance(result, MetadataResult) or not len(result):
        return body
    assert result.timestamps is not None
    body["timestamps"] = result.timestamps.tolist()
    body["values"] = [
        column_to_json(column, nulls, data_type)
        for column, nulls, data_type in zip(result.values, result.nulls, result.data_types, strict=True)
    ]
    return body


class FastLastRoute:
    """The fastLastQuery endpoint, served by a :class:`RestService`."""

    def __init__(self, service: RestService) -> None:
        self.service = service

    def register(self, application: web.Application) -> None:
        application.router.add_post("/rest/v2/fastLastQuery", self.fast_last_query)

    async def fast_last_query(self, request: web.Request) -> web.Response:
        """``POST /rest/v2/fastLastQuery``: ``{"prefix_paths": [node, ...]}``."""
        service = self.service
        nodes = last_request(await service._json(request))
        reply: Reply = await service._off_loop(self._run, nodes, request["user"])
        service._count("rest_rows_returned", reply.rows)
        return service._response(reply)

    def _run(self, nodes: list[str], user: str) -> Reply:
        service = self.service
        try:
            path = join_path(*split_path(join_path(*nodes)))
        except PathError as exc:
            return status(ILLEGAL_PATH, f'"prefix_paths" {nodes}: {exc}')
        try:
            outcome = run_query(
                service.engine, service.settings, f"SELECT LAST ** FROM {path}", service.default_limit,
                service.counters, endpoint="/rest/v2/fastLastQuery", session=service.users.session(user),
            )
        except StatementFailure as exc:
            return status(exc.code, exc.message)
        return Reply(200, dumps(last_body(outcome.result)), rows=len(outcome.result))
