"""REST v1 (camelCase, iotdb_rest_v1.yaml) and ``/rest/v2/fastLastQuery`` of a real ``iotdb serve``."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import DEFAULT_ROW_LIMIT, RestClient

SUCCESS = {"code": 200, "message": "SUCCESS_STATUS"}


def post(client: RestClient, path: str, body: Any, status: int = 200) -> Any:
    reply = client.request("POST", path, body)
    assert reply.status == status, reply.text
    assert "Traceback" not in reply.text
    return reply.body


def test_v1_non_query_and_query(rest: RestClient) -> None:
    assert post(rest, "/rest/v1/nonQuery", {"sql": "INSERT INTO root.v1.d1(time, s1, s2) VALUES (1, 1.5, 'x'), "
                                                      "(2, 2.5, 'y')"}) == SUCCESS
    assert post(rest, "/rest/v1/query", {"sql": "SELECT s1, s2 FROM root.v1.d1"}) == {
        "expressions": ["root.v1.d1.s1", "root.v1.d1.s2"],
        "columnNames": None,
        "timestamps": [1, 2],
        "values": [[1.5, 2.5], ["x", "y"]],
    }
    shown = post(rest, "/rest/v1/query", {"sql": "SHOW TIMESERIES root.v1.d1.*"})
    assert shown["expressions"] is None
    assert shown["columnNames"][:4] == ["timeseries", "alias", "database", "dataType"]
    assert shown["values"][0] == ["root.v1.d1.s1", "root.v1.d1.s2"]
    assert "column_names" not in shown
    counted = post(rest, "/rest/v1/query", {"sql": "SELECT count(s1) FROM root.v1.d1"})
    assert counted == {"expressions": ["count(root.v1.d1.s1)"], "columnNames": None, "timestamps": None,
                       "values": [[2]]}


def test_v1_row_limit_and_wrong_endpoint(rest: RestClient) -> None:
    post(rest, "/rest/v1/nonQuery", {"sql": "INSERT INTO root.v1.lim(time, s) VALUES (1, 1), (2, 2), (3, 3)"})
    assert post(rest, "/rest/v1/query", {"sql": "SELECT s FROM root.v1.lim", "rowLimit": 2})["code"] == 708
    assert post(rest, "/rest/v1/query", {"sql": "SELECT s FROM root.v1.lim", "rowLimit": 3})["timestamps"] == [1, 2, 3]
    refused = post(rest, "/rest/v1/query", {"sql": "INSERT INTO root.v1.lim(time, s) VALUES (9, 9)"})
    assert refused["code"] == 301 and "/rest/v1/nonQuery" in refused["message"]
    refused = post(rest, "/rest/v1/nonQuery", {"sql": "SELECT s FROM root.v1.lim"})
    assert refused["code"] == 301 and "/rest/v1/query" in refused["message"]
    assert post(rest, "/rest/v1/query", {"sql": "SELECT s FROM root.v1.lim"})["timestamps"] == [1, 2, 3]
    bad = post(rest, "/rest/v1/query", {"sql": "SELECT s FROM root.v1.lim", "rowLimit": 0}, status=400)
    assert bad["code"] == 701 and '"rowLimit"' in bad["message"]
    assert post(rest, "/rest/v1/query", {"sql": "SELEC s"})["code"] == 700


def test_v1_insert_tablet_is_camel_case_and_column_major(rest: RestClient) -> None:
    body = {
        "deviceId": "root.v1.tab", "isAligned": False, "timestamps": [10, 20, 30],
        "measurements": ["temperature", "status", "count"],
        "dataTypes": ["FLOAT", "BOOLEAN", "INT32"],
        "values": [[21.5, None, 23.25], [True, False, None], [1, 2, 3]],
    }
    assert post(rest, "/rest/v1/insertTablet", body) == SUCCESS
    read = post(rest, "/rest/v1/query", {"sql": "SELECT temperature, status, count FROM root.v1.tab"})
    assert read["timestamps"] == [10, 20, 30]
    assert read["values"] == [[21.5, None, 23.25], [True, False, None], [1, 2, 3]]
    without_aligned = {key: value for key, value in body.items() if key != "isAligned"}
    assert post(rest, "/rest/v1/insertTablet", {**without_aligned, "deviceId": "root.v1.tab2"}) == SUCCESS


@pytest.mark.parametrize(
    "change,field",
    [
        ({"deviceId": None}, '"deviceId"'),
        ({"dataTypes": None}, '"dataTypes"'),
        ({"dataTypes": ["INT64", "NUMBER"]}, '"dataTypes"[1]'),
        ({"dataTypes": ["INT64"]}, '"dataTypes" has 1 entries'),
        ({"isAligned": "no"}, '"isAligned"'),
        ({"values": [[1, 2], [True]]}, '"values"[1]'),
        ({"values": [[1, "two"], [True, False]]}, '"values"[0][1]'),
        ({"timestamps": [1, "2"]}, '"timestamps"[1]'),
    ],
    ids=["no-deviceId", "no-dataTypes", "unknown-type", "types-short", "isAligned-text", "column-short",
         "wrong-value-type", "timestamp-text"],
)
def test_v1_insert_tablet_bad_input_writes_nothing(rest: RestClient, change: dict[str, Any], field: str) -> None:
    body = {"deviceId": "root.v1.bad", "timestamps": [1, 2], "measurements": ["a", "b"],
            "dataTypes": ["INT64", "BOOLEAN"], "values": [[1, 2], [True, False]], **change}
    if change.get("deviceId", "") is None:
        del body["deviceId"]
    if change.get("dataTypes", "") is None:
        del body["dataTypes"]
    reply = post(rest, "/rest/v1/insertTablet", body, status=400)
    assert reply["code"] == 701
    assert field in reply["message"], reply["message"]
    assert post(rest, "/rest/v1/query", {"sql": "SHOW TIMESERIES root.v1.bad.*"})["values"] == []


def test_v1_insert_tablet_engine_refusals_are_507(rest: RestClient) -> None:
    post(rest, "/rest/v1/nonQuery", {"sql": "CREATE TIMESERIES root.v1.typed.s WITH DATATYPE=INT32"})
    reply = post(rest, "/rest/v1/insertTablet", {
        "deviceId": "root.v1.typed", "timestamps": [1, 2], "measurements": ["s"], "dataTypes": ["INT32"],
        "values": [[1, 2**40]], "isAligned": False})
    assert reply["code"] == 507
    assert reply["failed_points"][0]["timestamp"] == 2
    assert post(rest, "/rest/v1/query", {"sql": "SELECT s FROM root.v1.typed"})["values"] == [[1]]


# ------------------------------------------------------------------------------------------ fastLastQuery


def test_fast_last_query_shape(rest: RestClient) -> None:
    post(rest, "/rest/v2/nonQuery",
         {"sql": "INSERT INTO root.fl.d1(time, a, b) VALUES (1, 1.5, true), (5, 2.5, false)"})
    post(rest, "/rest/v2/nonQuery", {"sql": "INSERT INTO root.fl.d1.sub(time, c) VALUES (3, 'text')"})
    post(rest, "/rest/v2/nonQuery", {"sql": "INSERT INTO root.fl.d2(time, n) VALUES (9, 42)"})
    body = post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["root", "fl", "d1"]})
    assert body == {
        "expressions": ["Timeseries", "Value", "DataType"],
        "column_names": None,
        "data_types": ["TEXT", "TEXT", "TEXT"],
        "timestamps": [5, 5, 3],
        "values": [["root.fl.d1.a", "root.fl.d1.b", "root.fl.d1.sub.c"], ["2.5", "false", "text"],
                   ["DOUBLE", "BOOLEAN", "TEXT"]],
    }
    everything = post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["root", "fl"]})
    assert everything["values"][0] == ["root.fl.d1.a", "root.fl.d1.b", "root.fl.d1.sub.c", "root.fl.d2.n"]
    assert everything["values"][1][-1] == "42.0"  # an integer literal is a DOUBLE, as in IoTDB


def test_fast_last_query_empty_and_bad_input(rest: RestClient) -> None:
    empty = post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["root", "no", "such"]})
    assert (empty["timestamps"], empty["values"]) == ([], [])
    for body, field in (({}, '"prefix_paths"'), ({"prefix_paths": "root.fl"}, '"prefix_paths"'),
                        ({"prefix_paths": []}, '"prefix_paths"'), ({"prefix_paths": ["root", 1]}, '"prefix_paths"[1]')):
        reply = post(rest, "/rest/v2/fastLastQuery", body, status=400)
        assert reply["code"] == 701 and field in reply["message"]
    assert post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["root", "fl", "a b"]})["code"] == 509
    assert post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["sg", "fl"]})["code"] == 509


def test_fast_last_query_row_limit(rest: RestClient) -> None:
    columns = ", ".join(f"s{index}" for index in range(DEFAULT_ROW_LIMIT + 1))
    values = ", ".join("1" for _ in range(DEFAULT_ROW_LIMIT + 1))
    post(rest, "/rest/v2/nonQuery", {"sql": f"INSERT INTO root.flwide.d(time, {columns}) VALUES (1, {values})"})
    assert post(rest, "/rest/v2/fastLastQuery", {"prefix_paths": ["root", "flwide"]})["code"] == 708
