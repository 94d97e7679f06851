"""Shared helpers for the TLS tests.

Each test makes its own CA and certificates (:class:`~tls.pki.Pki`, with the ``cryptography`` package), starts
real ``iotdb serve`` subprocesses with the MQTT tests' :func:`start_server` fixture, and connects with real
clients: mosquitto_pub/mosquitto_sub, paho-mqtt, gmqtt, MQTT.js, curl, the ``apache-iotdb`` Session and the
project's CLI. :func:`tls_client` is the client context of the Python clients.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from mqtt.conftest import start_server  # the same subprocess fixture as the MQTT tests

from iotdb_core.testing.server import ServerProcess

from .pki import Issued, Pki

__all__ = ["start_server"]

TIMEOUT = 10.0
TOPIC = "root/sg/d1"
DEVICE = "root.sg.d1"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh CA in the test's temporary directory."""
    return Pki(tmp_path / "pki")


@pytest.fixture
def server_cert(pki: Pki) -> Issued:
    """A server certificate for 127.0.0.1 signed by :func:`pki`."""
    return pki.server()


def tls_properties(pki: Pki, cert: Issued, **more: object) -> dict[str, object]:
    """The shared TLS keys: ``cert`` as the server certificate, the CA for client certificates."""
    return {"ssl_certfile": cert.cert, "ssl_keyfile": cert.key, "ssl_cafile": pki.ca, **more}


def tls_client(pki: Pki, client: Issued | None = None, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context trusting ``pki``'s CA, with ``client`` as client certificate; ``maximum`` caps the version."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    if maximum is not None:
        context.maximum_version = maximum
    return context


def presented_certificate(port: int, pki: Pki) -> bytes:
    """The DER certificate a new TLS handshake with 127.0.0.1:``port`` is shown."""
    with (tcp(port) as raw,
          tls_client(pki).wrap_socket(raw, server_hostname="127.0.0.1") as wrapped):
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return der


def mosquitto(tool: str) -> str:
    """The path of ``mosquitto_pub`` or ``mosquitto_sub``; skips when it is not installed."""
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed (apt-get install mosquitto-clients)")
    return found


def mosquitto_pub(server: ServerProcess, pki: Pki, *args: str, client: Issued | None = None,
                  port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run mosquitto_pub against MQTT over TLS (``--cafile``, and ``--cert``/``--key`` with ``client``)."""
    command = [mosquitto("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port or server.ssl_port),
               "--cafile", str(pki.ca), *args]
    if client is not None:
        command += ["--cert", str(client.cert), "--key", str(client.key)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT * 2, check=False)


def mosquitto_sub(server: ServerProcess, pki: Pki, *args: str) -> subprocess.CompletedProcess[str]:
    """Run mosquitto_sub against MQTT over TLS with ``--cafile`` until it exits (give ``-C``), at most TIMEOUT."""
    command = [mosquitto("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(server.ssl_port), "--cafile", str(pki.ca),
               "-W", str(int(TIMEOUT)), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT * 2, check=False)


def tcp(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port``."""
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def iotdb(*args: str) -> subprocess.CompletedProcess[str]:
    """The project's CLI as a subprocess."""
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args], capture_output=True, text=True,
                          timeout=TIMEOUT * 6, check=False)


def serve_fails(directory: Path, **properties: object) -> subprocess.CompletedProcess[str]:
    """Run ``iotdb serve`` with ``properties`` that must keep it from starting; returns the finished process."""
    server = ServerProcess(directory, properties=properties)
    done = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(server.config_path)],
                          capture_output=True, text=True, timeout=TIMEOUT * 3, check=False)
    assert done.returncode != 0, f"iotdb serve started:\n{done.stdout}{done.stderr}"
    return done


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on, from /proc (its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def assert_quiet(server: ServerProcess) -> None:
    """The server is running and logged no traceback."""
    assert server.process is not None and server.process.poll() is None, f"iotdb serve died:\n{server.output}"
    assert "Traceback" not in server.output, server.output
