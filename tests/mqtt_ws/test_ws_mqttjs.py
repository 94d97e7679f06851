"""MQTT.js (npm ``mqtt``, pinned in tests/js/package.json) over TCP and over WebSocket.

Each test runs tests/js/mqtt_client.mjs with a scenario and checks its JSON report: the CONNACK, the
acknowledgement packets MQTT.js received, and the data read back from the database.
"""

from __future__ import annotations

from typing import Any

import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import DEVICE, TOPIC, assert_healthy, row, run_mqttjs, stop_and_read

S1 = f"{DEVICE}.s1"


def url_of(server: ServerProcess, transport: str) -> str:
    return server.ws_url if transport == "ws" else f"mqtt://{server.host}:{server.port}"


def acks(report: dict[str, Any]) -> list[tuple[str, int]]:
    """The acknowledgements received, as ``(packet, id)`` in arrival order."""
    return [(packet["cmd"], packet["messageId"]) for packet in report["received"] if packet["cmd"] != "connack"]


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
def test_mqttjs_publishes_qos_0_1_2(server: ServerProcess, transport: str, version: int) -> None:
    messages = [{"topic": TOPIC, "payload": row(t, value=t).decode(), "qos": t % 3} for t in range(9)]
    report = run_mqttjs("publish", url_of(server, transport), protocolVersion=version, clientId=f"js-{transport}",
                        username="root", password="root", messages=messages)
    assert report["error"] is None, report
    assert report["connack"]["code"] == 0
    published = report["published"]
    assert [entry["error"] for entry in published] == [None] * 9
    expected: list[tuple[str, int]] = []
    for entry in published:
        if entry["qos"] == 1:
            expected.append(("puback", entry["messageId"]))
        elif entry["qos"] == 2:
            expected += [("pubrec", entry["messageId"]), ("pubcomp", entry["messageId"])]
    assert acks(report) == expected
    if version == 5:
        codes = [packet["reasonCode"] for packet in report["received"]]
        assert codes == [0] * len(codes)
        assert report["connack"]["properties"]["maximumPacketSize"] == 1048576
    assert stop_and_read(server, S1)[S1] == {t: float(t) for t in range(9)}


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize(("version", "code"), [(4, 4), (5, 0x86)], ids=["v311", "v5"])
def test_mqttjs_bad_password_gets_the_connack_code(server: ServerProcess, transport: str, version: int,
                                                   code: int) -> None:
    report = run_mqttjs("connect", url_of(server, transport), protocolVersion=version, clientId="js-bad",
                        username="root", password="not-the-password")
    assert report["connack"] is None
    assert report["error"]["code"] == code, report
    assert [packet["cmd"] for packet in report["received"]] == ["connack"]
    assert "bad user name or password" in server.output
    assert_healthy(server)



@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_mqttjs_publish_over_the_packet_limit_gets_disconnect_0x95(start_server: Any, transport: str) -> None:
    """MQTT.js sends a publish larger than the Maximum Packet Size of the CONNACK (over WebSocket its header and
    payload go in separate messages); the server answers DISCONNECT 0x95 and keeps serving the others."""
    server = start_server(mqtt_max_message_size=512)
    messages = [{"topic": TOPIC, "payload": "x" * 2000, "qos": 1}, {"topic": TOPIC, "payload": row(2).decode(),
                                                                    "qos": 1}]
    report = run_mqttjs("publish", url_of(server, transport), protocolVersion=5, clientId="js-big",
                        username="root", password="root", messages=messages)
    assert report["connack"]["properties"]["maximumPacketSize"] == 512
    assert [entry["error"]["code"] for entry in report["published"]] == ["closed"], report
    assert report["received"][-1] == {"cmd": "disconnect", "messageId": None, "reasonCode": 0x95}
    report = run_mqttjs("publish", url_of(server, transport), protocolVersion=5, clientId="js-small",
                        username="root", password="root", messages=[{"topic": TOPIC, "payload": row(1).decode(),
                                                                     "qos": 1}])
    assert [entry["error"] for entry in report["published"]] == [None]
    assert_healthy(server)
    assert stop_and_read(server, S1)[S1] == {1: 1.5}


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_mqttjs_subscribes_and_receives_what_it_publishes(server: ServerProcess, transport: str,
                                                          version: int) -> None:
    messages = [{"topic": f"js/echo/{t}", "payload": f"m{t}", "qos": t % 3} for t in range(6)]
    report = run_mqttjs("echo", url_of(server, transport), protocolVersion=version, clientId=f"js-echo-{transport}",
                        username="root", password="root", messages=messages, filter="js/echo/+", subscribeQos=1)
    assert report["error"] is None, report
    assert report["granted"] == [1]
    delivered = sorted((d["topic"], d["payload"], d["qos"], d["retain"]) for d in report["deliveries"])
    assert delivered == [(f"js/echo/{t}", f"m{t}", min(t % 3, 1), False) for t in range(6)]
    assert_healthy(server)
