"""CONNECT handling, sessions and time-outs: authentication, client ids, takeover, keep alive, wills."""

from __future__ import annotations

import json
import time

import pytest

from iotdb_core.testing.server import ServerProcess
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
    SubAck,
    Subscribe,
    Subscription,
    Will,
)

from .conftest import (
    DEVICE,
    TIMEOUT,
    RawClient,
    StartServer,
    assert_alive,
    connected_raw,
    row,
    stop_and_read,
)

S1 = f"{DEVICE}.s1"


# ---------------------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(("level", "code"), [(3, 4), (4, 4), (5, 0x86)])
def test_bad_credentials_are_refused_and_closed(server: ServerProcess, level: int, code: int) -> None:
    bystander = connected_raw(server, "bystander", 4)
    cases = {"wrong password": ("root", b"wrong"), "no password": ("root", None), "unknown user": ("nobody", b"root")}
    for number, (case, (username, password)) in enumerate(cases.items()):
        client = RawClient(server, level)
        ack = client.connect(f"intruder-{number}", username, password)
        assert ack.reason_code == code, case
        assert not ack.session_present
        if level == 5:
            assert ack.properties.reason_string, case
        assert client.wait_closed() == [], case
        # Other clients are still served.
        assert bystander.publish_acked(row(number), number + 1).reason_code == 0
    bystander.disconnect()
    assert stop_and_read(server, S1)[S1] == {0: 1.5, 1: 1.5, 2: 1.5}


def test_anonymous_refused_by_default(server: ServerProcess) -> None:
    for level, code in ((4, 4), (5, 0x86)):
        client = RawClient(server, level)
        assert client.connect(f"anon-{level}", None, None).reason_code == code
        assert client.wait_closed() == []


def test_anonymous_allowed_when_configured(start_server: StartServer) -> None:
    server = start_server(mqtt_allow_anonymous="true")
    client = connected_raw(server, "anon", 4, username=None, password=None)
    assert client.publish_acked(row(1)).reason_code == 0
    client.disconnect()
    # Anonymous access does not bypass a password that is given and wrong.
    wrong = RawClient(server, 4)
    assert wrong.connect("anon-2", "root", b"wrong").reason_code == 4
    wrong.wait_closed()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


# ---------------------------------------------------------------------------------------- protocol level, client ids


def test_unsupported_protocol_level_gets_code_1_and_close(server: ServerProcess) -> None:
    for level in (2, 6, 7, 255):
        client = RawClient(server, 4)
        body = b"\x00\x04MQTT" + bytes((level, 0x02)) + b"\x00\x3c" + b"\x00\x01x"
        client.send_raw(bytes((0x10, len(body))) + body)
        # Exactly the 4-byte MQTT 3.1.1 CONNACK with return code 1, whatever level was asked for.
        client.sock.settimeout(TIMEOUT)
        received = b""
        while chunk := client.sock.recv(100):
            received += chunk
        assert received == b"\x20\x02\x00\x01", level
    assert_alive(server)
    other = connected_raw(server, "after", 5)
    other.disconnect()


@pytest.mark.parametrize("level", [4, 5])
def test_empty_client_id_with_clean_session_gets_an_id(server: ServerProcess, level: int) -> None:
    client = RawClient(server, level)
    ack = client.connect("")
    assert ack.reason_code == 0
    if level == 5:
        assigned = ack.properties.assigned_client_identifier
        assert assigned
        # The assigned id is the real one: a second connection with it takes the session over.
        other = connected_raw(server, assigned, 5)
        packets = client.wait_closed()
        assert [p.reason_code for p in packets if isinstance(p, Disconnect)] == [0x8E]
        other.disconnect()
    else:
        assert client.publish_acked(row(1)).reason_code == 0
        client.disconnect()


@pytest.mark.parametrize(("level", "code"), [(4, 2), (5, 0x85)])
def test_empty_client_id_without_clean_session_is_refused(server: ServerProcess, level: int, code: int) -> None:
    client = RawClient(server, level)
    assert client.connect("", clean_start=False).reason_code == code
    client.wait_closed()


def test_mqtt31_client_id_longer_than_23_is_refused(server: ServerProcess) -> None:
    client = RawClient(server, 3)
    assert client.connect("x" * 24).reason_code == 2
    client.wait_closed()


def test_session_takeover_closes_the_first_connection(server: ServerProcess) -> None:
    first = connected_raw(server, "same-id", 5)
    second = connected_raw(server, "same-id", 5)
    packets = first.wait_closed()
    assert [(type(p), p.reason_code) for p in packets] == [(Disconnect, 0x8E)]
    assert second.publish_acked(row(1)).reason_code == 0
    # MQTT 3.1.1: closed without a DISCONNECT.
    third = connected_raw(server, "same-id-4", 4)
    fourth = connected_raw(server, "same-id-4", 4)
    assert third.wait_closed() == []
    assert fourth.publish_acked(row(2)).reason_code == 0
    assert second.is_open()
    second.disconnect()
    fourth.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5, 2: 1.5}


@pytest.mark.parametrize("level", [4, 5])
def test_subscribe_is_granted_and_publishing_goes_on(server: ServerProcess, level: int) -> None:
    client = connected_raw(server, "subscriber", level)
    client.send(Subscribe(3, (Subscription("cmd/#", 1), Subscription("a/b", 0))))
    suback = client.expect(SubAck)
    assert suback.packet_id == 3
    assert suback.reason_codes == (1, 0)
    assert client.publish_acked(row(1), 4).reason_code == 0
    client.send(PingReq())
    client.expect(PingResp)
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


# ---------------------------------------------------------------------------------------- time-outs and wills


def _will(timestamp: int) -> Will:
    return Will("status/w1", json.dumps({"device": "root.sg.will", "timestamp": timestamp,
                                         "measurements": ["gone"], "values": [True]}).encode())


@pytest.mark.parametrize("level", [4, 5])
def test_silent_client_is_dropped_after_1_5_keep_alive_and_its_will_written(server: ServerProcess,
                                                                             level: int) -> None:
    client = connected_raw(server, "sleepy", level, keep_alive=1, will=_will(42))
    assert client.publish_acked(row(1)).reason_code == 0
    silent_since = time.monotonic()
    packets = client.wait_closed(timeout=15)
    elapsed = time.monotonic() - silent_since
    assert elapsed >= 1.4, elapsed  # not before 1.5 keep-alive; a loaded runner may be late, so no tight upper bound
    assert elapsed < 10, elapsed
    if level == 5:
        assert [(type(p), p.reason_code) for p in packets] == [(Disconnect, 0x8D)]
    data = stop_and_read(server, "root.sg.will.gone", S1)
    assert data["root.sg.will.gone"] == {42: True}
    assert data[S1] == {1: 1.5}


def test_pings_keep_a_client_alive(server: ServerProcess) -> None:
    client = connected_raw(server, "pinger", 4, keep_alive=1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        client.send(PingReq())
        client.expect(PingResp)
        time.sleep(0.5)
    assert client.is_open()
    client.disconnect()


@pytest.mark.parametrize("level", [4, 5])
def test_clean_disconnect_discards_the_will(server: ServerProcess, level: int) -> None:
    client = connected_raw(server, "polite", level, keep_alive=1, will=_will(43))
    client.disconnect()
    other = connected_raw(server, "abrupt", level, will=_will(44))
    other.close()  # no DISCONNECT: the will is written
    time.sleep(0.3)
    data = stop_and_read(server, "root.sg.will.gone")
    assert data["root.sg.will.gone"] == {44: True}


def test_mqtt5_disconnect_with_will_message_keeps_the_will(server: ServerProcess) -> None:
    client = connected_raw(server, "with-will", 5, will=_will(45))
    client.send(Disconnect(0x04))
    client.wait_closed()
    assert stop_and_read(server, "root.sg.will.gone")["root.sg.will.gone"] == {45: True}


def test_client_without_connect_is_dropped_after_connect_timeout(start_server: StartServer) -> None:
    server = start_server(mqtt_connect_timeout_in_ms=500)
    silent = RawClient(server, 4)
    opened = time.monotonic()
    partial = RawClient(server, 4)
    partial.send_raw(b"\x10\x20\x00\x04MQ")  # a CONNECT that never completes
    assert silent.wait_closed(timeout=15) == []
    elapsed = time.monotonic() - opened
    assert elapsed >= 0.4, elapsed  # not before the 500 ms time-out; late on a loaded runner is fine
    assert elapsed < 10, elapsed
    assert partial.wait_closed(timeout=5) == []
    # After CONNECT, a packet left incomplete for as long is dropped too.
    stalled = connected_raw(server, "stalled", 4)
    stalled.send_raw(b"\x30\x40\x00\x0aroot/")
    assert stalled.wait_closed(timeout=5) == []
    # A client that connects properly is still served.
    client = connected_raw(server, "prompt", 4)
    time.sleep(1.2)
    assert client.publish_acked(row(1)).reason_code == 0
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_mqtt5_session_expiry_on_disconnect_properties_are_accepted(server: ServerProcess) -> None:
    client = connected_raw(server, "expiring", 5, clean_start=False,
                           properties=Properties(session_expiry_interval=60))
    client.send(Disconnect(0, Properties(session_expiry_interval=0)))
    client.wait_closed()
    again = RawClient(server, 5)
    ack = again.connect("expiring", clean_start=False)
    assert ack.reason_code == 0
    assert not ack.session_present
    again.disconnect()


def test_connect_waiting_for_authentication_is_not_timed_out(start_server: StartServer) -> None:
    """A client that sent CONNECT in time is answered even when password checks queue up behind others."""
    server = start_server(mqtt_connect_timeout_in_ms=300)
    attackers = [RawClient(server, 4) for _ in range(40)]
    for number, attacker in enumerate(attackers):
        attacker.send(Connect(f"wrong-{number}", 4, True, 60, "root", b"wrong"))
    client = RawClient(server, 4)
    ack = client.connect("legit")
    assert ack.reason_code == 0
    for attacker in attackers:
        assert attacker.expect(ConnAck).reason_code == 4
    assert client.publish_acked(row(1)).reason_code == 0
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_refused_and_timed_out_sockets_do_not_count_against_the_connection_limit(
        start_server: StartServer) -> None:
    """Closed sockets are forgotten however they ended; the limit leaves a margin of 64 sockets."""
    server = start_server(mqtt_max_connections=1, mqtt_connect_timeout_in_ms=200)
    silent = [RawClient(server, 4) for _ in range(10)]
    for client in silent:
        assert client.wait_closed(timeout=5) == []
    for number in range(40):
        refused = RawClient(server, 4)
        assert refused.connect(f"nobody-{number}", "nobody", b"x").reason_code == 4
        refused.wait_closed()
    for _ in range(30):
        old = RawClient(server, 4)
        body = b"\x00\x04MQTT\x06\x02\x00\x3c\x00\x00"
        old.send_raw(bytes((0x10, len(body))) + body)
        assert old.wait_closed() == [ConnAck(reason_code=1)]
    client = connected_raw(server, "still-welcome", 4)
    assert client.publish_acked(row(1)).reason_code == 0
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


@pytest.mark.parametrize("level", [4, 5])
def test_publishes_pipelined_behind_connect_are_handled_after_connack(server: ServerProcess, level: int) -> None:
    client = RawClient(server, level)
    client.send(Connect("eager", level, True, 60, "root", b"root"),
                Publish("root/sg/d1", row(1), 1, False, False, 1), Publish("root/sg/d1", row(2), 0),
                PingReq())
    assert client.expect(ConnAck).reason_code == 0
    # PINGRESP is immediate while PUBACK waits for the write: their order is not fixed.
    replies = [client.recv(), client.recv()]
    assert PingResp() in replies and PubAck(1) in replies
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5, 2: 1.5}


def test_publishes_pipelined_behind_a_refused_connect_are_not_written(server: ServerProcess) -> None:
    client = RawClient(server, 4)
    client.send(Connect("sneaky", 4, True, 60, "root", b"wrong"), Publish("root/sg/d1", row(1), 0))
    assert client.expect(ConnAck).reason_code == 4
    client.wait_closed()
    assert stop_and_read(server, S1)[S1] == {}


def test_mqtt5_no_reason_strings_when_problem_information_is_not_requested(start_server: StartServer) -> None:
    server = start_server(mqtt_ack_reason_strings="true")
    client = connected_raw(server, "terse", 5, properties=Properties(request_problem_information=0))
    ack = client.publish_acked(b"{bad", 1)
    assert ack.reason_code == 0x99
    assert ack.properties.reason_string is None
    client.disconnect()
    # Asked for (the default), the reason is given.
    verbose = connected_raw(server, "verbose", 5)
    assert verbose.publish_acked(b"{bad", 1).properties.reason_string
    verbose.disconnect()


def test_mqtt5_failure_acks_are_bare_reason_codes_by_default(server: ServerProcess) -> None:
    """Without ``mqtt_ack_reason_strings`` a failure PUBACK / PUBREC is packet id and reason code only, as
    Mosquitto sends them: clients that expect at most four bytes (the Eclipse Paho test client) accept it."""
    client = connected_raw(server, "plain", 5)
    for qos in (1, 2):
        client.publish(b"{bad", qos, qos, "plain/bad")
        ack = client.expect(PubAck if qos == 1 else PubRec)
        assert (ack.packet_id, ack.reason_code, ack.properties) == (qos, 0x99, Properties())
    assert client.publish_acked(row(1), 3).reason_code == 0
    client.disconnect()
