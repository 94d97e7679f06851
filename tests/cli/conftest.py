"""Helpers for the query command tests: the real ``iotdb`` command in a subprocess, a real server.

Commands run as ``python -m iotdb_core.cli.main`` with standard input, output and error as pipes (so the shell
takes its non-terminal path and progress bars stay off); every run has a timeout.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iotdb_core.testing.server import ServerProcess

TIMEOUT = 60.0




def iotdb(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``iotdb ARGS`` and return the completed process (never raises on a non-zero exit)."""
    environment = {**os.environ, "TZ": "UTC"}
    environment.pop("IOTDB_PASSWORD", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "iotdb_core.cli.main", *args], input=stdin, capture_output=True, text=True,
        env=environment, timeout=TIMEOUT, cwd=cwd, check=False,
    )


def assert_one_line_error(process: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, one line on standard error, no traceback; returns that line."""
    assert process.returncode == 2, (process.returncode, process.stdout, process.stderr)
    assert "Traceback" not in process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def rest_post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(server.rest_url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"root:root").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running server with the REST service, shared by a module's tests."""
    process = ServerProcess(tmp_path_factory.mktemp("cli-server"), properties={"enable_rest_service": "true"})
    process.start(timeout=30)
    yield process
    if process.process is not None and process.process.poll() is None:
        try:
            process.stop(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def url(server: ServerProcess) -> list[str]:
    """``--url`` arguments for the shared server."""
    return ["--url", server.rest_url]
