"""Shared helpers for the native RPC tests: a real ``iotdb serve`` subprocess and the real ``apache-iotdb`` client.

The server runs the RPC service (on by default) and REST on ports the OS picks, read back from the startup log
by :class:`~iotdb_core.testing.server.ServerProcess`. The client's calls carry a connection timeout.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from iotdb.Session import Session

from iotdb_core.testing.server import ServerProcess

TIMEOUT = 10.0


def start_server(directory: Path, **properties: object) -> ServerProcess:
    settings: dict[str, object] = {"enable_rest_service": "true"}
    settings.update(properties)
    return ServerProcess(directory, properties=settings).start(timeout=TIMEOUT * 3)


def stop_server(server: ServerProcess) -> None:
    if server.process is not None and server.process.poll() is None:
        try:
            code = server.stop(timeout=TIMEOUT * 3)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        assert code == 0, f"iotdb serve exited with {code}:\n{server.output}"


def open_session(server: ServerProcess, *, user: str = "root", password: str = "root", fetch_size: int = 5000,
                 compression: bool = False) -> Session:
    session = Session(server.rpc_host, server.rpc_port, user, password, fetch_size=fetch_size, zone_id="UTC",
                      connection_timeout_in_ms=int(TIMEOUT * 1000))
    session.open(compression)
    return session


@pytest.fixture(scope="module")
def rpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module (tests use their own devices); its log must hold no traceback."""
    server = start_server(tmp_path_factory.mktemp("rpc"))
    yield server
    stop_server(server)
    assert "Traceback" not in server.output, server.output


@pytest.fixture
def session(rpc_server: ServerProcess) -> Iterator[Session]:
    client = open_session(rpc_server)
    yield client
    client.close()
