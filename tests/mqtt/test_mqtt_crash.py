"""Durability of acknowledgements under SIGKILL and SIGTERM during load, and startup failures."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Disconnect, PubAck, Publish, encode

from .conftest import TIMEOUT, ConnectionClosed, RawClient, StartServer, read_series, row, stop_cleanly

CLIENTS = 4
WINDOW = 64


class LoadClient(threading.Thread):
    """Publishes QoS 1 rows with distinct timestamps as fast as acknowledgements allow.

    Every PUBACK moves its message's timestamp to :attr:`acked`; the thread ends when the server
    closes the connection (or dies) or :attr:`stop` is set.
    """

    def __init__(self, server: ServerProcess, index: int, level: int, first_timestamp: int,
                 window: int = WINDOW) -> None:
        super().__init__(name=f"load-{index}", daemon=True)
        self.server = server
        self.window = window
        self.index = index
        self.level = level
        self.device = f"root.load.c{index}"
        self.next_timestamp = first_timestamp
        self.acked: list[int] = []
        self.refused: list[tuple[int, int]] = []
        self.disconnects: list[int] = []
        self.stop = threading.Event()
        self.started_publishing = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except (ConnectionClosed, OSError):
            pass  # the server went away: whatever was acknowledged is recorded
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        client = RawClient(self.server, self.level)
        try:
            ack = client.connect(f"load-{self.index}")
            assert ack.reason_code == 0, ack
            # An MQTT 5 client keeps to the Receive Maximum the server announced.
            window = min(self.window, ack.properties.receive_maximum or self.window)
            inflight: dict[int, int] = {}
            packet_id = 0
            while not self.stop.is_set():
                burst = []
                while len(inflight) < window:
                    packet_id = packet_id % 65535 + 1
                    timestamp = self.next_timestamp
                    self.next_timestamp += 1
                    inflight[packet_id] = timestamp
                    payload = row(timestamp, self.device, ("v",), (timestamp,))
                    burst.append(encode(Publish("load/topic", payload, 1, False, False, packet_id), self.level))
                client.send_raw(b"".join(burst))
                self.started_publishing.set()
                for packet in client.recv_available(TIMEOUT):
                    if isinstance(packet, PubAck):
                        timestamp = inflight.pop(packet.packet_id)
                        if packet.reason_code:
                            self.refused.append((timestamp, packet.reason_code))
                        else:
                            self.acked.append(timestamp)
                    elif isinstance(packet, Disconnect):
                        self.disconnects.append(packet.reason_code)
                    else:
                        raise AssertionError(f"unexpected {packet!r}")
        finally:
            client.close()


def _run_load(server: ServerProcess, first_timestamp: int, kill_after: float, signum: int, *,
              clients: int = CLIENTS, window: int = WINDOW) -> list[LoadClient]:
    """Run ``clients`` load clients (MQTT 5 and 3.1.1 alternately), then send ``signum`` after ``kill_after`` s."""
    load = [LoadClient(server, index, 4 if index % 2 else 5, first_timestamp, window) for index in range(clients)]
    for client in load:
        client.start()
    for client in load:
        assert client.started_publishing.wait(TIMEOUT), "a load client never published"
    time.sleep(kill_after)
    if signum == signal.SIGKILL:
        server.kill()
    else:
        assert server.process is not None
        server.process.send_signal(signum)
        # A graceful stop finishes what was received, but must not wait for publishers to stop sending.
        code = server.process.wait(TIMEOUT)
        assert code == 0, server.output
    for client in load:
        client.join(TIMEOUT * 2)
        assert not client.is_alive(), f"{client.name} did not finish"
        assert client.error is None, client.error
        assert not client.refused, client.refused
        assert 0x93 not in client.disconnects, f"{client.name} exceeded the Receive Maximum"
    return load


def _assert_all_acked_stored(data_dir: Path, acked: dict[str, list[int]]) -> None:
    paths = [f"{device}.v" for device in acked]
    stored = read_series(data_dir, *paths)
    for device, timestamps in acked.items():
        series = stored[f"{device}.v"]
        missing = sorted(set(timestamps) - set(series))
        assert not missing, f"{len(missing)} acknowledged messages of {device} lost, first {missing[:10]}"
        assert all(series[t] == t for t in timestamps)


@pytest.mark.slow
def test_sigkill_during_qos1_load_loses_no_acknowledged_message(start_server: StartServer) -> None:
    rng = random.Random(20240611)
    acked: dict[str, list[int]] = {f"root.load.c{index}": [] for index in range(CLIENTS)}
    rounds = 3
    for number in range(rounds):
        server = start_server("crash")
        clients = _run_load(server, number * 10_000_000, rng.uniform(0.3, 1.2), signal.SIGKILL)
        for client in clients:
            acked[client.device].extend(client.acked)
        assert sum(len(client.acked) for client in clients) > 0, "nothing was acknowledged before the kill"
    # Recovery on a last restart, then a clean stop so the engine can read the directory.
    server = start_server("crash")
    stop_cleanly(server)
    _assert_all_acked_stored(server.data_dir, acked)


@pytest.mark.slow
def test_sigterm_during_load_acknowledged_messages_are_stored_and_exit_0(start_server: StartServer) -> None:
    server = start_server()
    clients = _run_load(server, 0, 0.8, signal.SIGTERM)
    assert "Traceback" not in server.output
    # MQTT 5 clients were told why: Server shutting down.
    assert all(client.disconnects == [0x8B] for client in clients if client.level == 5)
    assert sum(len(client.acked) for client in clients) > 0
    _assert_all_acked_stored(server.data_dir, {client.device: client.acked for client in clients})


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_deep_pipelines_past_the_backpressure_bound_lose_no_acknowledged_message(start_server: StartServer,
                                                                                  signum: int) -> None:
    """20000 unacknowledged publishes per client: reading pauses and resumes while the signal arrives.

    The MQTT 5 clients keep to the Receive Maximum of 5000 instead, which stays within the backlog bound.

    SIGTERM must end the server within the time-out although the clients never stop sending (the
    backlog draining must not resume reading once shutdown began).
    """
    server = start_server()
    clients = _run_load(server, 0, 1.5, signum, window=20000)
    assert sum(len(client.acked) for client in clients) > 0
    if signum == signal.SIGKILL:
        server = start_server()
        stop_cleanly(server)
    _assert_all_acked_stored(server.data_dir, {client.device: client.acked for client in clients})


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=TIMEOUT * 3, check=False,
                          stdin=subprocess.DEVNULL)


def test_port_in_use_is_one_clear_line_and_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        config = ServerProcess(tmp_path / "busy", properties={"mqtt_port": port}).config_path
        done = _serve(config)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
    assert errors[0].startswith("iotdb serve: error:")
    assert str(port) in errors[0] and "in use" in errors[0]


def test_second_server_on_the_same_data_directory_fails_clearly(start_server: StartServer, tmp_path: Path) -> None:
    first = start_server("shared")
    config = ServerProcess(tmp_path / "other", properties={"data_dir": first.data_dir}).config_path
    done = _serve(config)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "iotdb serve: error:" in output
    stop_cleanly(first)


@pytest.mark.slow
def test_sigterm_ends_even_while_a_client_floods_faster_than_the_writes(start_server: StartServer) -> None:
    """Backpressure must not resume reading a connection once shutdown began, or a flood delays exit forever."""
    server = start_server()
    client = RawClient(server, 4)
    assert client.connect("flood").reason_code == 0
    chunk = b"".join(encode(Publish("flood/topic", row(t, "root.flood.d", ("v",), (t,)), 0), 4)
                     for t in range(2000))
    stop = threading.Event()

    def flood() -> None:
        try:
            while not stop.is_set():
                client.send_raw(chunk)
        except OSError:
            pass

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    time.sleep(1.5)
    assert server.process is not None
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(TIMEOUT)
    finally:
        stop.set()
        client.close()
        flooder.join(TIMEOUT)
    assert code == 0, server.output
    assert time.monotonic() - signalled < TIMEOUT
