"""``GET /openapi.json``: an OpenAPI 3 description of every REST route (no credentials needed).

Request and response schemas follow IoTDB's ``iotdb_rest_v1.yaml`` and ``iotdb_rest_v2.yaml`` (v1 camelCase,
v2 snake_case), with this server's additions: ``failed_points`` in an insert's status and ``/metrics``.
A test checks that the document and the aiohttp router list the same routes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from iotdb_core import __version__

__all__ = ["PUBLIC_PATHS", "OpenApiRoute", "openapi_document"]

#: Routes answered without credentials.
PUBLIC_PATHS = frozenset({"/ping", "/openapi.json"})

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _strings() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


def _columns(items: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "array", "items": items or {}}}


def _int64_list() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer", "format": "int64"}}


def _schemas() -> dict[str, Any]:
    status = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "integer", "format": "int32", "description": "IoTDB status code; 200 is success"},
            "message": {"type": "string"},
            "failed_points": {"type": "array", "items": {"type": "object"},
                              "description": "points an insert did not write (code 507)"},
        },
    }

    def data_set(names_key: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "expressions": {**_strings(), "nullable": True},
                names_key: {**_strings(), "nullable": True},
                "timestamps": {**_int64_list(), "nullable": True},
                "values": _columns(),
            },
        }

    def tablet(device: str, data_types: str, is_aligned: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [device, "timestamps", "measurements", data_types, "values"],
            "properties": {
                device: {"type": "string"},
                "timestamps": _int64_list(),
                "measurements": _strings(),
                data_types: _strings(),
                "values": {**_columns(), "description": "column-major: one list per measurement"},
                is_aligned: {"type": "boolean"},
            },
        }

    def expression(prefix_path: str, start_time: str, end_time: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["expression", prefix_path, start_time, end_time],
            "properties": {
                "expression": _strings(),
                prefix_path: _strings(),
                start_time: {"type": "number", "description": "milliseconds since the epoch"},
                end_time: {"type": "number", "description": "milliseconds since the epoch"},
                "condition": {"type": "string", "description": "a WHERE predicate, ANDed with the time range"},
                "control": {"type": "string", "description": "GROUP BY, FILL, LIMIT, ... clauses"},
            },
        }

    return {
        "ExecutionStatus": status,
        "SQLV1": {"type": "object", "required": ["sql"],
                  "properties": {"sql": {"type": "string"}, "rowLimit": {"type": "integer", "format": "int32"}}},
        "SQL": {"type": "object", "required": ["sql"],
                "properties": {"sql": {"type": "string"}, "row_limit": {"type": "integer", "format": "int32"}}},
        "QueryDataSetV1": data_set("columnNames"),
        "QueryDataSet": data_set("column_names"),
        "InsertTabletRequestV1": tablet("deviceId", "dataTypes", "isAligned"),
        "InsertTabletRequest": tablet("device", "data_types", "is_aligned"),
        "InsertRecordsRequest": {
            "type": "object",
            "required": ["devices", "timestamps", "measurements_list", "data_types_list", "values_list"],
            "properties": {
                "devices": _strings(),
                "timestamps": _int64_list(),
                "measurements_list": _columns({"type": "string"}),
                "data_types_list": _columns({"type": "string"}),
                "values_list": _columns(),
                "is_aligned": {"type": "boolean"},
            },
        },
        "PrefixPathList": {"type": "object", "required": ["prefix_paths"],
                           "properties": {"prefix_paths": {**_strings(), "description": "the nodes of one path"}}},
        "LastDataSet": {
            "type": "object",
            "properties": {
                "expressions": _strings(),
                "column_names": {"nullable": True},
                "data_types": _strings(),
                "timestamps": _int64_list(),
                "values": _columns({"type": "string"}),
            },
        },
        "ExpressionRequestV1": expression("prefixPath", "startTime", "endTime"),
        "ExpressionRequest": expression("prefix_path", "start_time", "end_time"),
        "Strings": _strings(),
    }


def _post(summary: str, request: str | dict[str, Any], response: str) -> dict[str, Any]:
    request_schema = _ref(request) if isinstance(request, str) else request
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {_JSON: {"schema": request_schema}}},
            "responses": {
                "200": {"description": "a result, or an IoTDB status for a statement error",
                        "content": {_JSON: {"schema": {"oneOf": [_ref(response), _ref("ExecutionStatus")]}}}},
                "400": {"description": "a body that is not what the endpoint takes (code 700 or 701)",
                        "content": {_JSON: {"schema": _ref("ExecutionStatus")}}},
                "401": {"description": "missing (603) or wrong (600) credentials",
                        "content": {_JSON: {"schema": _ref("ExecutionStatus")}}},
            },
        }
    }


def _get(summary: str, content_type: str, schema: dict[str, Any], public: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": summary, "content": {content_type: {"schema": schema}}}},
    }
    if public:
        operation["security"] = []
    return {"get": operation}


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/ping": _get("liveness", _JSON, _ref("ExecutionStatus"), public=True),
        "/openapi.json": _get("this document", _JSON, {"type": "object"}, public=True),
        "/metrics": _get("counters, engine and process figures, latency histograms (Prometheus text 0.0.4)",
                         "text/plain", {"type": "string"}),
        "/rest/v1/query": _post("run a SELECT, SHOW or COUNT statement", "SQLV1", "QueryDataSetV1"),
        "/rest/v1/nonQuery": _post("run any other statement", "SQLV1", "ExecutionStatus"),
        "/rest/v1/insertTablet": _post("insert one device's rows", "InsertTabletRequestV1", "ExecutionStatus"),
        "/rest/v2/query": _post("run a SELECT, SHOW or COUNT statement", "SQL", "QueryDataSet"),
        "/rest/v2/nonQuery": _post("run any other statement", "SQL", "ExecutionStatus"),
        "/rest/v2/insertTablet": _post("insert one device's rows", "InsertTabletRequest", "ExecutionStatus"),
        "/rest/v2/insertRecords": _post("insert rows of any devices", "InsertRecordsRequest", "ExecutionStatus"),
        "/rest/v2/fastLastQuery": _post("the last point of every series under a path", "PrefixPathList",
                                        "LastDataSet"),
    }
    for version, suffix in (("v1", "V1"), ("v2", "")):
        base = f"/grafana/{version}"
        paths[f"{base}/login"] = _get("check the credentials", _JSON, _ref("ExecutionStatus"))
        paths[f"{base}/query/expression"] = _post(
            "a Grafana panel query", f"ExpressionRequest{suffix}", f"QueryDataSet{suffix}"
        )
        paths[f"{base}/variable"] = _post("values of a dashboard variable", f"SQL{suffix}", "Strings")
        paths[f"{base}/node"] = _post("child nodes of a path", _strings(), "Strings")
    return paths


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the REST service."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "iotdb-py REST API",
            "version": __version__,
            "description": "IoTDB's REST API v1 and v2 and its Grafana endpoints (see docs/rest.md).",
        },
        "security": [{"basic": []}],
        "paths": _paths(),
        "components": {"schemas": _schemas(), "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    }


class OpenApiRoute:
    """Serves :func:`openapi_document` at ``/openapi.json``."""

    def __init__(self) -> None:
        self._body = openapi_document()

    def register(self, application: web.Application) -> None:
        application.router.add_get("/openapi.json", self.document)

    async def document(self, _request: web.Request) -> web.Response:
        return web.json_response(self._body)
