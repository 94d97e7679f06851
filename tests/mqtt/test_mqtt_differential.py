"""The same client script against Mosquitto and against ``iotdb serve``: the same observable result.

Mosquitto is the reference for broker behaviour where the specification leaves room; each scenario records what
every subscriber received (topic, payload, QoS, retain flag) and the SUBACK codes, and both brokers must agree.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from .broker_clients import PahoSubscriber, Received
from .conftest import TIMEOUT, PahoPublisher, StartServer, wait_until

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                                reason="Mosquitto (Debian package mosquitto) is not installed")

Broker = tuple[str, int]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        assert time.monotonic() < deadline and process.poll() is None, "mosquitto did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    process.terminate()
    process.wait(TIMEOUT)


@pytest.fixture
def iotdb(start_server: StartServer) -> Broker:
    server = start_server(mqtt_allow_anonymous="true", mqtt_sys_interval="0")
    return server.host, server.port


class _Server:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port


Observed = dict[str, object]


def publisher(broker: Broker, client_id: str, protocol: mqtt.MQTTProtocolVersion) -> PahoPublisher:
    return PahoPublisher(_Server(*broker), client_id, protocol, username=None, password=None)  # type: ignore[arg-type]


def subscriber(broker: Broker, client_id: str, protocol: mqtt.MQTTProtocolVersion, **kwargs: object) -> PahoSubscriber:
    return PahoSubscriber(broker[0], broker[1], client_id, protocol, username=None, **kwargs)  # type: ignore[arg-type]


def _settle(subscribers: list[PahoSubscriber], expected: int) -> list[list[Received]]:
    wait_until(lambda: sum(len(s.received()) for s in subscribers) >= expected, TIMEOUT)
    time.sleep(0.3)  # anything extra would arrive now
    return [sorted(s.received(), key=lambda m: (m.topic, m.payload)) for s in subscribers]


def wildcards_qos_and_retained(broker: Broker, protocol: mqtt.MQTTProtocolVersion) -> Observed:
    pub = publisher(broker, "diff-pub", protocol)
    pub.client.publish("d/early/t", b"retained-early", qos=1, retain=True).wait_for_publish(TIMEOUT)
    levels = subscriber(broker, "diff-levels", protocol)
    hashes = subscriber(broker, "diff-hash", protocol)
    codes = [levels.subscribe(("d/+/t", 1)), hashes.subscribe(("d/#", 2)), hashes.subscribe(("+/x", 0))]
    for index, (topic, qos) in enumerate([("d/a/t", 0), ("d/b/t", 1), ("d/c/t", 2), ("d", 1), ("$d/x", 1),
                                          ("q/x", 2), ("d/a/t/deeper", 1)]):
        pub.client.publish(topic, f"m{index}".encode(), qos=qos).wait_for_publish(TIMEOUT)
    pub.client.publish("d/early/t", b"", qos=1, retain=True).wait_for_publish(TIMEOUT)
    late = subscriber(broker, "diff-late", protocol)
    codes.append(late.subscribe(("d/#", 1)))
    received = _settle([levels, hashes, late], 14)
    for client in (pub, levels, hashes, late):
        client.close()
    return {"suback": codes, "received": received}


def persistent_session(broker: Broker, protocol: mqtt.MQTTProtocolVersion) -> Observed:
    extra: dict[str, object] = {"clean": False}
    if protocol == mqtt.MQTTv5:
        extra["session_expiry"] = 300
    away = subscriber(broker, "diff-away", protocol, **extra)
    away.subscribe(("s/#", 1))
    away.close()
    time.sleep(0.3)
    pub = publisher(broker, "diff-pub2", protocol)
    for index, qos in enumerate((1, 0, 2, 1)):
        pub.client.publish("s/x", f"p{index}".encode(), qos=qos).wait_for_publish(TIMEOUT)
    back = subscriber(broker, "diff-away", protocol, **extra)
    received = _settle([back], 3)
    present = back.session_present
    back.close()
    pub.close()
    return {"session_present": present, "received": received}


SCENARIOS: dict[str, Callable[[Broker, mqtt.MQTTProtocolVersion], Observed]] = {
    "wildcards-qos-retained": wildcards_qos_and_retained,
    "persistent-session": persistent_session,
}


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v311", "v5"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_iotdb_answers_as_mosquitto_does(mosquitto: Broker, iotdb: Broker, scenario: str,
                                         protocol: mqtt.MQTTProtocolVersion) -> None:
    run = SCENARIOS[scenario]
    reference = run(mosquitto, protocol)
    ours = run(iotdb, protocol)
    assert ours == reference
    assert any(reference["received"])  # type: ignore[arg-type]
