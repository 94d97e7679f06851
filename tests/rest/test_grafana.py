"""The Grafana data-source endpoints of a real ``iotdb serve``, with the bodies IoTDB's Grafana plugin sends.

The plugin (apache/iotdb-extras ``connectors/grafana-plugin/pkg/plugin``) marshals a ``QueryDataReq`` with
every field present (empty strings when unset), builds ``control`` with a leading space in its drop-down mode
(`` group by([start,end),interval)`` and `` fill(previous)``), calls ``GET /grafana/v1/login`` for the
health check, and parses any answer with a ``code`` above 0 as an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import RestClient, basic, start_rest_server, stop_server

SUCCESS = {"code": 200, "message": "SUCCESS_STATUS"}
MINUTE = 60_000


def plugin_request(expression: list[str], prefix_path: list[str], start: int, end: int,
                   condition: str = "", control: str = "") -> dict[str, Any]:
    """What plugin.go's ``NewQueryDataReq`` marshals: every field, camelCase."""
    return {"expression": expression, "prefixPath": prefix_path, "startTime": start, "endTime": end,
            "condition": condition, "control": control}


def v2_request(expression: list[str], prefix_path: list[str], start: int, end: int, **extra: str) -> dict[str, Any]:
    """The same request in iotdb_rest_v2.yaml's snake_case."""
    return {"expression": expression, "prefix_path": prefix_path, "start_time": start, "end_time": end, **extra}


@pytest.fixture(scope="module")
def grafana(rest_server: object) -> RestClient:
    client = RestClient(rest_server)  # type: ignore[arg-type]
    for sql in (
        "INSERT INTO root.gf.d1(time, temp, ok, note) VALUES (0, 20.5, true, 'a'), (30000, 21.5, false, 'b'), "
        "(60000, 23.0, true, 'c'), (150000, 25.0, true, 'd')",
        "INSERT INTO root.gf.d2(time, temp) VALUES (10000, 5.0)",
        "INSERT INTO root.gf.area.d3(time, hum) VALUES (10000, 40)",
    ):
        assert client.non_query(sql)["code"] == 200
    return client


def expression(client: RestClient, body: Any, version: str = "v1") -> Any:
    reply = client.request("POST", f"/grafana/{version}/query/expression", body)
    assert reply.status == 200, reply.text
    return reply.body


# ------------------------------------------------------------------------------------------------ login


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_login_is_the_health_check(grafana: RestClient, version: str) -> None:
    reply = grafana.request("GET", f"/grafana/{version}/login")
    assert (reply.status, reply.body) == (200, SUCCESS)
    refused = grafana.request("GET", f"/grafana/{version}/login", authorization=basic("root", "nope"))
    assert refused.status == 401
    assert refused.body == {"code": 600, "message": "WRONG_LOGIN_PASSWORD_ERROR"}


# ------------------------------------------------------------------------------------ query/expression


def test_full_customized_raw_query(grafana: RestClient) -> None:
    body = expression(grafana, plugin_request(["temp", "ok"], ["root.gf.d1"], 0, 2 * MINUTE))
    assert body == {
        "expressions": ["root.gf.d1.temp", "root.gf.d1.ok"],
        "columnNames": None,
        "timestamps": [0, 30000, 60000],
        "values": [[20.5, 21.5, 23.0], [True, False, True]],
    }
    assert "code" not in body  # the plugin reads any code > 0 as an error


def test_time_range_is_inclusive_and_condition_is_anded(grafana: RestClient) -> None:
    body = expression(grafana, plugin_request(["temp"], ["root.gf.d1"], 30000, 60000))
    assert body["timestamps"] == [30000, 60000]
    body = expression(grafana, plugin_request(["temp"], ["root.gf.d1"], 0, 200000, condition="temp > 21 or ok = true"))
    # the condition cannot widen the time range: it is ANDed as a whole
    assert body["timestamps"] == [0, 30000, 60000, 150000]
    body = expression(grafana, plugin_request(["temp"], ["root.gf.d1"], 0, 100000, condition="temp > 21"))
    assert body["timestamps"] == [30000, 60000]


def test_drop_down_group_by_and_fill(grafana: RestClient) -> None:
    """The drop-down mode: ``avg(temp)`` with the control plugin.go builds (leading spaces included)."""
    start, end = 0, 3 * MINUTE
    control = f" group by([{start},{end}),1m) fill(previous)"
    body = expression(grafana, plugin_request(["avg(temp)"], ["root.gf.d1"], start, end, control=control))
    assert body["expressions"] == ["avg(root.gf.d1.temp)"]
    assert body["timestamps"] == [0, 60000, 120000]
    assert body["values"] == [[21.0, 23.0, 25.0]]
    sliding = f" group by([{start},{end}),2m,1m)"
    body = expression(grafana, plugin_request(["count(temp)"], ["root.gf.d1"], start, end, control=sliding))
    assert body["timestamps"] == [0, 60000, 120000]
    assert body["values"] == [[3, 2, 1]]


def test_aggregation_without_group_by_has_no_timestamps(grafana: RestClient) -> None:
    body = expression(grafana, plugin_request(["count(temp)", "max_value(temp)"], ["root.gf.d1"], 0, 200000))
    assert body["timestamps"] is None
    assert body["values"] == [[4], [25.0]]


def test_several_prefix_paths_and_wildcards(grafana: RestClient) -> None:
    body = expression(grafana, plugin_request(["temp"], ["root.gf.d1", "root.gf.d2"], 0, 20000))
    assert body["expressions"] == ["root.gf.d1.temp", "root.gf.d2.temp"]
    assert body["values"] == [[20.5, None], [None, 5.0]]
    body = expression(grafana, plugin_request(["*"], ["root.gf.**"], 10000, 10000))
    assert body["timestamps"] == [10000]
    row = dict(zip(body["expressions"], (column[0] for column in body["values"]), strict=True))
    assert row == {"root.gf.area.d3.hum": 40, "root.gf.d1.note": None, "root.gf.d1.ok": None,
                   "root.gf.d1.temp": None, "root.gf.d2.temp": 5.0}


def test_empty_range_answers_empty_lists(grafana: RestClient) -> None:
    body = expression(grafana, plugin_request(["temp"], ["root.gf.d1"], 500000, 600000))
    assert body == {"expressions": ["root.gf.d1.temp"], "columnNames": None, "timestamps": [], "values": []}


def test_v2_twin_uses_snake_case(grafana: RestClient) -> None:
    body = expression(grafana, v2_request(["temp"], ["root.gf.d1"], 0, 30000, control="limit 1"), version="v2")
    assert body == {"expressions": ["root.gf.d1.temp"], "column_names": None, "timestamps": [0], "values": [[20.5]]}
    # v2 does not take v1's names
    reply = grafana.request("POST", "/grafana/v2/query/expression", plugin_request(["temp"], ["root.gf.d1"], 0, 1))
    assert reply.status == 400
    assert reply.body["code"] == 701 and '"prefix_path"' in reply.body["message"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1}, '"expression"'),
        ({"expression": ["temp"], "startTime": 0, "endTime": 1}, '"prefixPath"'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "endTime": 1}, '"startTime"'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "startTime": 0}, '"endTime"'),
        ({"expression": "temp", "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1}, '"expression"'),
        ({"expression": [], "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1}, '"expression"'),
        ({"expression": [""], "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1}, '"expression"[0]'),
        ({"expression": ["temp"], "prefixPath": [7], "startTime": 0, "endTime": 1}, '"prefixPath"[0]'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "startTime": "now-6h", "endTime": 1}, '"startTime"'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": True}, '"endTime"'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1, "condition": 5},
         '"condition"'),
        ({"expression": ["temp"], "prefixPath": ["root.gf.d1"], "startTime": 0, "endTime": 1, "control": ["x"]},
         '"control"'),
    ],
    ids=["no-expression", "no-prefixPath", "no-startTime", "no-endTime", "expression-string", "expression-empty",
         "expression-blank", "prefixPath-number", "startTime-text", "endTime-bool", "condition-number",
         "control-list"],
)
def test_bad_expression_bodies_name_the_field(grafana: RestClient, body: dict[str, Any], field: str) -> None:
    reply = grafana.request("POST", "/grafana/v1/query/expression", body)
    assert reply.status == 400
    assert reply.body["code"] == 701
    assert field in reply.body["message"]
    assert "Traceback" not in reply.text


@pytest.mark.parametrize(
    "body,code",
    [
        (plugin_request(["temp +"], ["root.gf.d1"], 0, 1), 700),
        (plugin_request(["temp"], ["root.gf.d1"], 0, 1, control=" group by level = 1"), 700),
        (plugin_request(["temp"], ["root.gf.d1"], 0, 1, condition="temp >"), 700),
        (plugin_request(["temp"], ["root.gf.12"], 0, 1), 509),
        (plugin_request(["nosuch(temp)"], ["root.gf.d1"], 0, 1), 700),
    ],
    ids=["dangling-operator", "group-by-level", "bad-condition", "bad-path", "unknown-function"],
)
def test_bad_expressions_are_statuses_with_the_sql(grafana: RestClient, body: dict[str, Any], code: int) -> None:
    reply = grafana.request("POST", "/grafana/v1/query/expression", body)
    assert reply.status == 200
    assert reply.body["code"] == code, reply.body
    assert "(in: SELECT " in reply.body["message"]


def test_not_json_is_a_400(grafana: RestClient) -> None:
    reply = grafana.request("POST", "/grafana/v1/query/expression", raw=b"{expression:")
    assert reply.status == 400
    assert reply.body["code"] == 700


def test_microsecond_server_takes_and_answers_milliseconds(tmp_path: Path) -> None:
    server = start_rest_server(tmp_path, timestamp_precision="us")
    try:
        client = RestClient(server)
        assert client.non_query("INSERT INTO root.us.d(time, v) VALUES (1500000, 1.0), (2500000, 2.0)")["code"] == 200
        body = expression(client, plugin_request(["v"], ["root.us.d"], 1000, 2000))
        assert body["timestamps"] == [1500]
        assert body["values"] == [[1.0]]
        # the plain query API keeps the server's unit
        assert client.query("SELECT v FROM root.us.d")["timestamps"] == [1500000, 2500000]
    finally:
        stop_server(server)
    assert "Traceback" not in server.output


# ------------------------------------------------------------------------------------------- variable


def variable(client: RestClient, sql: Any, version: str = "v1") -> Any:
    reply = client.request("POST", f"/grafana/{version}/variable", {"sql": sql})
    assert reply.status == 200, reply.text
    return reply.body


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_variable_queries_answer_string_arrays(grafana: RestClient, version: str) -> None:
    """What iotdb_resource_handler.go's getVariables unmarshals into ``[]string``."""
    assert variable(grafana, "show child paths root.gf", version) == ["area", "d1", "d2"]
    assert variable(grafana, "SHOW CHILD NODES root.gf.d1", version) == ["note", "ok", "temp"]
    assert variable(grafana, "show devices root.gf.**", version) == ["root.gf.area.d3", "root.gf.d1", "root.gf.d2"]
    assert variable(grafana, "show timeseries root.gf.d1.*", version) == [
        "root.gf.d1.note", "root.gf.d1.ok", "root.gf.d1.temp"]
    assert variable(grafana, "select note from root.gf.d1", version) == ["a", "b", "c", "d"]
    assert variable(grafana, "select ok from root.gf.d1 where time <= 30000", version) == ["true", "false"]
    assert variable(grafana, "count timeseries root.gf.**", version) == ["5"]


def test_variable_errors(grafana: RestClient) -> None:
    refused = variable(grafana, "INSERT INTO root.gf.x(time, a) VALUES (1, 1)")
    assert refused["code"] == 301
    assert grafana.query("SHOW TIMESERIES root.gf.x.*")["values"] == []  # nothing was written
    assert variable(grafana, "show chlid paths root.gf")["code"] == 700
    assert variable(grafana, "show child paths root.gf.12")["code"] == 509
    reply = grafana.request("POST", "/grafana/v1/variable", {"sql": ["show devices"]})
    assert reply.status == 400 and reply.body["code"] == 701 and '"sql"' in reply.body["message"]
    reply = grafana.request("POST", "/grafana/v1/variable", {})
    assert reply.status == 400 and 'missing field "sql"' in reply.body["message"]


# ----------------------------------------------------------------------------------------------- node


def node(client: RestClient, body: Any, version: str = "v1") -> Any:
    reply = client.request("POST", f"/grafana/{version}/node", body)
    assert reply.status == 200, reply.text
    return reply.body


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_node_lists_children(grafana: RestClient, version: str) -> None:
    """The query editor's drop-down: ``nodeQuery(['root'])`` first, then one level at a time."""
    assert "gf" in node(grafana, ["root"], version)
    assert node(grafana, ["root", "gf"], version) == ["area", "d1", "d2"]
    assert node(grafana, ["root", "gf", "d1"], version) == ["note", "ok", "temp"]
    assert node(grafana, ["root", "gf", "*"], version) == ["d3", "note", "ok", "temp"]
    assert node(grafana, ["root", "gf", "**"], version) == ["d3", "hum", "note", "ok", "temp"]
    assert node(grafana, ["root", "gf", "d1", "temp"], version) == []
    assert node(grafana, ["root", "nothing"], version) == []
    assert node(grafana, [], version) == ["root"]


def test_node_bad_bodies(grafana: RestClient) -> None:
    reply = grafana.request("POST", "/grafana/v1/node", {"data": ["root"]})
    assert reply.status == 400 and reply.body["code"] == 701 and "JSON array of path nodes" in reply.body["message"]
    reply = grafana.request("POST", "/grafana/v1/node", ["root", 3])
    assert reply.status == 400 and "[1]" in reply.body["message"]
    reply = grafana.request("POST", "/grafana/v1/node", raw=b"[root")
    assert reply.status == 400 and reply.body["code"] == 700
    assert node(grafana, ["root", "a b"])["code"] == 509
