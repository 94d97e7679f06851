"""MQTT over secure WebSocket: MQTT.js in Node and paho-mqtt over ``wss://``, and the plain WebSocket turned off."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
from mqtt.conftest import StartServer, stop_and_read, wait_until
from mqtt_ws.conftest import run_mqttjs

from .conftest import DEVICE, TIMEOUT, TOPIC, assert_quiet, listening_ports, tls_client, tls_properties
from .pki import Issued, Pki


def row(timestamp: int) -> str:
    return json.dumps({"device": DEVICE, "timestamp": timestamp, "measurements": ["s1"], "values": [timestamp]})


def test_mqttjs_and_paho_over_secure_websocket(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert), mqtt_ws_port=-1)
    assert server.process is not None
    assert listening_ports(server.process.pid) == {server.port, server.ssl_port, server.wss_port, server.rest_port,
                                                   server.rpc_port}, "no plain WebSocket listener"
    assert server.wss_url.startswith("wss://")
    report = run_mqttjs("publish", server.wss_url, protocolVersion=5, username="root", password="root",
                        caFile=str(pki.ca), messages=[{"topic": TOPIC, "payload": row(1), "qos": 1}])
    assert report["error"] is None, report
    assert report["connack"]["code"] == 0
    assert [entry["error"] for entry in report["published"]] == [None]
    untrusted = run_mqttjs("connect", server.wss_url, username="root", password="root")
    assert untrusted["connack"] is None and untrusted["error"] is not None, untrusted

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-wss", transport="websockets")
    client.ws_set_options(path=server.ws_path)
    client.tls_set_context(tls_client(pki))
    client.username_pw_set("root", "root")
    connected: list[int] = []
    client.on_connect = lambda *args: connected.append(args[3].value)
    client.connect(server.host, server.wss_port, keepalive=30)
    client.loop_start()
    try:
        assert wait_until(lambda: connected, TIMEOUT) and connected == [0]
        info = client.publish(TOPIC, row(2), qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
    assert_quiet(server)
    assert stop_and_read(server, f"{DEVICE}.s1") == {f"{DEVICE}.s1": {1: 1.0, 2: 2.0}}


def test_the_certificate_cn_is_the_user_over_secure_websocket_too(start_server: StartServer, pki: Pki,
                                                                  server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, mqtt_ssl_client_auth="optional",
                                           mqtt_use_identity_as_username="true"))
    root, ghost = pki.client("root"), pki.client("ghost")
    as_root = run_mqttjs("connect", server.wss_url, protocolVersion=5, username="someone", password="wrong",
                         caFile=str(pki.ca), certFile=str(root.cert), keyFile=str(root.key))
    assert as_root["error"] is None and as_root["connack"]["code"] == 0, as_root
    as_ghost = run_mqttjs("connect", server.wss_url, protocolVersion=5, username="root", password="root",
                          caFile=str(pki.ca), certFile=str(ghost.cert), keyFile=str(ghost.key))
    assert as_ghost["connack"] is None and as_ghost["error"]["code"] == 0x86, as_ghost
    assert "certificate's CN 'ghost' names no user" in server.output
    assert_quiet(server)
