"""``mqtt_event_loop``: the server runs on asyncio's loop or on uvloop, with the same behaviour on both."""

from __future__ import annotations

import importlib.util

import paho.mqtt.client as mqtt
import pytest

from iotdb_mqtt.codec import Publish, SubAck, Subscribe, Subscription

from .conftest import DEVICE, PahoPublisher, RawClient, StartServer, connected_raw, row, stop_and_read

S1 = f"{DEVICE}.s1"
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.mark.parametrize("choice", [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed")),
])
def test_publishes_are_stored_and_routed_on_either_loop(start_server: StartServer, choice: str) -> None:
    server = start_server(mqtt_event_loop=choice)
    assert f"event loop: {choice}" in server.output
    subscriber = connected_raw(server, "watcher")
    subscriber.send(Subscribe(1, (Subscription("root/sg/#", 0),)))
    assert subscriber.expect(SubAck).reason_codes == (0,)
    publisher = PahoPublisher(server, f"on-{choice}", mqtt.MQTTv5)
    mids = publisher.publish_all([row(t) for t in range(20)])
    assert [publisher.acks[mid] for mid in mids] == [0] * 20
    assert [received(subscriber).payload for _ in range(20)] == [row(t) for t in range(20)]
    publisher.close()
    assert stop_and_read(server, S1)[S1] == {t: 1.5 for t in range(20)}


def test_auto_names_the_loop_it_chose(start_server: StartServer) -> None:
    server = start_server()
    assert f"event loop: {'uvloop' if HAS_UVLOOP else 'asyncio'}" in server.output


def received(client: RawClient) -> Publish:
    """The next packet, which must be a PUBLISH."""
    publish: Publish = client.expect(Publish)
    return publish
