"""SIGHUP reloads the certificates of every TLS listener: open connections stay up, new handshakes see the new
certificate, and files that turned bad keep the previous one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import paho.mqtt.client as mqtt
from iotdb.Session import Session
from mqtt.conftest import PahoPublisher, StartServer, stop_and_read, wait_until

from iotdb_core.testing.server import ServerProcess

from .conftest import DEVICE, TIMEOUT, assert_quiet, presented_certificate, tls_client, tls_properties
from .pki import Issued, Pki


def row(timestamp: int) -> bytes:
    return f'{{"device": "{DEVICE}", "timestamp": {timestamp}, "measurements": ["s1"], "values": [1]}}'.encode()


def install(new: Issued, at: Issued) -> None:
    """Put ``new``'s certificate and key in place of ``at``'s files (each replaced by a rename)."""
    for source, target in ((new.cert, at.cert), (new.key, at.key)):
        staged = target.with_suffix(".staged")
        staged.write_bytes(source.read_bytes())
        os.replace(staged, target)


def hang_up(server: ServerProcess, expected: str) -> None:
    """Send SIGHUP and wait for the log line saying how the reload went."""
    assert server.process is not None
    count = server.output.count(expected)
    server.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: server.output.count(expected) > count), server.output


def tls_session(server: ServerProcess, pki: Pki) -> Session:
    session = Session(server.rpc_host, server.rpc_port, "root", "root", zone_id="UTC", use_ssl=True,
                      ca_certs=str(pki.ca), connection_timeout_in_ms=int(TIMEOUT * 1000))
    session.open(False)
    return session


def test_sighup_swaps_the_certificate_for_new_handshakes_and_keeps_open_connections(
        start_server: StartServer, pki: Pki, tmp_path: Path) -> None:
    live = pki.server("live")  # the paths the configuration names
    first = Issued(tmp_path / "first.pem", tmp_path / "first.key")
    first.cert.write_bytes(live.cert.read_bytes())
    first.key.write_bytes(live.key.read_bytes())
    server = start_server(**tls_properties(pki, live, enable_https="true", enable_thrift_ssl="true"))
    ports = (server.ssl_port, server.wss_port, server.rest_port, server.rpc_port)
    assert [presented_certificate(port, pki) for port in ports] == [first.der] * 4

    publisher = PahoPublisher(server, "stays-up", mqtt.MQTTv5, tls=tls_client(pki))
    publisher.publish_all([row(1)])
    session = tls_session(server, pki)

    second = pki.server("second")
    install(second, live)
    hang_up(server, "reloaded")
    assert [presented_certificate(port, pki) for port in ports] == [second.der] * 4
    assert "TLS certificates of rest, rpc, mqtt reloaded" in server.output

    publisher.publish_all([row(2)])  # the connection made before the reload carries on
    assert not publisher.disconnected
    with session.execute_query_statement(f"select count(s1) from {DEVICE}") as result:
        assert result.next().get_fields()[0].get_long_value() == 2
    session.close()
    publisher.close()

    # Files that turned bad: the reload is refused, the certificate in use stays.
    live.key.write_text("not a key\n")
    hang_up(server, "not reloaded")
    assert f"TLS certificates of rest, rpc, mqtt not reloaded: ssl_keyfile={live.key}: not a PEM file" \
        in server.output
    assert presented_certificate(server.ssl_port, pki) == second.der
    assert_quiet(server)
    assert stop_and_read(server, f"{DEVICE}.s1") == {f"{DEVICE}.s1": {1: 1.0, 2: 1.0}}


def test_sighup_without_tls_only_says_so(start_server: StartServer) -> None:
    server = start_server()
    hang_up(server, "SIGHUP: no TLS listener, nothing to reload")
    assert_quiet(server)
