"""Floods against a real ``iotdb serve``: a client pipelining thousands of SUBSCRIBEs, and storms of clients
connecting, taking each other over and vanishing. Each gets spec-conformant answers, one log line where an
operator needs one, bounded memory, and leaves the broker serving everyone else."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    Properties,
    Publish,
    SubAck,
    Subscribe,
    Subscription,
    encode,
)

from .broker_clients import PahoSubscriber
from .conftest import TIMEOUT, PahoPublisher, RawClient, StartServer, connected_raw, wait_until
from .test_mqtt_broker import BROKER, metric

FILTERS_PER_SUBSCRIBE = 5


def resident_bytes(server: ServerProcess) -> int:
    """The server process's resident set size, from ``/proc``."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def round_trip(server: ServerProcess, name: str) -> None:
    """A fresh subscriber gets what a fresh publisher sends: the broker still serves."""
    subscriber = PahoSubscriber.to(server, f"{name}-sub")
    assert subscriber.subscribe((f"probe/{name}", 1)) == [1]
    publisher = PahoPublisher(server, f"{name}-pub")
    publisher.publish_all([b"still here"], qos=1, topic=f"probe/{name}")
    assert [m.payload for m in subscriber.wait_for(1)] == [b"still here"]
    publisher.close()
    subscriber.close()


def test_a_subscribe_flood_gets_every_suback_in_order_and_stops_at_the_quota(start_server: StartServer) -> None:
    quota = 6000
    server = start_server(**BROKER, mqtt_ingest_topics="root/#", mqtt_max_subscriptions_per_client=str(quota))
    bystander = PahoSubscriber.to(server, "bystander")
    assert bystander.subscribe(("fleet/7/cmd", 1)) == [1]
    before = resident_bytes(server)
    flooder = connected_raw(server, "flooder", 5)
    packets = 2000
    flood = b"".join(
        encode(Subscribe(packet_id, tuple(Subscription(f"fleet/{packet_id}/{index}/+", 1)
                                          for index in range(FILTERS_PER_SUBSCRIBE))), 5)
        for packet_id in range(1, packets + 1))
    sender = threading.Thread(target=flooder.send_raw, args=(flood,))
    sender.start()  # pipelined: the server reads on while the SUBACKs pile up
    codes: list[int] = []
    for packet_id in range(1, packets + 1):
        ack = flooder.expect(SubAck)
        assert ack.packet_id == packet_id  # answered in order [MQTT-3.8.4-8]
        codes.extend(ack.reason_codes)
    sender.join(TIMEOUT)
    assert codes == [1] * quota + [0x97] * (packets * FILTERS_PER_SUBSCRIBE - quota)
    # A subscription the client holds can still be changed at the quota; a new one cannot.
    flooder.send(Subscribe(packets + 1, (Subscription("fleet/1/0/+", 0), Subscription("fleet/new", 1))))
    assert flooder.expect(SubAck).reason_codes == (0, 0x97)
    assert metric(server, "mqtt_subscriptions_current") == quota + 1
    # Everyone else is served meanwhile.
    publisher = PahoPublisher(server, "commander")
    publisher.publish_all([b"go"], qos=1, topic="fleet/7/cmd")
    assert [m.payload for m in bystander.wait_for(1)] == [b"go"]
    assert resident_bytes(server) - before < 64 * 1024 * 1024
    flooder.disconnect()
    assert wait_until(lambda: metric(server, "mqtt_subscriptions_current") == 1)
    lines = [line for line in server.output.splitlines() if "subscription(s) refused" in line]
    assert 1 <= len(lines) <= 2, lines  # an operator sees it, the log is not flooded
    assert "mqtt_max_subscriptions_per_client" in lines[0]
    assert "Traceback" not in server.output
    publisher.close()
    bystander.close()


def _storm(server: ServerProcess, seed: int, cycles: int, ids: list[str], errors: list[str]) -> None:
    """Connect and leave ``cycles`` times: DISCONNECT, abrupt close, or a CONNECT cut off half way.

    A connection may be taken over by another thread's at any time after its CONNACK, so a send that finds it
    closed is part of the storm; a CONNECT that is not accepted is an error."""
    rng = random.Random(seed)
    for _ in range(cycles):
        client_id = rng.choice(ids)
        level = rng.choice((4, 5))
        way = rng.random()
        client = RawClient(server, level)
        try:
            if way < 0.2:
                data = encode(Connect(client_id, level, True, 30, "root", b"root"), level)
                client.send_raw(data[: len(data) // 2])
                continue
            persistent = level == 5 and rng.random() < 0.5
            properties = Properties(session_expiry_interval=60) if persistent else Properties()
            ack = client.connect(client_id, clean_start=not persistent, properties=properties)
            if not (isinstance(ack, ConnAck) and ack.reason_code == 0):
                errors.append(f"{client_id}: {ack!r}")
                continue
            try:
                client.send(Subscribe(1, (Subscription(f"storm/{client_id}/#", 1),)))
                if way < 0.6:
                    client.send(Publish(f"storm/{client_id}/x", b"bye", 0), Disconnect())
            except OSError:
                pass  # taken over meanwhile
        except Exception as exc:  # reported by the test, not lost in a thread
            errors.append(f"{client_id}: {exc!r}")
        finally:
            client.close()


def test_a_reconnect_storm_leaves_the_broker_serving_with_bounded_memory(start_server: StartServer) -> None:
    server = start_server(**BROKER, mqtt_ingest_topics="root/#")
    round_trip(server, "before")
    before = resident_bytes(server)
    ids = [f"storm-{index}" for index in range(25)]  # few ids: takeovers all the time
    errors: list[str] = []
    threads = [threading.Thread(target=_storm, args=(server, seed, 150, ids, errors)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 6)
        assert not thread.is_alive(), "the storm did not finish in time"
    assert errors == []
    assert wait_until(lambda: metric(server, "mqtt_connections_current") == 0, timeout=TIMEOUT * 2)
    assert metric(server, "mqtt_connections_total") >= 8 * 150 * 0.6
    round_trip(server, "after")
    assert resident_bytes(server) - before < 64 * 1024 * 1024
    assert "Traceback" not in server.output
