"""Subscribing test clients: paho-mqtt collecting what it receives, and mosquitto_sub as a subprocess."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.subscribeoptions import SubscribeOptions

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, wait_until


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class PahoSubscriber:
    """A paho client on its network thread that records every message and every SUBACK."""

    def __init__(self, host: str, port: int, client_id: str, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311,
                 *, username: str | None = "root", password: str | None = "root", clean: bool = True,
                 session_expiry: int | None = None) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                  clean_session=clean if protocol != mqtt.MQTTv5 else None)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: list[Received] = []
        self.subacks: dict[int, list[int]] = {}
        self.connack: Any = None
        self.session_present: bool | None = None
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        properties = None
        if protocol == mqtt.MQTTv5 and session_expiry is not None:
            properties = PahoProperties(mqtt.PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry
        kwargs: dict[str, Any] = {"keepalive": 60, "properties": properties}
        if protocol == mqtt.MQTTv5:
            kwargs["clean_start"] = clean
        self.client.connect(host, port, **kwargs)
        self.client.loop_start()
        assert wait_until(lambda: self.connack is not None), "no CONNACK"
        if self.connack.is_failure:
            self.client.loop_stop()
            raise AssertionError(f"connection refused: {self.connack}")

    @classmethod
    def to(cls, server: ServerProcess, client_id: str, **kwargs: Any) -> PahoSubscriber:
        return cls(server.host, server.port, client_id, **kwargs)

    def _on_connect(self, _client: Any, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connack = reason

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, message.qos, bool(message.retain)))

    def _on_subscribe(self, _client: Any, _userdata: Any, mid: int, codes: Sequence[Any], _props: Any) -> None:
        self.subacks[mid] = [code.value for code in codes]

    def subscribe(self, *filters: tuple[str, int], no_local: bool = False) -> list[int]:
        """Subscribe and wait for the SUBACK; returns its codes."""
        if self.client.protocol == mqtt.MQTTv5:
            topics: list[Any] = [(name, SubscribeOptions(qos=qos, noLocal=no_local)) for name, qos in filters]
        else:
            topics = list(filters)
        _result, mid = self.client.subscribe(topics)
        assert wait_until(lambda: mid in self.subacks), "no SUBACK"
        return self.subacks[mid]

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Received]:
        wait_until(lambda: len(self.messages) >= count, timeout)
        return self.received()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mosquitto_sub(port: int, topic: str, count: int, *, version: str = "mqttv311", user: str = "root",
                  password: str = "root", extra: Sequence[str] = ()) -> subprocess.Popen[str]:
    """Start ``mosquitto_sub`` printing ``topic payload`` lines until ``count`` messages arrived."""
    return subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", version, "-u", user, "-P", password,
         "-t", topic, "-C", str(count), "-v", "-W", str(int(TIMEOUT)), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mosquitto_pub(port: int, topic: str, message: str, *, qos: int = 1, version: str = "mqttv311",
                  retain: bool = False, user: str = "root", password: str = "root") -> None:
    """Publish one message with ``mosquitto_pub`` and require success."""
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", version, "-u", user, "-P", password,
               "-t", topic, "-m", message, "-q", str(qos)]
    if retain:
        command.append("-r")
    subprocess.run(command, check=True, timeout=TIMEOUT, capture_output=True)
