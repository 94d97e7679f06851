"""MQTT publishers as users with privileges: refused rows, and connections closed when a user changes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

import paho.mqtt.client as mqtt

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, PahoPublisher, StartServer, dead_letters, row, stop_and_read, wait_until

NOT_AUTHORIZED = 0x87


def sql(server: ServerProcess, statement: str) -> dict[str, Any]:
    """Run a statement as root over REST."""
    request = urllib.request.Request(server.rest_url + "/rest/v2/nonQuery", method="POST",
                                     data=json.dumps({"sql": statement}).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"root:root").decode())
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def iotdb(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def with_meter(start_server: StartServer) -> ServerProcess:
    """A server where user meter may publish on every topic (the broker's topic ACL) but write only the
    series of root.sg.d1 (its privileges)."""
    server = start_server(enable_rest_service="true")
    assert sql(server, "CREATE USER meter 'meter-pw'")["code"] == 200
    assert sql(server, "GRANT WRITE_DATA ON root.sg.d1.** TO USER meter")["code"] == 200
    granted = iotdb("--data-dir", str(server.data_dir), "acl", "grant", "meter", "write", "#")
    assert granted.returncode == 0, granted.stderr
    time.sleep(1.0)  # the server re-reads the ACL file within a second
    return server


def test_rows_the_publisher_may_not_write_are_refused_with_0x87(start_server: StartServer) -> None:
    server = with_meter(start_server)
    publisher = PahoPublisher(server, "meter-1", mqtt.MQTTv5, username="meter", password="meter-pw")
    allowed, refused = publisher.publish_all([row(1), row(2, device="root.sg.d2")])
    mixed = json.dumps([json.loads(row(3)), json.loads(row(3, device="root.sg.d2"))]).encode()
    (partly,) = publisher.publish_all([mixed])
    assert publisher.acks[allowed] == 0
    assert publisher.acks[refused] == NOT_AUTHORIZED
    assert publisher.acks[partly] == NOT_AUTHORIZED
    publisher.close()
    letters = dead_letters(server)
    assert [letter.username for letter in letters] == ["meter", "meter"]
    assert letters[0].reason == ("not authorized: user 'meter' lacks WRITE_DATA on root.sg.d2.s1, root.sg.d2.s2; "
                                 "nothing of it was written")
    assert letters[1].reason.endswith("the payload's other series were written")
    data = stop_and_read(server, "root.sg.d1.s1", "root.sg.d2.s1")
    assert data == {"root.sg.d1.s1": {1: 1.5, 3: 1.5}, "root.sg.d2.s1": {}}


def test_mqtt_3_publishers_are_refused_too(start_server: StartServer) -> None:
    server = with_meter(start_server)
    publisher = PahoPublisher(server, "meter-3", mqtt.MQTTv311, username="meter", password="meter-pw")
    publisher.publish_all([row(1, device="root.other.d1")])
    publisher.close()
    assert [letter.topic for letter in dead_letters(server)] == ["root/sg/d1"]
    assert stop_and_read(server, "root.other.d1.s1") == {"root.other.d1.s1": {}}


def test_connections_close_when_the_password_changes_or_the_user_goes(start_server: StartServer) -> None:
    server = with_meter(start_server)
    first = PahoPublisher(server, "meter-a", mqtt.MQTTv5, username="meter", password="meter-pw")
    other = PahoPublisher(server, "root-a", mqtt.MQTTv5)
    changed = iotdb("user", "passwd", "meter", "--password-stdin", "--data-dir", str(server.data_dir),
                    stdin="meter-new\n")
    assert changed.returncode == 0, changed.stderr
    started = time.monotonic()
    assert wait_until(lambda: first.disconnected, timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert not other.disconnected
    stale = PahoPublisher(server, "meter-b", mqtt.MQTTv5, username="meter", password="meter-pw")
    assert stale.connack is not None and stale.connack.value == 0x86  # bad user name or password
    fresh = PahoPublisher(server, "meter-c", mqtt.MQTTv5, username="meter", password="meter-new")
    assert fresh.connack is not None and fresh.connack.value == 0
    assert sql(server, "DROP USER meter")["code"] == 200
    assert wait_until(lambda: fresh.disconnected, timeout=1.0)
    assert not other.disconnected
    other.close()
    for client in (first, stale, fresh):
        client.client.loop_stop()
    assert "closing MQTT connection" in server.output and "password changed" in server.output


def test_every_start_warns_while_root_has_the_default_password(start_server: StartServer) -> None:
    first = start_server()
    assert "created user 'root' with the default password" in first.output
    first.stop()
    again = start_server()
    assert "user 'root' still has the default password" in again.output
    again.stop()
    changed = iotdb("user", "passwd", "root", "--password-stdin", "--data-dir", str(again.data_dir),
                    stdin="a-real-password\n")
    assert changed.returncode == 0, changed.stderr
    quiet = start_server()
    assert "default password" not in quiet.output
