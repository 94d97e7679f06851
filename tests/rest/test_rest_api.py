"""The REST API v2 of a real ``iotdb serve``, through urllib (and aiohttp's client for concurrency)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from .conftest import DEFAULT_ROW_LIMIT, MAX_REQUEST_SIZE, RestClient, basic, start_rest_server

SUCCESS = {"code": 200, "message": "SUCCESS_STATUS"}


def insert(rest: RestClient, sql: str) -> None:
    assert rest.non_query(sql) == SUCCESS


# ------------------------------------------------------------------------------------ ping and auth


def test_ping_needs_no_credentials(rest: RestClient) -> None:
    reply = rest.request("GET", "/ping", authorization=None)
    assert reply.status == 200
    assert reply.body == SUCCESS


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":password-without-user").decode(),
    ],
    ids=["missing", "bearer", "empty", "garbled", "no-colon", "no-user"],
)
def test_missing_or_garbled_credentials_are_603(rest: RestClient, authorization: str | None) -> None:
    reply = rest.request("POST", "/rest/v2/query", {"sql": "show timeseries"}, authorization=authorization)
    assert reply.status == 401
    assert reply.body["code"] == 603
    assert reply.body["message"].startswith("UNINITIALIZED_AUTH_ERROR")
    assert reply.headers.get("WWW-Authenticate", "").startswith("Basic")


@pytest.mark.parametrize("user,password", [("root", "wrong"), ("nobody", "root")])
@pytest.mark.parametrize("method,path", [("POST", "/rest/v2/query"), ("GET", "/metrics")])
def test_wrong_credentials_are_600(rest: RestClient, user: str, password: str, method: str, path: str) -> None:
    body = {"sql": "show timeseries"} if method == "POST" else None
    reply = rest.request(method, path, body, authorization=basic(user, password))
    assert reply.status == 401
    assert reply.body == {"code": 600, "message": "WRONG_LOGIN_PASSWORD_ERROR"}


# ------------------------------------------------------------------------------------ query shapes


@pytest.fixture(scope="module")
def shapes(rest_server: object) -> RestClient:
    client = RestClient(rest_server)  # type: ignore[arg-type]
    insert(client, "CREATE TIMESERIES root.shape.d1.i WITH DATATYPE=INT64")
    insert(client, "INSERT INTO root.shape.d1(time, x, flag, note) VALUES (1, 1.5, true, 'a'), (2, 2.5, false, 'b')")
    insert(client, "INSERT INTO root.shape.d1(time, x, i) VALUES (7, 4.0, 10)")
    insert(client, "INSERT INTO root.shape.d2(time, x) VALUES (3, -1.0)")
    return client


def test_raw_query_is_column_major(shapes: RestClient) -> None:
    body = shapes.query("SELECT x, i, flag, note FROM root.shape.d1")
    assert body == {
        "expressions": ["root.shape.d1.x", "root.shape.d1.i", "root.shape.d1.flag", "root.shape.d1.note"],
        "column_names": None,
        "timestamps": [1, 2, 7],
        "values": [[1.5, 2.5, 4.0], [None, None, 10], [True, False, None], ["a", "b", None]],
    }


def test_aggregate_without_group_by_has_no_timestamps(shapes: RestClient) -> None:
    body = shapes.query("SELECT count(x), max_value(x) FROM root.shape.d1")
    assert body == {
        "expressions": ["count(root.shape.d1.x)", "max_value(root.shape.d1.x)"],
        "column_names": None,
        "timestamps": None,
        "values": [[3], [4.0]],
    }


def test_group_by_time_has_window_timestamps(shapes: RestClient) -> None:
    body = shapes.query("SELECT count(x) FROM root.shape.d1 GROUP BY ([0, 10), 5ms)")
    assert body == {
        "expressions": ["count(root.shape.d1.x)"],
        "column_names": None,
        "timestamps": [0, 5],
        "values": [[2, 1]],
    }


def test_last_fills_column_names(shapes: RestClient) -> None:
    body = shapes.query("SELECT LAST x FROM root.shape.**")
    assert body == {
        "expressions": None,
        "column_names": ["timeseries", "value", "dataType"],
        "timestamps": [7, 3],
        "values": [["root.shape.d1.x", "root.shape.d2.x"], ["4.0", "-1.0"], ["DOUBLE", "DOUBLE"]],
    }


def test_align_by_device_fills_column_names(shapes: RestClient) -> None:
    body = shapes.query("SELECT x FROM root.shape.** ALIGN BY DEVICE")
    assert body["expressions"] is None
    assert body["column_names"] == ["Device", "x"]
    assert body["timestamps"] == [1, 2, 7, 3]
    assert body["values"] == [["root.shape.d1"] * 3 + ["root.shape.d2"], [1.5, 2.5, 4.0, -1.0]]


def test_show_timeseries_and_count(shapes: RestClient) -> None:
    body = shapes.query("SHOW TIMESERIES root.shape.d1.*")
    assert body["expressions"] is None and body["timestamps"] is None
    columns = body["column_names"]
    assert columns[:4] == ["timeseries", "alias", "database", "dataType"]
    by_name = dict(zip(columns, body["values"], strict=True))
    assert by_name["timeseries"] == ["root.shape.d1.flag", "root.shape.d1.i", "root.shape.d1.note", "root.shape.d1.x"]
    assert by_name["dataType"] == ["BOOLEAN", "INT64", "TEXT", "DOUBLE"]
    assert by_name["database"] == ["root.shape"] * 4
    assert shapes.query("COUNT TIMESERIES root.shape.**") == {
        "expressions": None, "column_names": ["count"], "timestamps": None, "values": [[5]],
    }


def test_empty_result(shapes: RestClient) -> None:
    body = shapes.query("SELECT x FROM root.shape.d1 WHERE time > 100")
    assert body == {"expressions": ["root.shape.d1.x"], "column_names": None, "timestamps": [], "values": []}


def test_timestamp_precision_header(shapes: RestClient) -> None:
    reply = shapes.request("POST", "/rest/v2/query", {"sql": "COUNT TIMESERIES"})
    assert reply.headers["X-IoTDB-Timestamp-Precision"] == "ms"


# ------------------------------------------------------------------------------------ statement errors


def test_parse_error_is_http_200_code_700(rest: RestClient) -> None:
    reply = rest.request("POST", "/rest/v2/query", {"sql": "SELEC * FROM root.**"})
    assert reply.status == 200
    assert reply.body["code"] == 700
    assert "line 1" in reply.body["message"]
    reply = rest.request("POST", "/rest/v2/nonQuery", {"sql": "INSERT INTO"})
    assert reply.status == 200 and reply.body["code"] == 700


def test_semantic_error_is_code_701(rest: RestClient) -> None:
    reply = rest.request("POST", "/rest/v2/query", {"sql": "SELECT x FROM root.sg.d1 GROUP BY ([0, 10), 5ms)"})
    assert reply.status == 200 and reply.body["code"] == 701


def test_statement_kind_must_fit_the_endpoint(rest: RestClient) -> None:
    reply = rest.request("POST", "/rest/v2/nonQuery", {"sql": "SELECT * FROM root.**"})
    assert reply.body["code"] == 301 and "/rest/v2/query" in reply.body["message"]
    reply = rest.request("POST", "/rest/v2/query", {"sql": "INSERT INTO root.kind.d(time, s) VALUES (1, 1)"})
    assert reply.body["code"] == 301 and "/rest/v2/nonQuery" in reply.body["message"]
    assert rest.query("COUNT TIMESERIES root.kind.**")["values"] == [[0]]


def test_non_query_creates_and_inserts(rest: RestClient) -> None:
    assert rest.non_query("CREATE DATABASE root.nq") == SUCCESS
    assert rest.non_query("INSERT INTO root.nq.d(time, s) VALUES (5, 42)") == SUCCESS
    assert rest.query("SELECT s FROM root.nq.d")["values"] == [[42.0]]
    reply = rest.request("POST", "/rest/v2/nonQuery", {"sql": "CREATE DATABASE root.nq"})
    assert reply.status == 200 and reply.body["code"] == 501


# ------------------------------------------------------------------------------------ row limit


def test_row_limit_exceeded_is_708(rest: RestClient) -> None:
    insert(rest, "INSERT INTO root.limit.d(time, s) VALUES (1, 1), (2, 2), (3, 3)")
    assert len(rest.query("SELECT s FROM root.limit.d", row_limit=3)["timestamps"]) == 3
    reply = rest.request("POST", "/rest/v2/query", {"sql": "SELECT s FROM root.limit.d", "row_limit": 2})
    assert reply.status == 200
    assert reply.body == {"code": 708, "message": "Dataset row size exceeded the given max row size (2)"}


def test_default_row_limit_comes_from_the_configuration(rest: RestClient) -> None:
    rows = DEFAULT_ROW_LIMIT + 1
    reply = rest.request("POST", "/rest/v2/insertTablet", {
        "device": "root.deflimit.d", "timestamps": list(range(rows)), "measurements": ["s"],
        "data_types": ["INT32"], "values": [list(range(rows))], "is_aligned": False,
    })
    assert reply.body == SUCCESS
    reply = rest.request("POST", "/rest/v2/query", {"sql": "SELECT s FROM root.deflimit.d"})
    assert reply.body["code"] == 708
    assert len(rest.query("SELECT s FROM root.deflimit.d", row_limit=rows)["timestamps"]) == rows


# ------------------------------------------------------------------------------------ inserts


def test_insert_tablet_round_trip_every_type(rest: RestClient) -> None:
    body = {
        "device": "root.tab.d1",
        "timestamps": [10, 11, 12],
        "measurements": ["b", "i32", "i64", "f", "d", "t"],
        "data_types": ["BOOLEAN", "INT32", "INT64", "FLOAT", "DOUBLE", "TEXT"],
        "values": [
            [True, None, False],
            [1, -2147483648, None],
            [2**62, None, -1],
            [0.1, 1.5, None],
            [None, "NaN", 2.25],
            ["héllo", None, "a,b\"c"],
        ],
        "is_aligned": False,
    }
    reply = rest.request("POST", "/rest/v2/insertTablet", body)
    assert (reply.status, reply.body) == (200, SUCCESS)
    result = rest.query("SELECT b, i32, i64, f, d, t FROM root.tab.d1")
    assert result["timestamps"] == [10, 11, 12]
    assert result["values"] == body["values"]
    types = rest.query("SHOW TIMESERIES root.tab.d1.*")
    by_name = dict(zip(types["column_names"], types["values"], strict=True))
    assert dict(zip(by_name["timeseries"], by_name["dataType"], strict=True)) == {
        "root.tab.d1.b": "BOOLEAN", "root.tab.d1.d": "DOUBLE", "root.tab.d1.f": "FLOAT",
        "root.tab.d1.i32": "INT32", "root.tab.d1.i64": "INT64", "root.tab.d1.t": "TEXT",
    }


def test_insert_records_round_trip(rest: RestClient) -> None:
    body = {
        "devices": ["root.rec.d1", "root.rec.d1", "root.rec.d2"],
        "timestamps": [1, 2, 1],
        "measurements_list": [["s1", "s2"], ["s1"], ["s3"]],
        "data_types_list": [["DOUBLE", "TEXT"], ["DOUBLE"], ["BOOLEAN"]],
        "values_list": [[1.25, "x"], [2.5], [True]],
        "is_aligned": False,
    }
    reply = rest.request("POST", "/rest/v2/insertRecords", body)
    assert (reply.status, reply.body) == (200, SUCCESS)
    assert rest.query("SELECT s1, s2 FROM root.rec.d1")["values"] == [[1.25, 2.5], ["x", None]]
    assert rest.query("SELECT s3 FROM root.rec.d2")["values"] == [[True]]


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"values": [[1, 2]]}, '"values"[0] (s) has 2 values but "timestamps" has 3'),
        ({"data_types": ["INT32", "INT32"]}, '"data_types" has 2 entries but "measurements" has 1'),
        ({"values": [[1, "x", 3]]}, '"values"[0][1]: expected an integer for INT32, got "x"'),
        ({"timestamps": [1, "2", 3]}, '"timestamps"[1] should be an integer timestamp'),
        ({"data_types": ["DECIMAL"]}, '"data_types"[0]: unknown data type'),
        ({"device": None}, 'missing field "device"'),
        ({"values": [7]}, '"values"[0] should be a list'),
        ({"is_aligned": "yes"}, '"is_aligned" should be true or false'),
    ],
)
def test_insert_tablet_validation(rest: RestClient, change: dict[str, object], fragment: str) -> None:
    body = {"device": "root.val.d", "timestamps": [1, 2, 3], "measurements": ["s"], "data_types": ["INT32"],
            "values": [[1, 2, 3]], "is_aligned": False}
    body.update(change)
    reply = rest.request("POST", "/rest/v2/insertTablet", body)
    assert reply.status == 400
    assert reply.body["code"] == 701
    assert fragment in reply.body["message"], reply.body
    assert rest.query("COUNT TIMESERIES root.val.**")["values"] == [[0]]


def test_insert_records_validation_names_the_row(rest: RestClient) -> None:
    body = {"devices": ["root.val.r", "root.val.r"], "timestamps": [1, 2],
            "measurements_list": [["a"], ["a", "b"]], "data_types_list": [["INT64"], ["INT64"]],
            "values_list": [[1], [2, 3]], "is_aligned": False}
    reply = rest.request("POST", "/rest/v2/insertRecords", body)
    assert reply.status == 400 and reply.body["code"] == 701
    assert '"data_types_list"[1] 1' in reply.body["message"]
    body["devices"] = ["root.val.r"]
    reply = rest.request("POST", "/rest/v2/insertRecords", body)
    assert reply.body["message"] == '"timestamps" has 2 entries but "devices" has 1'


def test_engine_failures_list_the_failed_points(rest: RestClient) -> None:
    reply = rest.request("POST", "/rest/v2/insertTablet", {
        "device": "root.fail.d", "timestamps": [1, 2, 3], "measurements": ["s"], "data_types": ["INT32"],
        "values": [[1, 2**40, 3]], "is_aligned": False,
    })
    assert reply.status == 200
    assert reply.body["code"] == 507
    assert "1 value(s) not written (2 written)" in reply.body["message"]
    assert reply.body["failed_points"] == [
        {"device": "root.fail.d", "measurement": "s", "timestamp": 2,
         "reason": "1099511627776 is out of the INT32 range [-2147483648, 2147483647]"},
    ]
    assert rest.query("SELECT s FROM root.fail.d")["values"] == [[1, 3]]


# ------------------------------------------------------------------------------------ malformed requests


@pytest.mark.parametrize(
    "raw,code,fragment",
    [
        (b"{not json", 700, "not valid JSON"),
        (b"", 700, "empty"),
        (b"[1, 2]", 701, "should be a JSON object"),
        (b'{"sql": 5}', 701, '"sql" should be a non-empty string'),
        (b'{"query": "SHOW TIMESERIES"}', 701, 'missing field "sql"'),
        (b'{"sql": "SHOW TIMESERIES", "row_limit": 0}', 701, '"row_limit" should be a positive integer'),
        (b'{"sql": "SHOW TIMESERIES", "row_limit": 1e400}', 701, '"row_limit" should be a positive integer'),
        (b'{"sql": "SHOW TIMESERIES"} trailing', 700, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(rest: RestClient, raw: bytes, code: int, fragment: str) -> None:
    reply = rest.request("POST", "/rest/v2/query", raw=raw)
    assert reply.status == 400
    assert reply.body["code"] == code
    assert fragment in reply.body["message"], reply.body


def test_request_size_limit_is_413(rest: RestClient) -> None:
    sql = "SHOW TIMESERIES root." + "x" * MAX_REQUEST_SIZE
    reply = rest.request("POST", "/rest/v2/query", {"sql": sql})
    assert reply.status == 413
    assert reply.body["code"] == 413
    assert str(MAX_REQUEST_SIZE) in reply.body["message"]
    assert rest.request("GET", "/ping").status == 200  # the server goes on


def test_unknown_route_and_method_are_json(rest: RestClient) -> None:
    reply = rest.request("POST", "/rest/v2/nothing", {})
    assert (reply.status, reply.body["code"]) == (404, 404)
    reply = rest.request("GET", "/rest/v2/query")
    assert (reply.status, reply.body["code"]) == (405, 405)


def test_no_response_carries_a_traceback(rest: RestClient) -> None:
    weird = [
        ("POST", "/rest/v2/insertTablet", b'{"device": "root", "timestamps": [1], "measurements": ["s"], '
                                          b'"data_types": ["INT32"], "values": [[1]]}'),
        ("POST", "/rest/v2/insertRecords", b'{"devices": [1], "timestamps": [], "measurements_list": []}'),
        ("POST", "/rest/v2/query", b'{"sql": "SELECT * FROM root.`unclosed"}'),
        ("POST", "/rest/v2/nonQuery", json.dumps({"sql": "DELETE FROM root.x.** WHERE s > 1"}).encode()),
        ("POST", "/rest/v2/query", "{\"sql\": \"SELECT \u00e9 FROM root.**\"}".encode()),
        ("POST", "/rest/v2/query", b'{"sql": "SELECT \\ud800 FROM root.**"}'),
        ("POST", "/rest/v2/insertTablet", b'{"device": "root.w.d", "timestamps": [1], "measurements": ["s"], '
                                          b'"data_types": ["TEXT"], "values": [["\\udc00"]]}'),
    ]
    for method, path, raw in weird:
        reply = rest.request(method, path, raw=raw)
        assert reply.status in (200, 400), reply.text
        assert reply.body["code"] != 200
        assert "Traceback" not in reply.text


# ------------------------------------------------------------------------------------ concurrency


def test_concurrent_requests_with_aiohttp(rest_server: object, rest: RestClient) -> None:
    insert(rest, "INSERT INTO root.conc.d(time, s) VALUES (1, 1), (2, 2)")
    base = rest.base
    headers = {"Authorization": basic("root", "root")}

    async def run() -> list[dict[str, object]]:
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def one(index: int) -> dict[str, object]:
                if index % 2:
                    async with session.post(f"{base}/rest/v2/query", json={"sql": "SELECT s FROM root.conc.d"}) as r:
                        return await r.json()  # type: ignore[no-any-return]
                body = {"device": "root.conc.w", "timestamps": [index], "measurements": ["s"],
                        "data_types": ["INT64"], "values": [[index]], "is_aligned": False}
                async with session.post(f"{base}/rest/v2/insertTablet", json=body) as r:
                    return await r.json()  # type: ignore[no-any-return]

            return await asyncio.gather(*(one(index) for index in range(40)))

    replies = asyncio.run(run())
    for index, reply in enumerate(replies):
        if index % 2:
            assert reply["values"] == [[1.0, 2.0]]
        else:
            assert reply == SUCCESS
    assert rest.query("SELECT count(s) FROM root.conc.w")["values"] == [[20]]


def test_rest_port_in_use_is_a_one_line_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError) as failure:
            start_rest_server(tmp_path / "busy", rest_service_port=port)
    output = str(failure.value)
    assert f"iotdb serve: error: cannot serve REST on 127.0.0.1:{port}: the port is in use" in output
    assert "Traceback" not in output
