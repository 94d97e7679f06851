"""Shared helpers for the MQTT service tests.

Every test runs real ``iotdb serve`` subprocesses (:func:`start_server`) and talks to them over
loopback, with real client libraries or with :class:`RawClient`, a blocking socket client built on
the project's sans-I/O codec for crafted packets. Data is read back with the storage engine after
the server stopped (:func:`stop_and_read`). Every blocking call has a timeout, and an alarm bounds
each test as a whole (the `_test_deadline` fixture of tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.deadletter import DeadLetter, DeadLetterLog
from iotdb_core.storage.engine import Engine
from iotdb_core.testing import waiting
from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import POLL_INTERVAL
from iotdb_mqtt.codec import (
    EMPTY_PROPERTIES,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Properties,
    PubAck,
    Publish,
    PubRec,
    Will,
    encode,
)

#: Seconds any single wait on the network or a process may take.
TIMEOUT = 10.0
TOPIC = "root/sg/d1"
DEVICE = "root.sg.d1"

StartServer = Callable[..., ServerProcess]


# ---------------------------------------------------------------------------------------- time bound




# ---------------------------------------------------------------------------------------- servers


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start ``iotdb serve`` subprocesses with given properties; each is stopped (or killed) afterwards.

    ``start_server(name="server", env=None, **properties)``: a second call with the same ``name`` restarts
    on the same directory, hence the same data directory; ``env`` adds environment variables.
    """
    servers: list[ServerProcess] = []

    def start(name: str = "server", env: Mapping[str, str] | None = None, **properties: object) -> ServerProcess:
        server = ServerProcess(tmp_path / name, properties=properties, env=env)
        servers.append(server)
        return server.start(timeout=TIMEOUT * 3)

    yield start
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            try:
                server.stop(timeout=TIMEOUT * 2)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    """A running server with the default settings."""
    return start_server()


def stop_cleanly(server: ServerProcess) -> None:
    """SIGTERM the server and require a clean exit (code 0)."""
    code = server.stop(timeout=TIMEOUT * 3)
    assert code == 0, f"iotdb serve exited with {code}:\n{server.output}"


def assert_alive(server: ServerProcess) -> None:
    """The server process is still running."""
    assert server.process is not None
    assert server.process.poll() is None, f"iotdb serve died:\n{server.output}"


def read_series(data_dir: Path, *paths: str) -> dict[str, dict[int, Any]]:
    """Points of each series path as ``{timestamp: value}``; the server must be stopped."""
    with Engine.open(data_dir) as engine:
        out: dict[str, dict[int, Any]] = {}
        for path in paths:
            result = engine.query(path)
            out[path] = dict(zip(result.timestamps.tolist(), result.values.tolist(), strict=True))
        return out


def stop_and_read(server: ServerProcess, *paths: str) -> dict[str, dict[int, Any]]:
    """Stop the server cleanly, then read the series back."""
    stop_cleanly(server)
    return read_series(server.data_dir, *paths)


def dead_letters(server: ServerProcess) -> list[DeadLetter]:
    """Every record of the server's dead-letter log."""
    return list(DeadLetterLog(server.data_dir, 1 << 30).read())


# ---------------------------------------------------------------------------------------- payloads


def row(timestamp: int, device: str = DEVICE, measurements: Sequence[str] = ("s1", "s2"),
        values: Sequence[object] = (1.5, 2)) -> bytes:
    """The single-row JSON document of the ``json`` formatter."""
    return json.dumps({"device": device, "timestamp": timestamp, "measurements": list(measurements),
                       "values": list(values)}).encode()


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT, interval: float = POLL_INTERVAL) -> bool:
    """:func:`iotdb_core.testing.waiting.wait_until` with this suite's default time-out, as a bool."""
    return bool(waiting.wait_until(predicate, timeout, interval))


# ---------------------------------------------------------------------------------------- raw client


class ConnectionClosed(Exception):
    """The server closed the connection."""


class RawClient:
    """A blocking MQTT client on a plain socket: encodes with the codec, decodes replies with ``PacketReader``.

    Nothing is automatic: no keep-alive, no acknowledgements, no retries, so a test controls every byte.
    """

    def __init__(self, server: ServerProcess, level: int = 4, timeout: float = TIMEOUT) -> None:
        self.level = level
        self.timeout = timeout
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = PacketReader(level if level in (3, 4, 5) else 4)
        self._queue: list[Packet] = []
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (no DISCONNECT: an abnormal close from the server's point of view)."""
        self.sock.close()

    def send(self, *packets: Packet) -> None:
        """Encode and send ``packets`` in one write."""
        self.send_raw(b"".join(encode(packet, self.level) for packet in packets))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are."""
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> None:
        """Read once from the socket into the queue; sets :attr:`eof` when the server closed."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        self._queue.extend(self.reader.feed(data))

    def recv(self, timeout: float | None = None) -> Packet:
        """The next packet from the server; raises :class:`ConnectionClosed` or ``TimeoutError``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._queue:
            if self.eof:
                raise ConnectionClosed("the server closed the connection")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no packet from the server in time")
            self._fill(remaining)
        return self._queue.pop(0)

    def recv_available(self, timeout: float | None = None) -> list[Packet]:
        """At least one packet (waiting up to ``timeout``) and every other one already received."""
        first = self.recv(timeout)
        rest, self._queue = self._queue, []
        return [first, *rest]

    def expect(self, kind: type[Any], timeout: float | None = None) -> Any:
        """The next packet, which must be of ``kind``."""
        packet = self.recv(timeout)
        assert isinstance(packet, kind), f"expected {kind.__name__}, got {packet!r}"
        return packet

    def wait_closed(self, timeout: float | None = None) -> list[Packet]:
        """Wait until the server closes the connection; returns the packets received before."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server kept the connection open")
            try:
                self._fill(remaining)
            except TimeoutError:
                continue
        packets, self._queue = self._queue, []
        return packets

    def is_open(self, wait: float = 0.3) -> bool:
        """True when the server has not closed the connection within ``wait`` seconds (packets are kept)."""
        try:
            self._fill(wait)
        except TimeoutError:
            return True
        return not self.eof

    def connect(self, client_id: str = "raw", username: str | None = "root", password: bytes | None = b"root",
                *, clean_start: bool = True, keep_alive: int = 60, will: Will | None = None,
                properties: Properties = EMPTY_PROPERTIES) -> ConnAck:
        """Send CONNECT and return the CONNACK (whatever its code)."""
        self.send(Connect(client_id, self.level, clean_start, keep_alive, username, password, will, properties))
        return self.expect(ConnAck)

    def publish(self, payload: bytes, qos: int = 1, packet_id: int | None = 1, topic: str = TOPIC,
                *, dup: bool = False, properties: Properties = EMPTY_PROPERTIES) -> None:
        """Send one PUBLISH (no waiting)."""
        self.send(Publish(topic, payload, qos, False, dup, packet_id if qos else None, properties))

    def publish_acked(self, payload: bytes, packet_id: int = 1, topic: str = TOPIC,
                      properties: Properties = EMPTY_PROPERTIES) -> PubAck:
        """QoS 1 publish; returns its PUBACK."""
        self.publish(payload, 1, packet_id, topic, properties=properties)
        ack = self.expect(PubAck)
        assert ack.packet_id == packet_id
        return ack

    def publish_received(self, payload: bytes, packet_id: int = 1, *, dup: bool = False) -> PubRec:
        """QoS 2 publish up to its PUBREC (no PUBREL)."""
        self.publish(payload, 2, packet_id, dup=dup)
        rec = self.expect(PubRec)
        assert rec.packet_id == packet_id
        return rec

    def disconnect(self) -> None:
        """A clean DISCONNECT, then close."""
        self.send(Disconnect())
        self.close()


def connected_raw(server: ServerProcess, client_id: str = "raw", level: int = 4, **kwargs: Any) -> RawClient:
    """A raw client whose CONNECT was accepted."""
    client = RawClient(server, level)
    ack = client.connect(client_id, **kwargs)
    assert ack.reason_code == 0, ack
    return client


# ---------------------------------------------------------------------------------------- paho


class PahoPublisher:
    """A paho-mqtt client on its network thread, connected as root/root; records PUBACK reason codes.

    With ``tls`` (a client context) it connects to MQTT over TLS (``server.ssl_port``).
    """

    def __init__(self, server: ServerProcess, client_id: str, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311,
                 *, username: str | None = "root", password: str | None = "root", keepalive: int = 60,
                 will: tuple[str, bytes] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.client.enable_logger()
        if tls is not None:
            self.client.tls_set_context(tls)
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=0)
        self.connack: mqtt.ReasonCode | None = None
        self.acks: dict[int, int] = {}
        self.disconnected = False
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(server.host, server.port if tls is None else server.ssl_port, keepalive=keepalive)
        self.client.loop_start()
        assert wait_until(lambda: self.connack is not None), "no CONNACK"

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: mqtt.ReasonCode, _props: Any) -> None:
        self.connack = reason

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason: mqtt.ReasonCode, _props: Any) -> None:
        self.acks[mid] = reason.value

    def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected = True

    def publish_all(self, payloads: Sequence[bytes], qos: int = 1, topic: str = TOPIC) -> list[int]:
        """Publish every payload and wait for all of them to be sent (QoS 0) or acknowledged."""
        infos = [self.client.publish(topic, payload, qos=qos) for payload in payloads]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), f"message {info.mid} not acknowledged"
        return [info.mid for info in infos]

    def close(self) -> None:
        """Clean DISCONNECT and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------------------- write gate


class WriteGate:
    """The test plugin ``iotdb_test_gate.py`` installed for server subprocesses started with :attr:`env`.

    It holds or fails the server's writes of ``root.gate.held`` and logs every durable row, steered
    through files in :attr:`directory` (see the plugin's docstring).
    """

    DEVICE = "root.gate.held"
    TOPIC = "root/gate/held"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        site = directory / "site"
        info = site / "iotdb_test_gate-1.0.dist-info"
        info.mkdir(parents=True)
        shutil.copy(Path(__file__).with_name("iotdb_test_gate.py"), site / "iotdb_test_gate.py")
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: iotdb-test-gate\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[iotdb]\ntest_gate = iotdb_test_gate\n")
        python_path = os.pathsep.join(filter(None, (str(site), os.environ.get("PYTHONPATH"))))
        self.env = {"PYTHONPATH": python_path, "IOTDB_TEST_GATE": str(directory)}

    def hold(self) -> None:
        """Hold writes of :attr:`DEVICE` from now on."""
        (self.directory / "hold").touch()

    def wait_holding(self) -> None:
        """Wait until a write is being held."""
        assert wait_until((self.directory / "holding").exists), "no write reached the gate"

    def release(self, *, fail: bool = False) -> None:
        """Let held writes go on; with ``fail`` they raise instead of writing."""
        if fail:
            (self.directory / "fail").touch()
        (self.directory / "hold").unlink()

    def pass_writes(self) -> None:
        """Stop failing writes."""
        (self.directory / "fail").unlink(missing_ok=True)

    def written(self) -> list[tuple[str, int]]:
        """Every durable row so far, as ``(device, timestamp)`` in the order they became durable."""
        log = self.directory / "written.log"
        if not log.exists():
            return []
        lines = log.read_text(encoding="utf-8").splitlines()
        return [(device, int(timestamp)) for device, timestamp in (line.split() for line in lines)]


@pytest.fixture
def gate(tmp_path: Path, start_server: StartServer) -> Iterator[WriteGate]:
    """The write gate plugin, ready to be passed to :func:`start_server` as ``env=gate.env``.

    It depends on ``start_server`` so that it is torn down first: a write still held is released before
    the servers are stopped, which would otherwise wait for it.
    """
    gate = WriteGate(tmp_path / "gate")
    yield gate
    (gate.directory / "hold").unlink(missing_ok=True)
