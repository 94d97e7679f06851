"""Connection rules of a session, in process and deterministic: time-outs, takeover, QoS 2 resends, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_core.storage.errors import StorageFullError
from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    Publish,
    PubRec,
    PubRel,
    Subscribe,
    Subscription,
)
from iotdb_mqtt.ingest import STORED, IngestedBatch
from iotdb_mqtt.protocol import RECEIVE_MAXIMUM

from .harness import Client, Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_a_silent_client_is_closed_after_one_and_a_half_keep_alives(host: Host) -> None:
    client = Client(host, 5)
    client.send(Connect(client_id="k", protocol_level=5, keep_alive=10, username="root", password=b"pw"))
    client.session.authenticated(True)
    client.received()
    client.session.check_timeouts(14.9, connect_timeout=10.0)
    assert not client.output.closed
    client.session.check_timeouts(15.1, connect_timeout=10.0)
    [disconnect] = client.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x8D and client.output.closed


def test_a_socket_without_connect_is_dropped_after_the_connect_timeout(host: Host) -> None:
    client = Client(host, 4)
    client.session.check_timeouts(9.0, connect_timeout=10.0)
    assert not client.output.closed
    client.session.check_timeouts(10.5, connect_timeout=10.0)
    assert client.output.closed and client.output.aborted


def test_pingreq_is_answered(host: Host) -> None:
    client = Client(host, 4)
    client.connect("p")
    client.send(PingReq())
    assert client.received() == [PingResp()]


def test_a_second_connection_of_a_client_id_takes_over(host: Host) -> None:
    first = Client(host, 5)
    first.connect("same")
    second = Client(host, 5)
    assert isinstance(second.connect("same"), ConnAck)
    [disconnect] = first.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x8E and first.output.closed


def test_a_qos2_resend_is_not_written_again_and_its_pubrec_waits_for_the_first_write(host: Host) -> None:
    first = Client(host, 5)
    first.connect("q2", clean_start=False, properties=Properties(session_expiry_interval=60))
    first.send(Publish("t", b"x", qos=2, packet_id=9))
    [first_batch] = first.output.submitted
    first.session.batch_logged(first_batch, IngestedBatch([STORED], None), None)
    first.session.connection_lost()  # dropped while its write waits for durability
    again = Client(host, 5)
    again.connect("q2", clean_start=False, properties=Properties(session_expiry_interval=60))
    again.send(Publish("t", b"x", qos=2, packet_id=9, dup=True))
    [resend_batch] = again.output.submitted
    assert [p.write for p in resend_batch.publishes] == [False]
    again.complete_writes()
    assert [p for p in again.received() if isinstance(p, PubRec)] == []  # the first write is not durable yet
    batch, ingested = first.output.awaiting.pop()
    first.session.batch_durable(batch, ingested.outcomes, None)
    assert [type(p) for p in again.received()] == [PubRec]
    again.send(PubRel(9))
    assert [type(p).__name__ for p in again.received()] == ["PubComp"]


def test_more_than_receive_maximum_unacknowledged_publishes_is_a_protocol_error(host: Host) -> None:
    client = Client(host, 5)
    client.connect("flood")
    client.send(*(Publish("t", b"x", qos=1, packet_id=index % 65535 + 1) for index in range(RECEIVE_MAXIMUM + 1)))
    [disconnect] = [p for p in client.received() if isinstance(p, Disconnect)]
    assert disconnect.reason_code == 0x93
    assert sum(len(batch.publishes) for batch in client.output.submitted) == RECEIVE_MAXIMUM


def test_publishes_pipelined_behind_a_connect_wait_for_its_password_check(host: Host) -> None:
    client = Client(host, 4)
    client.send(Connect(client_id="early", username="root", password=b"bad"), Publish("t", b"x"))
    client.session.authenticated(False)
    [connack] = client.received()
    assert isinstance(connack, ConnAck) and connack.reason_code == 4
    assert client.output.submitted == [] and client.output.closed


def test_a_disconnect_closes_only_after_the_publishes_before_it_are_routed_and_acknowledged(host: Host) -> None:
    client = Client(host, 4)
    client.connect("self")
    client.send(Subscribe(1, (Subscription("echo", 1),)))
    client.received()
    client.send(Publish("echo", b"a", qos=1, packet_id=5), Disconnect(), PingReq())
    assert not client.output.closed and client.output.paused
    client.complete_writes()
    received = client.received()
    assert [type(p) for p in received] == [Publish, PubAck]  # the copy, then the acknowledgement; no PINGRESP
    assert client.output.closed


def test_a_write_failing_on_a_full_disk_is_not_acknowledged_and_disconnects_with_0x97(host: Host) -> None:
    client = Client(host, 5)
    client.connect("full")
    client.send(Publish("t", b"x", qos=1, packet_id=3))
    [batch] = client.output.submitted
    client.session.batch_logged(batch, None, StorageFullError("no space left on device"))
    [disconnect] = client.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x97
    assert client.output.closed
