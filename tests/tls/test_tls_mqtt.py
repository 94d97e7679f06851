"""MQTT over TLS with real clients: mosquitto_pub/mosquitto_sub, paho-mqtt and gmqtt; plain TCP turned off; client
certificates required; a certificate's CN as the user name, with that user's topic ACL and privileges."""

from __future__ import annotations

import asyncio
import ssl
import time

import gmqtt
import paho.mqtt.client as mqtt
import pytest
from mqtt.conftest import PahoPublisher, StartServer, dead_letters, stop_and_read

from iotdb_mqtt.codec import EMPTY_PROPERTIES, Connect, encode

from .conftest import (
    DEVICE,
    TIMEOUT,
    TOPIC,
    assert_quiet,
    iotdb,
    listening_ports,
    mosquitto_pub,
    mosquitto_sub,
    tcp,
    tls_client,
    tls_properties,
)
from .pki import Issued, Pki

NOT_AUTHORIZED = 0x87
BAD_USER_NAME_OR_PASSWORD = 0x86


def row(timestamp: int, device: str = DEVICE) -> bytes:
    return (f'{{"device": "{device}", "timestamp": {timestamp}, "measurements": ["s1"], '
            f'"values": [{timestamp}.5]}}').encode()


def test_mosquitto_clients_over_tls_with_plain_tcp_turned_off(start_server: StartServer, pki: Pki,
                                                               server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert), mqtt_port=-1, mqtt_ws_port=-1)
    assert server.process is not None
    assert listening_ports(server.process.pid) == {server.ssl_port, server.wss_port, server.rest_port,
                                                   server.rpc_port}
    assert "serving MQTT on" not in server.output and "over WebSocket" not in server.output
    published = mosquitto_pub(server, pki, "-u", "root", "-P", "root", "-t", TOPIC, "-q", "1", "-r",
                              "-m", row(1).decode())
    assert published.returncode == 0, published.stderr
    received = mosquitto_sub(server, pki, "-u", "root", "-P", "root", "-t", "root/sg/#", "-C", "1")
    assert received.returncode == 0, received.stderr
    assert received.stdout.strip() == row(1).decode()  # the retained message
    assert_quiet(server)
    assert stop_and_read(server, f"{DEVICE}.s1") == {f"{DEVICE}.s1": {1: 1.5}}


def test_a_client_that_does_not_trust_the_certificate_fails_and_the_server_stays_quiet(
        start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert))
    other_ca = Pki(pki.directory / "other", "other-ca")
    refused = mosquitto_pub(server, other_ca, "-u", "root", "-P", "root", "-t", TOPIC, "-m", row(1).decode())
    assert refused.returncode != 0
    assert "TLS error" in refused.stderr, refused.stderr
    lines_before = server.output.count("\n")
    with tcp(server.ssl_port) as raw:  # a plain MQTT client on the TLS port
        raw.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        reply = raw.recv(100)
        assert reply == b"" or reply[0] == 0x15, f"closed, or a TLS alert record; not an MQTT reply: {reply!r}"
    time.sleep(0.3)
    assert server.output.count("\n") - lines_before <= 1, "a failed handshake is at most one log line"
    assert_quiet(server)


def test_paho_and_gmqtt_publish_over_tls(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert))
    publisher = PahoPublisher(server, "paho-tls", mqtt.MQTTv5, tls=tls_client(pki))
    (mid,) = publisher.publish_all([row(1)])
    assert publisher.acks[mid] == 0
    publisher.close()

    async def gmqtt_publish() -> None:
        client = gmqtt.Client("gmqtt-tls")
        client.set_auth_credentials("root", "root")
        await asyncio.wait_for(client.connect("127.0.0.1", server.ssl_port, ssl=tls_client(pki)), TIMEOUT)
        client.publish(TOPIC, row(2), qos=1)
        await asyncio.sleep(0.5)
        await client.disconnect()

    asyncio.run(gmqtt_publish())
    assert_quiet(server)
    assert stop_and_read(server, f"{DEVICE}.s1") == {f"{DEVICE}.s1": {1: 1.5, 2: 2.5}}


def test_required_client_certificates_refuse_a_client_without_one(start_server: StartServer, pki: Pki,
                                                                  server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, ssl_client_auth="required"))
    without = mosquitto_pub(server, pki, "-u", "root", "-P", "root", "-t", TOPIC, "-q", "1", "-m", row(1).decode())
    assert without.returncode != 0, without
    with_cert = mosquitto_pub(server, pki, "-u", "root", "-P", "root", "-t", TOPIC, "-q", "1", "-m",
                              row(2).decode(), client=pki.client("device-7"))
    assert with_cert.returncode == 0, with_cert.stderr
    stranger = Pki(pki.directory / "stranger", "stranger-ca").client("device-8")
    foreign = mosquitto_pub(server, pki, "-u", "root", "-P", "root", "-t", TOPIC, "-m", row(3).decode(),
                            client=stranger)
    assert foreign.returncode != 0, "a certificate of another CA is refused"
    assert_quiet(server)
    assert stop_and_read(server, f"{DEVICE}.s1") == {f"{DEVICE}.s1": {2: 2.5}}


def test_the_certificate_cn_is_the_user_with_its_acl_and_privileges(start_server: StartServer, pki: Pki,
                                                                   server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, mqtt_ssl_client_auth="optional",
                                           mqtt_use_identity_as_username="true", enable_thrift_ssl="true"))
    rpc = ["-h", "127.0.0.1", "-p", str(server.rpc_port), "--cafile", str(pki.ca)]
    for statement in ("CREATE USER meter 'meter-pw'", "GRANT WRITE_DATA ON root.sg.d1.** TO USER meter"):
        done = iotdb("query", statement, *rpc)
        assert done.returncode == 0, done.stderr
    granted = iotdb("--data-dir", str(server.data_dir), "acl", "grant", "meter", "write", "root/#")
    assert granted.returncode == 0, granted.stderr
    time.sleep(1.0)  # the server re-reads the ACL file within a second

    # The CONNECT's user name and password are not used: the certificate says meter.
    context = tls_client(pki, pki.client("meter"))
    meter = PahoPublisher(server, "meter-1", mqtt.MQTTv5, username="root", password="not-roots-password",
                          tls=context)
    assert meter.connack is not None and meter.connack.value == 0
    allowed, refused = meter.publish_all([row(1), row(2, device="root.sg.d2")])
    outside_acl = meter.client.publish("other/topic", row(3), qos=1)
    outside_acl.wait_for_publish(TIMEOUT)
    assert meter.acks[allowed] == 0
    assert meter.acks[refused] == NOT_AUTHORIZED
    assert meter.acks[outside_acl.mid] == NOT_AUTHORIZED
    meter.close()

    ghost = PahoPublisher(server, "ghost-1", mqtt.MQTTv5, tls=tls_client(pki, pki.client("ghost")))
    assert ghost.connack is not None and ghost.connack.value == BAD_USER_NAME_OR_PASSWORD
    ghost.close()
    assert "certificate's CN 'ghost' names no user" in server.output

    # Optional client certificates: without one the password counts.
    plain = PahoPublisher(server, "root-1", mqtt.MQTTv5, tls=tls_client(pki))
    assert plain.connack is not None and plain.connack.value == 0
    plain.publish_all([row(4, device="root.sg.d2")])
    plain.close()

    letters = dead_letters(server)
    assert [letter.username for letter in letters] == ["meter"]
    assert "user 'meter' lacks WRITE_DATA on root.sg.d2.s1" in letters[0].reason
    assert_quiet(server)
    data = stop_and_read(server, f"{DEVICE}.s1", "root.sg.d2.s1")
    assert data == {f"{DEVICE}.s1": {1: 1.5}, "root.sg.d2.s1": {4: 4.5}}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_https="true", enable_thrift_ssl="true"))
    ports = {"mqtt": server.ssl_port, "wss": server.wss_port, "https": server.rest_port, "rpc": server.rpc_port}
    for name, port in ports.items():
        old = tls_client(pki, maximum=ssl.TLSVersion.TLSv1_1)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client would speak TLS 1.0/1.1: the server says no
        with tcp(port) as raw:
            try:
                old.wrap_socket(raw, server_hostname="127.0.0.1").close()
            except ssl.SSLError as exc:
                # The server ends the handshake (with a protocol_version alert, or asyncio closes at once); a
                # client unable to offer TLS 1.1 would fail before sending anything (NO_PROTOCOLS_AVAILABLE).
                assert exc.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING"), \
                    f"{name}: {exc}"
            else:
                raise AssertionError(f"{name}: a TLS 1.1 handshake succeeded")
        tls12 = tls_client(pki, maximum=ssl.TLSVersion.TLSv1_2)
        with tcp(port) as raw, tls12.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
            assert wrapped.version() == "TLSv1.2", name
    assert_quiet(server)


def test_shutdown_with_open_tls_connections_is_prompt_and_clean(start_server: StartServer, pki: Pki,
                                                                server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_https="true", enable_thrift_ssl="true"))
    silent = []  # TLS connections that completed the handshake and then never read or write again
    for port in (server.ssl_port, server.wss_port, server.rest_port, server.rpc_port):
        wrapped = tls_client(pki).wrap_socket(tcp(port), server_hostname="127.0.0.1")
        silent.append(wrapped)
    mqtt_client = silent[0]
    mqtt_client.sendall(encode(Connect("silent", 4, True, 60, "root", b"root", None, EMPTY_PROPERTIES), 4))
    assert mqtt_client.recv(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
    started = time.monotonic()
    code = server.stop(timeout=TIMEOUT * 3)
    assert code == 0, server.output
    assert time.monotonic() - started < TIMEOUT, "no wait for clients that never answer the TLS close"
    assert "Traceback" not in server.output, server.output
    for connection in silent:
        connection.close()
