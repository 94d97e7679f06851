"""The console's JSON API over HTTP against a real ``iotdb serve``: log-in, CSRF, roles, errors.

The browser tests drive the same API through the pages; these check what a page cannot show: requests a
page would never send (a forged cross-site POST, a missing CSRF token, a non-administrator's call).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, Publisher, rest


def call(server: ServerProcess, method: str, path: str, body: Any = None, *, cookie: str | None = None,
         headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.rest_url + path, data=data, method=method)
    if data is not None and raw is None:
        request.add_header("Content-Type", "application/json")
    if cookie:
        request.add_header("Cookie", cookie)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, payload, reply_headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, payload, reply_headers = error.code, error.read(), dict(error.headers)
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = payload.decode("utf-8", errors="replace")
    return status, parsed, reply_headers


def log_in(server: ServerProcess, user: str = "root", password: str = "root") -> tuple[str, str]:
    status, body, headers = call(server, "POST", "/console/api/login", {"user": user, "password": password})
    assert status == 200, body
    morsel = SimpleCookie(headers["Set-Cookie"])["iotdb_console"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/console/"
    return f"iotdb_console={morsel.value}", body["csrf"]


def test_the_page_and_assets_need_no_log_in_but_the_api_does(console_server: ServerProcess) -> None:
    status, page, headers = call(console_server, "GET", "/")
    assert status == 200 and "<title>iotdb console</title>" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    status, script, _ = call(console_server, "GET", "/console/static/vendor/uPlot.iife.min.js")
    assert status == 200 and "uPlot" in script
    status, body, _ = call(console_server, "GET", "/console/api/overview")
    assert status == 401 and body["message"] == "log in first"
    status, body, _ = call(console_server, "POST", "/console/api/login", {"user": "root", "password": "nope"})
    assert status == 401 and body["message"] == "wrong user or password"


def test_state_changes_need_the_csrf_token_with_the_cookie(console_server: ServerProcess) -> None:
    cookie, csrf = log_in(console_server)
    sql = {"sql": "INSERT INTO root.api.csrf(time, v) VALUES (1, 1)"}
    status, body, _ = call(console_server, "POST", "/console/api/sql", sql, cookie=cookie)
    assert status == 403 and "X-CSRF-Token" in body["message"]
    status, body, _ = call(console_server, "POST", "/console/api/sql", sql, cookie=cookie,
                           headers={"X-CSRF-Token": "forged"})
    assert status == 403
    assert rest(console_server, "/rest/v2/query", {"sql": "SELECT v FROM root.api.csrf"})[1]["values"] == []
    status, body, _ = call(console_server, "POST", "/console/api/sql", sql, cookie=cookie,
                           headers={"X-CSRF-Token": csrf})
    assert status == 200 and body["kind"] == "update" and body["count"] == 1
    status, body, _ = call(console_server, "GET", "/console/api/session", cookie=cookie)
    assert status == 200 and body == {"user": "root", "admin": True, "csrf": csrf, "precision": "ms"}
    status, _, _ = call(console_server, "POST", "/console/api/logout", {}, cookie=cookie,
                        headers={"X-CSRF-Token": csrf})
    assert status == 200
    assert call(console_server, "GET", "/console/api/session", cookie=cookie)[0] == 401


def test_a_cross_site_form_post_is_refused(console_server: ServerProcess) -> None:
    form = b"user=root&password=root"
    status, body, _ = call(console_server, "POST", "/console/api/login", raw=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "application/json" in body["message"]
    cookie, _ = log_in(console_server)
    status, _, _ = call(console_server, "POST", "/console/api/users/delete", raw=b'{"name": "x"}', cookie=cookie,
                        headers={"Content-Type": "text/plain"})
    assert status == 415


def test_basic_credentials_work_without_a_session(console_server: ServerProcess) -> None:
    status, body = rest(console_server, "/console/api/sql", {"sql": "SHOW DATABASES"})
    assert status == 200 and body["kind"] == "query"
    assert rest(console_server, "/console/api/overview", password="wrong")[0] == 401


def test_only_the_administrator_manages_users_and_clients(console_server: ServerProcess) -> None:
    assert rest(console_server, "/console/api/users", {"name": "viewer", "password": "viewer-pw"})[0] == 200
    status, body = rest(console_server, "/console/api/users", user="viewer", password="viewer-pw")
    assert status == 403 and "administrator" in body["message"]
    status, _ = rest(console_server, "/console/api/users/delete", {"name": "root"}, user="viewer",
                     password="viewer-pw")
    assert status == 403
    publisher = Publisher(console_server, "api-client")
    try:
        status, _ = rest(console_server, "/console/api/clients/disconnect", {"client_id": "api-client"},
                         user="viewer", password="viewer-pw")
        assert status == 403 and not publisher.disconnected.is_set()
        status, body = rest(console_server, "/console/api/clients", user="viewer", password="viewer-pw")
        assert status == 200 and "api-client" in [client["client_id"] for client in body["clients"]]
    finally:
        publisher.close()
    status, body = rest(console_server, "/console/api/users/delete", {"name": "root"})
    assert status == 400 and "administrator" in body["message"]
    status, body = rest(console_server, "/console/api/users", {"name": "bad name!", "password": "long-enough"})
    assert status == 400 and "user name" in body["message"]
    assert rest(console_server, "/console/api/users/delete", {"name": "viewer"})[0] == 200
    status, body = rest(console_server, "/console/api/clients/disconnect", {"client_id": "nobody"})
    assert status == 404 and "nobody" in body["message"]


@pytest.mark.parametrize(("query", "message"), [
    ("path=root.api.text.t", "only numeric series are plotted"),
    ("path=root.api.missing.s", "no series root.api.missing.s"),
    ("path=root.api.text.t&points=0", "points must be 1-4000"),
    ("path=root.api.text.t&start=x", "start must be an integer"),
    ("path=root", "not a series path"),
])
def test_plot_requests_that_cannot_be_answered_say_why(console_server: ServerProcess, query: str,
                                                       message: str) -> None:
    rest(console_server, "/rest/v2/nonQuery", {"sql": "INSERT INTO root.api.text(time, t) VALUES (1, 'a')"})
    status, body = rest(console_server, f"/console/api/plot?{query}")
    assert status == 400 and message in body["message"], body


def test_console_requests_are_not_counted_as_rest_requests(console_server: ServerProcess) -> None:
    def rest_requests() -> int:
        status, body = rest(console_server, "/console/api/overview")
        assert status == 200
        return int(body["counters"]["rest_requests_total"])

    before = rest_requests()
    for _ in range(5):
        rest(console_server, "/console/api/tree")
    assert rest_requests() == before
    rest(console_server, "/rest/v2/query", {"sql": "SHOW DATABASES"})
    assert rest_requests() == before + 1


def test_a_stale_dead_letter_id_is_refused(console_server: ServerProcess) -> None:
    status, body = rest(console_server, "/console/api/deadletters/reingest", {"id": "1-0-00000000", "payload": "{}"})
    assert status == 409 and "no longer in the log" in body["message"]
    status, body = rest(console_server, "/console/api/deadletters/discard", {"id": "not-an-id"})
    assert status == 409 and "is not a dead-letter id" in body["message"]
    status, body = rest(console_server, "/console/api/sql", {"sql": "SELECT FROM"})
    assert status == 200 and body["code"] == 700 and body["line"] == 1 and body["column"] == 12


def test_the_console_is_off_with_the_rest_service(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, properties={"enable_rest_service": "false"}) as server:
        assert "serving MQTT" in server.output
        assert "serving REST" not in server.output and "web console" not in server.output
