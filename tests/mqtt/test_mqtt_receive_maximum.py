"""MQTT 5 Receive Maximum: announced in CONNACK and enforced with DISCONNECT 0x93."""

from __future__ import annotations

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Disconnect, PubComp, Publish, PubRec, PubRel, encode
from iotdb_mqtt.protocol import RECEIVE_MAXIMUM

from .conftest import DEVICE, TOPIC, RawClient, StartServer, WriteGate, connected_raw, row, stop_and_read, wait_until

S1 = f"{DEVICE}.s1"


def _burst(count: int, qos: int, device: str = DEVICE) -> bytes:
    """``count`` publishes with packet ids 1.. and timestamps 0.., encoded as one write."""
    return b"".join(encode(Publish(TOPIC, row(number, device), qos, False, False, number + 1), 5)
                    for number in range(count))


def test_qos2_in_flight_until_pubcomp_count_against_receive_maximum(server: ServerProcess) -> None:
    client = RawClient(server, 5)
    assert client.connect("counted").properties.receive_maximum == RECEIVE_MAXIMUM
    client.send_raw(_burst(RECEIVE_MAXIMUM, 2))
    received = [client.expect(PubRec) for _ in range(RECEIVE_MAXIMUM)]
    assert {rec.packet_id for rec in received} == set(range(1, RECEIVE_MAXIMUM + 1))
    # Every QoS 2 message awaits its PUBREL: the quota is full until one is released.
    client.send(PubRel(1))
    assert client.expect(PubComp) == PubComp(1)
    assert client.publish_acked(row(RECEIVE_MAXIMUM), 1).reason_code == 0
    client.publish(row(RECEIVE_MAXIMUM + 1), 2, 1)
    assert client.expect(PubRec) == PubRec(1)
    client.publish(row(RECEIVE_MAXIMUM + 2), 1, RECEIVE_MAXIMUM + 1)
    assert [(type(p), p.reason_code) for p in client.wait_closed()] == [(Disconnect, 0x93)]
    written = stop_and_read(server, S1)[S1]
    assert sorted(written) == list(range(RECEIVE_MAXIMUM + 2))


def test_qos1_publishes_beyond_receive_maximum_close_the_connection(start_server: StartServer,
                                                                   gate: WriteGate) -> None:
    server = start_server(env=gate.env)
    gate.hold()  # nothing is acknowledged: every publish stays in flight
    client = connected_raw(server, "greedy", 5)
    client.send_raw(_burst(RECEIVE_MAXIMUM + 1, 1, WriteGate.DEVICE))
    assert [(type(p), p.reason_code) for p in client.wait_closed()] == [(Disconnect, 0x93)]
    gate.release()
    # What was received within the quota is written, the publish beyond it is not.
    assert wait_until(lambda: len(gate.written()) == RECEIVE_MAXIMUM)
    written = stop_and_read(server, f"{WriteGate.DEVICE}.s1")[f"{WriteGate.DEVICE}.s1"]
    assert sorted(written) == list(range(RECEIVE_MAXIMUM))
