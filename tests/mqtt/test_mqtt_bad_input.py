"""Bad input: oversize and malformed packets, random bytes, payloads that cannot be stored.

Each case must behave as designed while other clients keep being served and nothing valid is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import (
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRel,
    encode,
)

from .conftest import (
    DEVICE,
    TIMEOUT,
    TOPIC,
    ConnectionClosed,
    RawClient,
    StartServer,
    assert_alive,
    connected_raw,
    dead_letters,
    row,
    stop_and_read,
)

S1, S2 = f"{DEVICE}.s1", f"{DEVICE}.s2"


def _framed(first: int, body: bytes) -> bytes:
    """A packet with a correct remaining length around ``body`` (``body`` shorter than 128 bytes)."""
    assert len(body) < 128
    return bytes((first, len(body))) + body


def _publish_bytes(topic: bytes, payload: bytes = b"{}", qos: int = 0) -> bytes:
    packet_id = b"\x00\x01" if qos else b""
    return _framed(0x30 | qos << 1, len(topic).to_bytes(2, "big") + topic + packet_id + payload)


# ---------------------------------------------------------------------------------------- oversize


@pytest.mark.parametrize("level", [4, 5])
def test_oversize_packet_closes_before_the_body_is_read(start_server: StartServer, level: int) -> None:
    server = start_server(mqtt_max_message_size=256)
    bystander = connected_raw(server, "bystander", 4)
    client = connected_raw(server, "big", level)
    # Only the fixed header of a 100000-byte PUBLISH: the server must not wait for the body.
    client.send_raw(b"\x32\xa0\x8d\x06")
    packets = client.wait_closed(timeout=5)
    if level == 5:
        assert [(type(p), p.reason_code) for p in packets] == [(Disconnect, 0x95)]
    else:
        assert packets == []
    # A packet just within the limit is fine; one byte more is not.
    fits = connected_raw(server, "fits", 4)
    payload = row(1)
    topic = TOPIC.encode()
    size_without_payload = 2 + 2 + len(topic) + 2  # fixed header (2 bytes below 128 remaining), topic, packet id
    padded = payload + b" " * (256 - size_without_payload - len(payload) - 2)
    assert fits.publish_acked(padded).reason_code == 0
    fits.publish(padded + b"  ", 1, 2)
    assert fits.wait_closed(timeout=5) == []
    assert bystander.publish_acked(row(2)).reason_code == 0
    bystander.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5, 2: 1.5}


def test_mqtt5_connack_announces_the_maximum_packet_size(start_server: StartServer) -> None:
    server = start_server(mqtt_max_message_size=4096)
    client = RawClient(server, 5)
    ack = client.connect("announce")
    assert ack.reason_code == 0
    assert ack.properties.maximum_packet_size == 4096
    client.disconnect()


def test_oversize_connect_is_closed_without_reply(start_server: StartServer) -> None:
    server = start_server(mqtt_max_message_size=64)
    client = RawClient(server, 4)
    client.send_raw(encode(Connect("x" * 100, 4, True, 60, "root", b"root"), 4)[:10])
    assert client.wait_closed(timeout=5) == []
    assert_alive(server)


# ---------------------------------------------------------------------------------------- crafted malformed packets


CONNECTED_CASES = {
    "remaining-length-5-bytes": b"\x30\xff\xff\xff\xff\x7f",
    "remaining-length-shorter-than-topic": _framed(0x30, b"\x00\x20root/sg"),
    "reserved-type-0": b"\x00\x00",
    "pubrel-flags-0000": _framed(0x60, b"\x00\x01"),
    "pingreq-flags-0001": b"\xc1\x00",
    "subscribe-flags-0000": _framed(0x80, b"\x00\x01\x00\x01a\x00"),
    "publish-qos-3": _framed(0x36, b"\x00\x03a/b\x00\x01{}"),
    "publish-dup-on-qos-0": b"\x38\x07\x00\x03a/b{}",
    "publish-wildcard-plus": _publish_bytes(b"root/+/d1", qos=1),
    "publish-wildcard-hash": _publish_bytes(b"root/#", qos=1),
    "publish-packet-id-0": _framed(0x32, b"\x00\x03a/b\x00\x00{}"),
    "publish-invalid-utf8-topic": _publish_bytes(b"root/\xff", qos=1),
    "second-connect": encode(Connect("again", 4, True, 60, "root", b"root"), 4),
    "connack-from-client": b"\x20\x02\x00\x00",
}


@pytest.mark.parametrize("level", [4, 5])
def test_malformed_packets_close_only_their_connection(server: ServerProcess, level: int) -> None:
    bystander = connected_raw(server, "bystander", 5)
    for number, (name, data) in enumerate(CONNECTED_CASES.items()):
        client = connected_raw(server, f"bad-{number}", level)
        assert client.publish_acked(row(1000 + number), 1).reason_code == 0, name
        client.send_raw(data)
        packets = client.wait_closed(timeout=5)
        if level == 5:
            assert len(packets) == 1 and isinstance(packets[0], Disconnect), (name, packets)
            assert packets[0].reason_code >= 0x80, (name, packets)
        else:
            assert packets == [], (name, packets)
        assert bystander.publish_acked(row(number), number + 1).reason_code == 0, name
    bystander.disconnect()
    assert_alive(server)
    data = stop_and_read(server, S1)[S1]
    count = len(CONNECTED_CASES)
    assert data == {t: 1.5 for t in [*range(count), *range(1000, 1000 + count)]}
    assert "Traceback" not in server.output


@pytest.mark.parametrize("data", [
    _publish_bytes(b"root/sg/d1", qos=0),
    b"\xc0\x00",
    b"\x82\x06\x00\x01\x00\x01a\x00",
    b"\x10\x0c\x00\x04XXXX\x04\x02\x00\x3c\x00\x00",
    b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00",  # reserved connect flag set
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["publish-first", "pingreq-first", "subscribe-first", "bad-protocol-name", "reserved-connect-flag", "http"])
def test_non_connect_first_or_broken_connect_is_closed(server: ServerProcess, data: bytes) -> None:
    client = RawClient(server, 4)
    client.send_raw(data)
    packets = client.wait_closed(timeout=5)
    # Only an unknown protocol name is answered (return code 1), anything else is closed silently.
    assert all(p.reason_code == 1 for p in packets), packets
    assert_alive(server)
    other = connected_raw(server, "after", 4)
    other.send(PingReq())
    other.expect(PingResp)
    other.disconnect()


# ---------------------------------------------------------------------------------------- random bytes

#: Examples of the random-bytes test; raise it (``IOTDB_MQTT_FUZZ_EXAMPLES``) for a longer hunt.
FUZZ_EXAMPLES = int(os.environ.get("IOTDB_MQTT_FUZZ_EXAMPLES", "30"))
_FIRST_BYTES = st.integers(0, 255)
_RANDOM_PACKET = st.builds(_framed, _FIRST_BYTES, st.binary(max_size=100))
_RANDOM_STREAM = st.one_of(st.binary(min_size=1, max_size=200), st.lists(_RANDOM_PACKET, min_size=1, max_size=4)
                           .map(b"".join))


def test_random_bytes_never_kill_the_server(start_server: StartServer) -> None:
    server = start_server(mqtt_connect_timeout_in_ms=500)
    bystander = connected_raw(server, "bystander", 4)
    published: list[int] = []

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=_RANDOM_STREAM, level=st.sampled_from([None, 4, 5]))
    def fuzz(data: bytes, level: int | None) -> None:
        if level is None:
            # Before CONNECT: whatever the bytes are, the connection ends (refused, invalid or timed out).
            client = RawClient(server, 4)
            try:
                client.send_raw(data)
                client.wait_closed(timeout=3)
            except ConnectionResetError:
                pass
            finally:
                client.close()
        else:
            client = connected_raw(server, f"fuzz-{len(published)}", level)
            try:
                client.send_raw(data)
                client.is_open(0.1)
            except (ConnectionResetError, BrokenPipeError, ConnectionClosed):
                pass
            except Exception:  # replies the test client cannot parse are not the server's failure
                pass
            finally:
                client.close()
        timestamp = len(published)
        assert bystander.publish_acked(row(timestamp), timestamp % 65535 + 1).reason_code == 0
        published.append(timestamp)

    fuzz()
    bystander.disconnect()
    assert_alive(server)
    data = stop_and_read(server, S1)[S1]
    assert set(published) <= set(data)
    assert "Traceback" not in server.output, server.output


# ---------------------------------------------------------------------------------------- unstorable payloads


REJECTED = {
    "truncated": (b'{"device": "root.sg.d1", "timestamp": 1,', "invalid JSON"),
    "text": (b"not json at all", "invalid JSON"),
    "empty": (b"", "empty payload"),
    "bad-path": (json.dumps({"device": "root.a-b", "timestamp": 1, "measurements": ["s1"], "values": [1]}).encode(),
                 "root.a-b"),
    "bad-timestamp": (json.dumps({"device": "root.sg.d1", "timestamp": "x", "measurements": ["s1"],
                                  "values": [1]}).encode(), "timestamp"),
    "not-utf8": (b"\xff\xfe\x00", "UTF-8"),
}


@pytest.mark.parametrize("level", [4, 5])
def test_rejected_payload_is_acked_and_dead_lettered(start_server: StartServer, level: int) -> None:
    server = start_server(mqtt_ack_reason_strings="true")
    for number, (case, (payload, reason_part)) in enumerate(REJECTED.items()):
        client = connected_raw(server, f"sender-{number}", level)
        assert client.publish_acked(row(number * 10), 1).reason_code == 0
        ack = client.publish_acked(payload, 2, topic=f"bad/{case}")
        if level == 5:
            assert ack.reason_code == 0x99, case
            assert ack.properties.reason_string and reason_part in ack.properties.reason_string, case
        else:
            assert ack == PubAck(2), case
        # The connection goes on.
        assert client.publish_acked(row(number * 10 + 1), 3).reason_code == 0
        client.disconnect()
    letters = dead_letters(server)
    assert len(letters) == len(REJECTED)
    for number, (letter, (case, (payload, reason_part))) in enumerate(zip(letters, REJECTED.items(), strict=True)):
        assert (letter.client_id, letter.username, letter.topic, letter.qos) == (f"sender-{number}", "root",
                                                                                 f"bad/{case}", 1)
        assert reason_part in letter.reason, case
        assert letter.payload_bytes() == payload, case
    expected = {t: 1.5 for number in range(len(REJECTED)) for t in (number * 10, number * 10 + 1)}
    assert stop_and_read(server, S1)[S1] == expected


def test_deadletter_command_shows_the_rejected_payloads(server: ServerProcess) -> None:
    client = connected_raw(server, "cli-client", 5)
    assert client.publish_acked(b"{broken", 1, topic="cli/topic").reason_code == 0x99
    client.publish(b"\xff\xfe binary", qos=0, packet_id=None, topic="cli/qos0")
    client.disconnect()
    stop_and_read(server, S1)
    command = [sys.executable, "-m", "iotdb_core.cli.main", "deadletter", "--config", str(server.config_path)]

    def run(*extra: str) -> str:
        done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=TIMEOUT * 2, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = run()
    assert "cli-client" in table and "cli/topic" in table and "cli/qos0" in table
    assert "invalid JSON" in table
    lines = run("--json").splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["client_id"], r["topic"], r["qos"]) for r in records] == [("cli-client", "cli/topic", 1),
                                                                          ("cli-client", "cli/qos0", 0)]
    assert records[0]["payload"] == "{broken"
    assert records[1]["payload_encoding"] == "base64"
    assert all(r["reason"] for r in records)


@pytest.mark.parametrize("level", [4, 5])
def test_wrong_type_value_writes_the_valid_measurements(start_server: StartServer, level: int) -> None:
    server = start_server(mqtt_ack_reason_strings="true")
    client = connected_raw(server, "typed", level)
    assert client.publish_acked(row(1, values=(1.5, 2)), 1).reason_code == 0
    ack = client.publish_acked(row(2, values=("not a number", 3)), 2)
    if level == 5:
        assert ack.reason_code == 0x99
        assert "s1" in (ack.properties.reason_string or "")
    else:
        assert ack.reason_code == 0
    client.disconnect()
    letters = dead_letters(server)
    assert len(letters) == 1
    assert "s1" in letters[0].reason and "not a number" in letters[0].reason
    assert letters[0].client_id == "typed"
    data = stop_and_read(server, S1, S2)
    assert data[S1] == {1: 1.5}
    assert data[S2] == {1: 2, 2: 3}


def test_pipelined_good_and_bad_publishes_get_their_own_acks(server: ServerProcess) -> None:
    client = connected_raw(server, "pipeline", 5)
    client.publish_acked(row(0), 100)
    payloads = [row(1), b"{bad", row(2), row(3, values=("x", 30)), row(4), b"[1]", row(5)]
    client.send_raw(b"".join(encode_publish(payload, number + 1) for number, payload in enumerate(payloads)))
    acks = [client.expect(PubAck) for _ in payloads]
    assert [a.packet_id for a in acks] == list(range(1, len(payloads) + 1))
    assert [a.reason_code for a in acks] == [0, 0x99, 0, 0x99, 0, 0x99, 0]
    client.disconnect()
    assert len(dead_letters(server)) == 3
    data = stop_and_read(server, S1, S2)
    assert data[S1] == {t: 1.5 for t in (0, 1, 2, 4, 5)}
    assert data[S2] == {0: 2, 1: 2, 2: 2, 3: 30, 4: 2, 5: 2}


def encode_publish(payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 MQTT 5 PUBLISH on the default topic."""
    return encode(Publish(TOPIC, payload, 1, False, False, packet_id), 5)


def test_mqtt5_rejected_qos2_frees_its_packet_id(server: ServerProcess) -> None:
    """A PUBREC with a failure code ends the QoS 2 exchange: the client may reuse the packet id at once."""
    client = connected_raw(server, "qos2-reject", 5)
    assert client.publish_received(b"{bad", 5).reason_code == 0x99
    # No PUBREL follows a failed PUBREC [MQTT-4.3.3]; the id is free, so this is a new message.
    assert client.publish_received(row(1), 5).reason_code == 0
    client.send(PubRel(5))
    assert client.expect(PubComp) == PubComp(5)
    client.disconnect()
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_qos0_rejected_payload_is_dead_lettered_without_reply(server: ServerProcess) -> None:
    client = connected_raw(server, "qos0", 5)
    client.publish(b"nope", qos=0, packet_id=None)
    assert client.publish_acked(row(1), 1).reason_code == 0
    client.disconnect()
    letters = dead_letters(server)
    assert [(letter.client_id, letter.qos, letter.payload) for letter in letters] == [("qos0", 0, "nope")]
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_pubrel_for_an_unknown_id(server: ServerProcess) -> None:
    client = connected_raw(server, "pubrel", 5)
    client.send(PubRel(77))
    assert client.expect(PubComp) == PubComp(77, 0x92)
    old = connected_raw(server, "pubrel-4", 4)
    old.send(PubRel(78))
    assert old.expect(PubComp) == PubComp(78)
    assert old.is_open()
    old.disconnect()
    client.disconnect()
