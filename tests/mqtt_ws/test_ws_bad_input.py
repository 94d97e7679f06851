"""Bad input over MQTT over WebSocket: each gets the right HTTP answer or close, the server keeps serving
the others, and nothing a client did puts a traceback in the log."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import Connect, Disconnect, PubAck, Publish, Will, encode

from .conftest import (
    BINARY,
    CONTINUATION,
    DEVICE,
    TEXT,
    TIMEOUT,
    TOPIC,
    ConnectionClosed,
    StartServer,
    WsRawClient,
    assert_healthy,
    row,
    stop_and_read,
    wait_until,
)

S1 = f"{DEVICE}.s1"


def still_serving(server: ServerProcess, timestamp: int) -> None:
    """A new WebSocket client connects and gets its QoS 1 publish acknowledged; no traceback so far."""
    with WsRawClient(server) as client:
        assert client.connect(f"after-{timestamp}").reason_code == 0
        client.send(Publish(TOPIC, row(timestamp), 1, packet_id=1))
        assert client.expect(PubAck).packet_id == 1
        client.send(Disconnect())
    assert_healthy(server)


def test_text_frame_closes_with_1003(server: ServerProcess) -> None:
    with WsRawClient(server) as client:
        assert client.connect("texter").reason_code == 0
        client.send_frame(TEXT, b'{"device": "root.sg.d1"}')
        packets, code = client.wait_closed()
        assert packets == [] and code == 1003  # unsupported data [MQTT-6.0.0-1]
    # The log line is read from the server's output by another thread: wait for it, do not race it.
    assert wait_until(lambda: "a text frame; MQTT is carried in binary frames" in server.output)
    still_serving(server, 1)
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


def test_garbage_bytes_close_the_connection(server: ServerProcess) -> None:
    with WsRawClient(server) as client:
        client.send_frame(BINARY, b"\x00\xff garbage, not MQTT")
        packets, code = client.wait_closed()
        assert packets == [] and code == 1000
    still_serving(server, 2)


@pytest.mark.parametrize(("offered", "shown"), [(("wamp", "soap"), "'wamp', 'soap'"), (None, "none")],
                         ids=["wrong", "missing"])
def test_subprotocol_other_than_mqtt_is_refused(server: ServerProcess, offered: tuple[str, ...] | None,
                                                shown: str) -> None:
    with WsRawClient(server, protocols=offered, expect_upgrade=False) as client:
        assert client.handshake.status == 400
        assert "needs the subprotocol mqtt" in client.handshake.body
        assert f"the client offered {shown}" in client.handshake.body
    still_serving(server, 3)


def test_mqttv31_subprotocol_is_accepted_and_echoed(server: ServerProcess) -> None:
    with WsRawClient(server, level=3, protocols=("mqttv3.1",)) as client:
        assert client.handshake.headers["sec-websocket-protocol"] == "mqttv3.1"
        assert client.connect("v31-client").reason_code == 0
        client.send(Publish(TOPIC, row(4), 1, packet_id=9))
        assert client.expect(PubAck).packet_id == 9
    assert stop_and_read(server, S1)[S1] == {4: 1.5}


def test_plain_http_gets_426_and_other_paths_404(server: ServerProcess) -> None:
    base = f"http://{server.ws_host}:{server.ws_port}"
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(base + server.ws_path, timeout=TIMEOUT)
    assert plain.value.code == 426
    assert plain.value.headers["Upgrade"] == "websocket"
    assert "send a WebSocket upgrade" in plain.value.read().decode()
    with WsRawClient(server, path="/ws", expect_upgrade=False) as client:
        assert client.handshake.status == 404
        assert f"MQTT over WebSocket is a GET {server.ws_path}" in client.handshake.body
    still_serving(server, 5)


def test_not_http_at_all_is_answered_400(server: ServerProcess) -> None:
    with socket.create_connection((server.ws_host, server.ws_port), timeout=TIMEOUT) as sock:
        sock.sendall(encode(Connect("tcp-on-ws-port", 4, True, 60, "root", b"root"), 4) + b"\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.split(b"\r\n")[0].endswith(b" 400 Bad Request"), reply
    still_serving(server, 6)


def test_packet_over_the_limit_split_over_messages_gets_disconnect_0x95(start_server: StartServer) -> None:
    """The limit is checked from the fixed header in the first message, before the rest arrives."""
    server = start_server(mqtt_max_message_size=256)
    packet = encode(Publish(TOPIC, b"x" * 1000, 1, packet_id=1), 5)
    with WsRawClient(server) as client:
        assert client.connect("big-split").reason_code == 0
        client.send_frame(BINARY, packet[:10])
        packets, code = client.wait_closed()
        assert [p.reason_code for p in packets] == [0x95] and code == 1000  # packet too large
    still_serving(server, 7)


def test_message_over_the_limit_in_fragments_closes_with_1009(start_server: StartServer) -> None:
    """One WebSocket message in continuation frames is bounded as a whole, by mqtt_max_message_size."""
    server = start_server(mqtt_max_message_size=256)
    packet = encode(Publish(TOPIC, b"x" * 1000, 1, packet_id=1), 5)
    with WsRawClient(server) as client:
        assert client.connect("big-fragments").reason_code == 0
        client.send_frame(BINARY, packet[:200], fin=False)  # within the limit so far
        client.send_frame(CONTINUATION, packet[200:], fin=True)
        packets, code = client.wait_closed()
        assert packets == [] and code == 1009  # message too big
    still_serving(server, 8)


def test_fragmented_message_within_the_limit_is_one_packet(server: ServerProcess) -> None:
    with WsRawClient(server) as client:
        assert client.connect("fragments").reason_code == 0
        client.send_fragmented(encode(Publish(TOPIC, row(9), 1, packet_id=3), 5), 4)
        assert client.expect(PubAck).packet_id == 3
    assert stop_and_read(server, S1)[S1] == {9: 1.5}


def test_client_gone_mid_packet_publishes_its_will(server: ServerProcess) -> None:
    will = Will("root/sg/will", row(10, "root.sg.will"), 0, False)
    client = WsRawClient(server)
    assert client.connect("half", will=will).reason_code == 0
    client.send_frame(BINARY, encode(Publish(TOPIC, row(11), 1, packet_id=1), 5)[:12])
    client.sock.close()  # no close frame, half a packet sent
    still_serving(server, 12)
    assert wait_until(lambda: "Traceback" not in server.output)
    data = stop_and_read(server, S1, "root.sg.will.s1")
    assert data == {S1: {12: 1.5}, "root.sg.will.s1": {10: 1.5}}


def test_connect_never_sent_is_dropped(start_server: StartServer) -> None:
    server = start_server(mqtt_connect_timeout_in_ms=500)
    with WsRawClient(server) as client:
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=5)
        assert closed.value.code is None  # dropped like a TCP socket, without a close frame
    still_serving(server, 13)
