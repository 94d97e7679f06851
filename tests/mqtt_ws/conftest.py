"""Shared helpers for the MQTT over WebSocket tests.

Every test runs real ``iotdb serve`` subprocesses and talks to them over loopback: with paho-mqtt
(``transport="websockets"``), with MQTT.js run by Node (:func:`run_mqttjs`, scripts in tests/js), and with
:class:`WsRawClient`, a blocking WebSocket client on a plain socket that writes RFC 6455 frames byte by byte,
so that a test can send what no library sends (text frames, fragments, half packets, wrong handshakes).
Data is read back with the storage engine after the server stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mqtt.conftest import start_server  # the same subprocess fixture as the TCP tests

from iotdb_core.storage.engine import Engine
from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import EMPTY_PROPERTIES, ConnAck, Connect, Packet, PacketReader, Properties, Will, encode

__all__ = ["start_server"]

TIMEOUT = 10.0
TOPIC = "root/sg/d1"
DEVICE = "root.sg.d1"
JS_DIR = Path(__file__).resolve().parents[1] / "js"

StartServer = Callable[..., ServerProcess]

# WebSocket opcodes (RFC 6455 section 5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------------------------------- servers


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    """A running server with the default settings (MQTT over WebSocket on a free port)."""
    return start_server()


def stop_and_read(server: ServerProcess, *paths: str) -> dict[str, dict[int, Any]]:
    """Stop the server cleanly (exit code 0), then read each series back as ``{timestamp: value}``."""
    code = server.stop(timeout=TIMEOUT * 3)
    assert code == 0, f"iotdb serve exited with {code}:\n{server.output}"
    with Engine.open(server.data_dir) as engine:
        out: dict[str, dict[int, Any]] = {}
        for path in paths:
            result = engine.query(path)
            out[path] = dict(zip(result.timestamps.tolist(), result.values.tolist(), strict=True))
        return out


def assert_healthy(server: ServerProcess) -> None:
    """The server is running and logged no traceback."""
    assert server.process is not None and server.process.poll() is None, f"iotdb serve died:\n{server.output}"
    assert "Traceback" not in server.output, server.output


def row(timestamp: int, device: str = DEVICE, value: float = 1.5) -> bytes:
    """A single-row JSON document of the ``json`` formatter with measurement ``s1``."""
    return json.dumps({"device": device, "timestamp": timestamp, "measurements": ["s1"], "values": [value]}).encode()


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ---------------------------------------------------------------------------------------- MQTT.js


def _node_and_packages(*packages: str) -> str:
    """The ``node`` executable; skips when it or one of the pinned npm packages (``npm ci`` in tests/js, which
    .ci/run does) is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    for package in packages:
        if not (JS_DIR / "node_modules" / package).is_dir():
            pytest.skip(f"npm package {package} is not installed: run `npm ci` in tests/js")
    return node


def chromium_path() -> str:
    """Debian's Chromium (or any ``chromium`` on the PATH); skips when there is none."""
    found = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed")
    return found


def run_mqttjs(scenario: str, url: str, *, browser: bool = False, **options: Any) -> dict[str, Any]:
    """Run one scenario of tests/js/scenario.js with MQTT.js and return its JSON result.

    In Node (tests/js/mqtt_client.mjs), or with ``browser`` in a headless Chromium page over the browser's
    WebSocket (tests/js/browser_client.mjs).
    """
    arguments = json.dumps({"scenario": scenario, "url": url, "timeoutMs": int(TIMEOUT * 1000), **options})
    if browser:
        node = _node_and_packages("mqtt", "playwright-core")
        command = [node, str(JS_DIR / "browser_client.mjs"), chromium_path(), arguments]
    else:
        command = [_node_and_packages("mqtt"), str(JS_DIR / "mqtt_client.mjs"), arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT * 3, check=False, cwd=JS_DIR)
    assert done.returncode == 0, f"MQTT.js scenario {scenario} failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------------------------------- raw WebSocket client


class ConnectionClosed(Exception):
    """The server closed the WebSocket (``code`` from its close frame, None when the TCP connection just ended)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: str


def upgrade_request(path: str, host: str, *, protocols: Sequence[str] | None = ("mqtt",),
                    upgrade: bool = True) -> tuple[bytes, bytes]:
    """The bytes of a WebSocket upgrade request, and its key."""
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
                  "Sec-WebSocket-Version: 13"]
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


class WsRawClient:
    """A blocking WebSocket client on a plain socket, carrying MQTT packets encoded with the project's codec.

    Nothing is automatic: no keep-alive, no acknowledgements, no close reply, so a test controls every frame.
    Construction performs the handshake; :attr:`handshake` is the server's HTTP reply (status 101 expected
    unless ``expect_upgrade`` is False).
    """

    def __init__(self, server: ServerProcess, *, level: int = 5, protocols: Sequence[str] | None = ("mqtt",),
                 path: str | None = None, upgrade: bool = True, expect_upgrade: bool = True,
                 timeout: float = TIMEOUT) -> None:
        self.level = level
        self.timeout = timeout
        self.sock = socket.create_connection((server.ws_host, server.ws_port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self.reader = PacketReader(level)
        self._packets: list[Packet] = []
        self.close_code: int | None = None
        self.closed = False
        request, key = upgrade_request(path or server.ws_path, f"{server.ws_host}:{server.ws_port}",
                                       protocols=protocols, upgrade=upgrade)
        self.sock.sendall(request)
        self.handshake = self._read_http_reply()
        if expect_upgrade:
            assert self.handshake.status == 101, self.handshake
            accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
            assert self.handshake.headers["sec-websocket-accept"] == accept

    def __enter__(self) -> WsRawClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sock.close()

    # ------------------------------------------------------------------ bytes

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("nothing from the server in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            raise ConnectionClosed(self.close_code, "the TCP connection ended")
        self._buffer += data

    def _take(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            self._fill(deadline)
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken

    def _read_http_reply(self) -> HttpReply:
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in header_lines)}
        status = int(status_line.split()[1])
        body = b""
        if status != 101:
            body = self._take(int(headers.get("content-length", "0")), deadline)
        return HttpReply(status, headers, body.decode("utf-8", "replace"))

    # ------------------------------------------------------------------ frames

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """Send one masked frame, as a client must."""
        length = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if length < 126:
            head += bytes([0x80 | length])
        elif length < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload)))

    def send_fragmented(self, payload: bytes, pieces: int) -> None:
        """Send ``payload`` as one binary message in ``pieces`` frames (a first frame and continuations)."""
        size = -(-len(payload) // pieces)
        chunks = [payload[i:i + size] for i in range(0, len(payload), size)]
        for index, chunk in enumerate(chunks):
            self.send_frame(BINARY if index == 0 else CONTINUATION, chunk, fin=index == len(chunks) - 1)

    def recv_frame(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next frame from the server as ``(opcode, payload)``; a close frame raises :class:`ConnectionClosed`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        first, second = self._take(2, deadline)
        assert not second & 0x80, "a server must not mask its frames"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8, deadline))
        opcode, payload = first & 0x0F, self._take(length, deadline)
        if opcode == CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            raise ConnectionClosed(self.close_code, payload[2:].decode("utf-8", "replace"))
        return opcode, payload

    # ------------------------------------------------------------------ MQTT

    def send(self, *packets: Packet) -> None:
        """Encode ``packets`` and send them in one binary message."""
        self.send_frame(BINARY, b"".join(encode(packet, self.level) for packet in packets))

    def recv(self, timeout: float | None = None) -> Packet:
        """The next MQTT packet from the server (the binary messages are one byte stream)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._packets:
            opcode, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            assert opcode == BINARY, f"the server sent opcode {opcode}"
            self._packets.extend(self.reader.feed(payload))
        return self._packets.pop(0)

    def expect(self, kind: type[Any], timeout: float | None = None) -> Any:
        """The next packet, which must be of ``kind``."""
        packet = self.recv(timeout)
        assert isinstance(packet, kind), f"expected {kind.__name__}, got {packet!r}"
        return packet

    def wait_closed(self, timeout: float | None = None) -> tuple[list[Packet], int | None]:
        """Read until the server closes; the packets it sent before, and its close code."""
        packets: list[Packet] = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while True:
                packets.append(self.recv(max(deadline - time.monotonic(), 0.001)))
        except ConnectionClosed as closed:
            return packets, closed.code

    def connect(self, client_id: str = "ws-raw", username: str | None = "root", password: bytes | None = b"root",
                *, keep_alive: int = 60, will: Will | None = None,
                properties: Properties = EMPTY_PROPERTIES) -> ConnAck:
        """Send CONNECT and return the CONNACK (whatever its code)."""
        self.send(Connect(client_id, self.level, True, keep_alive, username, password, will, properties))
        return self.expect(ConnAck)
