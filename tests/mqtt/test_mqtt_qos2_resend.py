"""QoS 2 resends after a reconnect or a takeover: no PUBREC before the first receipt's write is durable.

The write of the first receipt is held by the test gate plugin (see iotdb_test_gate.py) on one of two
ingest threads, so the resend's connection gets its own thread and would be answered at once if it did
not wait for that write.
"""

from __future__ import annotations

import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Disconnect, Properties, PubAck, PubComp, PubRec, PubRel

from .conftest import DEVICE, RawClient, StartServer, WriteGate, connected_raw, row, stop_and_read, wait_until

HELD = f"{WriteGate.DEVICE}.s1"
S1 = f"{DEVICE}.s1"
CLIENT = "resender"
SESSION = Properties(session_expiry_interval=60)
#: How long a reply that must not come is waited for.
QUIET_S = 0.5


def _first_receipt_held(start_server: StartServer, gate: WriteGate, *,
                        takeover: bool) -> tuple[ServerProcess, RawClient]:
    """Publish QoS 2 id 7 while its write is held, end that connection and resend on a new one.

    Returns the server and the resending client, once no PUBREC came for the resend.
    """
    server = start_server(env=gate.env, mqtt_handler_pool_size=2)
    gate.hold()
    first = connected_raw(server, CLIENT, 5, clean_start=False, properties=SESSION)
    first.publish(row(1, WriteGate.DEVICE), 2, 7)
    gate.wait_holding()
    if not takeover:
        first.close()
    second = RawClient(server, 5)
    ack = second.connect(CLIENT, clean_start=False, properties=SESSION)
    assert (ack.reason_code, ack.session_present) == (0, True)
    if takeover:
        assert [(type(p), p.reason_code) for p in first.wait_closed()] == [(Disconnect, 0x8E)]
    second.publish(row(1, WriteGate.DEVICE), 2, 7, dup=True)
    with pytest.raises(TimeoutError):
        second.recv(timeout=QUIET_S)
    return server, second


@pytest.mark.parametrize("takeover", [False, True], ids=["reconnect", "takeover"])
def test_qos2_resend_waits_for_the_first_write_and_keeps_the_ack_order(
        start_server: StartServer, gate: WriteGate, takeover: bool) -> None:
    server, client = _first_receipt_held(start_server, gate, takeover=takeover)
    # A later QoS 1 publish is written at once, but its PUBACK must not overtake the pending PUBREC.
    client.publish(row(2), 1, 8)
    assert wait_until(lambda: (DEVICE, 2) in gate.written())
    with pytest.raises(TimeoutError):
        client.recv(timeout=QUIET_S)
    gate.release()
    assert client.expect(PubRec) == PubRec(7)
    assert client.expect(PubAck) == PubAck(8)
    client.send(PubRel(7))
    assert client.expect(PubComp) == PubComp(7)
    client.disconnect()
    data = stop_and_read(server, HELD, S1)
    assert data == {HELD: {1: 1.5}, S1: {2: 1.5}}
    assert gate.written().count((WriteGate.DEVICE, 1)) == 1


def test_qos2_resend_whose_first_write_failed_is_not_acknowledged_then_written(
        start_server: StartServer, gate: WriteGate) -> None:
    server, client = _first_receipt_held(start_server, gate, takeover=False)
    gate.release(fail=True)
    # The resend was not stored: no PUBREC, the connection is closed, and the id is forgotten.
    assert [(type(p), p.reason_code) for p in client.wait_closed()] == [(Disconnect, 0x89)]
    assert gate.written() == []
    gate.pass_writes()
    again = RawClient(server, 5)
    ack = again.connect(CLIENT, clean_start=False, properties=SESSION)
    assert (ack.reason_code, ack.session_present) == (0, True)
    assert again.publish_received(row(1, WriteGate.DEVICE), 7, dup=True) == PubRec(7)
    again.send(PubRel(7))
    assert again.expect(PubComp) == PubComp(7)
    again.disconnect()
    assert stop_and_read(server, HELD)[HELD] == {1: 1.5}
    assert gate.written() == [(WriteGate.DEVICE, 1)]
