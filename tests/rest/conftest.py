"""Shared helpers for the REST API tests: a real ``iotdb serve`` subprocess and a urllib client.

The servers run with ``enable_rest_service=true`` on ports the OS picks (read back from the startup log by
:class:`~iotdb_core.testing.server.ServerProcess`). Every call has a timeout and an alarm bounds each test.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iotdb_core.testing.server import ServerProcess

TIMEOUT = 10.0
#: Settings of the shared server: a small default row limit and request size so the limits are cheap to reach.
DEFAULT_ROW_LIMIT = 100
MAX_REQUEST_SIZE = 256 * 1024




@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    text: str


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RestClient:
    """A blocking HTTP client (urllib) for one server's REST API."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.base = server.rest_url

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                authorization: str | None = basic("root", "root"), headers: dict[str, str] | None = None) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if authorization is not None:
            request.add_header("Authorization", authorization)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status, payload, reply_headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, payload, reply_headers = error.code, error.read(), dict(error.headers)
        text = payload.decode("utf-8")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        return Reply(status, parsed, reply_headers, text)

    def query(self, sql: str, row_limit: int | None = None) -> Any:
        body: dict[str, Any] = {"sql": sql}
        if row_limit is not None:
            body["row_limit"] = row_limit
        reply = self.request("POST", "/rest/v2/query", body)
        assert reply.status == 200, reply.text
        return reply.body

    def non_query(self, sql: str) -> Any:
        reply = self.request("POST", "/rest/v2/nonQuery", {"sql": sql})
        assert reply.status == 200, reply.text
        return reply.body


def start_rest_server(directory: Path, **properties: object) -> ServerProcess:
    settings: dict[str, object] = {"enable_rest_service": "true"}
    settings.update(properties)
    return ServerProcess(directory, properties=settings).start(timeout=TIMEOUT * 3)


def stop_server(server: ServerProcess) -> None:
    if server.process is not None and server.process.poll() is None:
        try:
            code = server.stop(timeout=TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        assert code == 0, f"iotdb serve exited with {code}:\n{server.output}"


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module (tests use their own devices)."""
    server = start_rest_server(
        tmp_path_factory.mktemp("rest"),
        rest_query_default_row_size_limit=DEFAULT_ROW_LIMIT,
        rest_max_request_size=MAX_REQUEST_SIZE,
    )
    yield server
    stop_server(server)
    assert "Traceback" not in server.output, server.output


@pytest.fixture
def rest(rest_server: ServerProcess) -> RestClient:
    return RestClient(rest_server)
