"""Helpers for the scale-out tests: a real Mosquitto as the upstream broker, a publisher that knows exactly which
messages Mosquitto acknowledged, and reading what each ``iotdb serve`` node stored.

Mosquitto runs with persistence on, on a free loopback port, from a configuration file the test writes; it is
stopped (SIGTERM, so it saves its database) or killed after the test. Every wait is bounded.
"""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt.conftest import TIMEOUT, start_server, wait_until  # the same subprocess fixture as the MQTT tests
from rest.conftest import RestClient

from iotdb_core.testing.server import ServerProcess

__all__ = ["TIMEOUT", "Mosquitto", "Publisher", "make_certificates", "mosquitto", "start_server",
           "stored_timestamps", "wait_until"]

TOPIC = "root/sg/d1"
DEVICE = "root.sg.d1"

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One Mosquitto process with persistence in its own directory; :meth:`restart` keeps port and database."""

    def __init__(self, directory: Path, listener: str = "", allow_anonymous: bool = True) -> None:
        """``listener`` adds lines to the listener (TLS files); without anonymous access, :meth:`add_user`."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.passwords = directory / "passwords"
        self.passwords.touch()
        self.config.write_text(
            f"user {getpass.getuser()}\n"  # started as root, Mosquitto would switch to a user who cannot write here
            "per_listener_settings false\n"
            f"listener {self.port} 127.0.0.1\n"
            f"{listener}"
            f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
            + ("" if allow_anonymous else f"password_file {self.passwords}\n") +
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"   # no bound: a node that is away finds every message it missed
            "max_inflight_messages 0\n"
            f"log_dest file {directory}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def add_user(self, name: str, password: str) -> None:
        """Add a user to the password file (before :meth:`start`)."""
        subprocess.run(["mosquitto_passwd", "-b", str(self.passwords), name, password], check=True,
                       capture_output=True, timeout=TIMEOUT)

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._listening), f"mosquitto did not start:\n{self.log}"
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"mosquitto exited:\n{self.log}"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False


    @property
    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its database and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with openssl: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / name for name in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                                "server.pem"))
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], check=True, capture_output=True, timeout=TIMEOUT)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
            "-extfile", str(extensions), "-out", str(cert))
    return ca, cert, key


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


def payload(timestamp: int, value: float | None = None) -> bytes:
    value = float(timestamp) + 0.5 if value is None else value
    return json.dumps({"device": DEVICE, "timestamp": timestamp, "measurements": ["s"], "values": [value]}).encode()


class Publisher:
    """Publishes ``root/sg/d1`` messages at QoS 1 through paho on its network thread, and records which ones
    Mosquitto acknowledged. After a broken connection paho reconnects and resends what was not acknowledged."""

    def __init__(self, broker: Mosquitto, client_id: str = "publisher", max_inflight: int = 100) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1)
        self._acked_mids: set[int] = set()
        self._mids: dict[int, int] = {}
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        # Runs on paho's thread, which holds paho's own lock: never wait for the publishing thread here.
        with self._lock:
            self._acked_mids.add(mid)

    def publish(self, timestamps: range, pace_s: float = 0.0) -> None:
        """Queue every message (paho keeps at most ``max_inflight`` unacknowledged at a time); message ids are
        not reused, so at most 65535 messages per publisher."""
        for timestamp in timestamps:
            info = self.client.publish(TOPIC, payload(timestamp), qos=1)
            with self._lock:
                self._mids[info.mid] = timestamp
            if pace_s:
                time.sleep(pace_s)

    def publish_in_background(self, timestamps: range, pace_s: float = 0.0) -> threading.Thread:
        thread = threading.Thread(target=self.publish, args=(timestamps, pace_s), daemon=True)
        thread.start()
        return thread

    def acknowledged(self) -> set[int]:
        with self._lock:
            return {self._mids[mid] for mid in self._acked_mids if mid in self._mids}

    def wait_acknowledged(self, count: int, timeout: float = 30.0) -> set[int]:
        assert wait_until(lambda: len(self.acknowledged()) >= count, timeout), \
            f"Mosquitto acknowledged {len(self.acknowledged())} of {count} messages"
        return self.acknowledged()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def upstream_node(start: Any, name: str, broker: Mosquitto, **properties: object) -> ServerProcess:
    """An ``iotdb serve`` node ingesting ``root/#`` from ``broker`` in share group ``g``; waits for its SUBACK."""
    settings: dict[str, object] = {
        "mqtt_upstream_uris": broker.uri, "mqtt_upstream_topics": "root/#", "mqtt_upstream_share_group": "g",
        "mqtt_upstream_reconnect_max_in_ms": 1000, "mqtt_ws_port": -1,
    }
    settings.update(properties)
    node: ServerProcess = start(name, **settings)
    assert wait_until(lambda: "subscribed at" in node.output), f"node {name} did not subscribe:\n{node.output}"
    return node


def stored_timestamps(node: ServerProcess, device: str = DEVICE) -> list[int]:
    """Every timestamp of ``<device>.s`` on ``node`` (over REST, while it runs), duplicates kept."""
    body = RestClient(node).query(f"select s from {device}", row_limit=1_000_000)
    return list(body.get("timestamps") or [])
