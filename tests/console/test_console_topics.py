"""The console's live topic view against a real ``iotdb serve``: in Chromium (publishing with paho-mqtt and
mosquitto_pub during the test) and over HTTP for what a page cannot show (a browser that stops reading, an ACL
change, a shutdown while streaming).

Only ``plant/#`` is ingested on this module's server, so the test topics are routed without dead letters.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, Browser, Publisher, rest, serve_console, wait_until


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The console's server with room for a fast subscriber's backlog, ingesting only ``plant/#``."""
    yield from serve_console(tmp_path_factory, mqtt_ingest_topics="plant/#", mqtt_max_queued_messages=5000,
                             mqtt_max_queued_bytes=64 * 1024 * 1024)


def mosquitto_pub(server: ServerProcess, topic: str, message: str, *, retain: bool = False,
                  user: str = "root", password: str = "root") -> None:
    command = ["mosquitto_pub", "-h", server.host, "-p", str(server.port), "-u", user, "-P", password,
               "-q", "1", "-t", topic, "-m", message, *(["-r"] if retain else [])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr


def iotdb(server: ServerProcess, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "--data-dir", str(server.data_dir), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def add_viewer(server: ServerProcess, name: str, pattern: str) -> None:
    """A user whose topic ACL lets it read ``pattern`` only."""
    status, body = rest(server, "/rest/v2/nonQuery", {"sql": f"CREATE USER {name} '{name}-pw'"})
    assert status == 200 and body["code"] == 200, body
    iotdb(server, "acl", "grant", name, "read", pattern)

    def in_force() -> bool:  # the server re-reads the ACL file within a second
        probe = Stream(server, pattern, user=name, password=f"{name}-pw")
        probe.close()
        return probe.status == 200

    assert wait_until(in_force), f"the grant of {pattern!r} to {name!r} did not take effect"


class Stream:
    """``GET /console/api/topics/stream`` read as Server-Sent Events with http.client (Basic credentials)."""

    def __init__(self, server: ServerProcess, topic_filter: str, *, user: str = "root", password: str = "root",
                 timeout: float = TIMEOUT) -> None:
        self.connection = http.client.HTTPConnection(server.rest_host, server.rest_port, timeout=timeout)
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.connection.request("GET", "/console/api/topics/stream?filter=" + urllib.parse.quote(topic_filter),
                                headers={"Authorization": "Basic " + credentials})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.messages: list[dict[str, Any]] = []
        self.received = self.dropped = 0
        self.end: str | None = None

    def json(self) -> Any:
        return json.loads(self.response.read())

    def read_event(self) -> str | None:
        """Read one event (skipping comments) and apply it; its name, or None at the end of the stream."""
        name, data = None, []
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode("utf-8").rstrip("\n")
            if text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].strip())
            elif not text and data:
                break
        body = json.loads("\n".join(data))
        if name == "messages":
            self.messages.extend(body["messages"])
            self.received, self.dropped = body["received"], body["dropped"]
        elif name == "end":
            self.end = body["reason"]
        return name

    def close(self) -> None:
        self.connection.close()


# ------------------------------------------------------------------------------------- in the browser


def test_live_view_shows_retained_and_live_messages_with_pause_and_clear(console_server: ServerProcess,
                                                                         page: Browser) -> None:
    mosquitto_pub(console_server, "sensors/line1/state", "running", retain=True)
    page.do("login", user="root", password="root")
    watching = page.do("liveSubscribe", filter="sensors/#")
    assert watching["state"]["status"] == "watching" and watching["error"] == "", watching
    retained = page.do("liveUntil", topic="sensors/line1/state")
    first = retained["state"]["messages"][0]
    assert first["topic"] == "sensors/line1/state" and first["retain"] is True and first["payload"] == "running"
    assert "retained" in retained["items"][0]["meta"] and "QoS 1" in retained["items"][0]["meta"]

    publisher = Publisher(console_server, "topics-sensor")
    try:
        publisher.publish("sensors/line1/temperature", [b'{"value": 21.5, "unit": "C"}'], qos=1)
        publisher.publish("sensors/line1/raw", [bytes([0xFF, 0x00, 0x10])], qos=0)
        publisher.publish("elsewhere/line1", [b"not watched"], qos=1)
        publisher.publish("sensors/line1/note", [b"door open"], qos=1)
        seen = page.do("liveUntil", topic="sensors/line1/note")
        by_topic = {m["topic"]: m for m in seen["state"]["messages"]}
        assert "elsewhere/line1" not in by_topic
        assert by_topic["sensors/line1/temperature"]["qos"] == 1 and by_topic["sensors/line1/raw"]["qos"] == 0
        raw = by_topic["sensors/line1/raw"]
        assert raw["encoding"] == "hex" and raw["payload"] == "ff0010"
        assert not by_topic["sensors/line1/temperature"]["retain"]
        shown = {item["topic"]: item for item in seen["items"]}
        assert seen["items"][0]["topic"] == "sensors/line1/note"  # newest first
        assert shown["sensors/line1/temperature"]["payload"] == '{\n  "value": 21.5,\n  "unit": "C"\n}'
        assert "JSON" in shown["sensors/line1/temperature"]["meta"]
        assert shown["sensors/line1/raw"]["payload"] == "ff 00 10"
        assert "hex, 3 bytes" in shown["sensors/line1/raw"]["meta"]
        assert shown["sensors/line1/note"]["payload"] == "door open"
        page.do("screenshot", name="topics", full=False)

        stop = threading.Event()

        def feed() -> None:
            count = 0
            while not stop.is_set():
                publisher.publish("sensors/line2/counter", [str(count + i).encode() for i in range(5)], qos=0)
                count += 5
                stop.wait(0.1)

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            rated = page.do("liveUntil", topic="sensors/line2/counter", rate=True)
        finally:
            stop.set()
            feeder.join()
        assert rated["state"]["rate"] > 0 and rated["rate"].endswith("messages/s") and rated["rate"] != "0 messages/s"
        assert rated["state"]["dropped"] == 0 and rated["dropped"] == "0"

        page.do("liveUntil", count=len(rated["state"]["messages"]))
        paused = page.do("liveButton", name="Pause")
        assert paused["state"]["paused"] is True
        frozen = len(paused["items"])
        # On a topic of its own, published after the counters by the same client, so it arrives after every
        # one of them (per-publisher order), however many were still on their way when the page paused.
        publisher.publish("sensors/line1/paused", [b"while paused"], qos=1)
        held = page.do("liveUntil", topic="sensors/line1/paused")
        assert held["state"]["messages"][-1]["payload"] == "while paused"
        assert len(held["items"]) == frozen and "new while paused" in held["shown"]
        resumed = page.do("liveButton", name="Resume")
        assert resumed["items"][0]["payload"] == "while paused"
        assert len(resumed["items"]) == len(held["state"]["messages"])
        cleared = page.do("liveButton", name="Clear")
        assert cleared["items"] == [] and cleared["state"]["messages"] == []
        stopped = page.do("liveButton", name="Stop")
        assert stopped["state"]["status"] == "stopped"
    finally:
        publisher.close()


def test_the_page_keeps_only_the_last_500_messages(console_server: ServerProcess, page: Browser) -> None:
    page.do("login", user="root", password="root")
    page.do("liveSubscribe", filter="bounded/#")
    publisher = Publisher(console_server, "bounded-sensor")
    try:
        publisher.publish("bounded/n", [str(i).encode() for i in range(620)], qos=1)
        full = page.do("liveUntil", topic="bounded/n", count=500)
        wait_until(lambda: page.do("liveUntil")["state"]["received"] == 620)
        final = page.do("liveUntil", count=500)
    finally:
        publisher.close()
    assert full["state"]["status"] == "watching"
    assert final["state"]["received"] == 620 and final["state"]["dropped"] == 0
    assert [m["payload"] for m in final["state"]["messages"]] == [str(i) for i in range(120, 620)]
    assert len(final["items"]) == 500 and final["items"][0]["payload"] == "619"


def test_a_filter_the_acl_refuses_shows_the_refusal(console_server: ServerProcess, page: Browser) -> None:
    add_viewer(console_server, "viewer", "sensors/public/#")
    page.do("login", user="viewer", password="viewer-pw")
    refused = page.do("liveSubscribe", filter="sensors/#")
    assert refused["state"]["status"] == "refused"
    assert "user 'viewer' may not subscribe to 'sensors/#'" in refused["error"], refused
    assert "iotdb acl list viewer" in refused["error"]
    page.do("screenshot", name="topics-refused", full=False)
    invalid = page.do("liveSubscribe", filter="sensors/#/x")
    assert invalid["state"]["status"] == "refused" and "is not a valid topic filter" in invalid["error"], invalid
    allowed = page.do("liveSubscribe", filter="sensors/public/#")
    assert allowed["state"]["status"] == "watching" and allowed["error"] == ""
    mosquitto_pub(console_server, "sensors/private/secret", "hidden")
    mosquitto_pub(console_server, "sensors/public/lobby", "21.0")
    seen = page.do("liveUntil", topic="sensors/public/lobby")
    assert [m["topic"] for m in seen["state"]["messages"]] == ["sensors/public/lobby"]


def test_keyboard_only_and_a_phone_sized_window(console_server: ServerProcess, page: Browser) -> None:
    page.do("fresh", width=390, height=844)
    mosquitto_pub(console_server, "phone/hello", "retained for the phone", retain=True)
    page.do("login", user="root", password="root")
    walked = page.do("liveKeyboard", filter="phone/#", tabs=5, messages=1)
    assert [link["name"] for link in walked["links"]] == [
        "Overview", "Clients", "Data explorer", "SQL", "Dead letters", "Live topics"]
    controls = walked["controls"]
    assert controls[0]["tag"] == "H1" and controls[0]["name"] == "Live topics"
    assert [c["id"] for c in controls[1:]] == ["topics-filter", "topics-subscribe", "topics-pause", "topics-clear",
                                              "topics-stop", "topics-list"]
    assert controls[1]["name"] == "Topic filter"
    assert all(c["visible"] for c in walked["links"] + controls[1:]), walked
    assert walked["pausedBySpace"] is True
    assert walked["state"]["state"]["filter"] == "phone/#"
    page.do("liveButton", name="Resume")
    long_topic = "phone/" + "/".join(f"level-{i}" for i in range(12))
    mosquitto_pub(console_server, long_topic, json.dumps({"reading": list(range(60)), "site": "x" * 200}))
    seen = page.do("liveUntil", topic=long_topic)
    assert seen["items"][0]["topic"] == long_topic
    layout = page.do("layout")
    assert layout["scrollWidth"] <= layout["width"], layout
    assert layout["unlabelled"] == [], layout
    page.do("screenshot", name="topics-phone", full=False)


# ------------------------------------------------------------------------------------- over HTTP


def test_a_browser_that_stops_reading_loses_messages_counted_and_never_stalls_the_broker(
        console_server: ServerProcess) -> None:
    total, payload = 3000, b"x" * 8192
    routed: list[str] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bulk-subscriber", protocol=mqtt.MQTTv311)
    subscriber.username_pw_set("root", "root")
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.on_message = lambda _client, _data, message: routed.append(message.topic)
    subscriber.connect(console_server.host, console_server.port, keepalive=30)
    subscriber.loop_start()
    stream = Stream(console_server, "bulk/#")  # read nothing until the end: a stuck browser
    publisher = Publisher(console_server, "bulk-publisher")
    try:
        assert stream.status == 200
        subscriber.subscribe("bulk/#", qos=1)
        assert subscribed.wait(TIMEOUT)
        began = time.monotonic()
        publisher.publish("bulk/n", [payload] * total, qos=1)
        assert wait_until(lambda: len(routed) == total, 60), f"the MQTT subscriber got {len(routed)} of {total}"
        elapsed = time.monotonic() - began
        while stream.received < total or len(stream.messages) + stream.dropped < total:
            assert stream.read_event() == "messages"
    finally:
        publisher.close()
        subscriber.disconnect()
        subscriber.loop_stop()
        stream.close()
    assert stream.dropped > 0, "the stuck stream dropped nothing: the test did not fill its buffer"
    assert len(stream.messages) + stream.dropped == total
    assert all(m["size"] == 8192 and m["payload"] == payload.decode() for m in stream.messages)
    assert elapsed < 60


def test_an_acl_change_ends_a_view_and_a_stream_needs_a_filter(console_server: ServerProcess) -> None:
    add_viewer(console_server, "auditor", "audit/#")
    assert Stream(console_server, "", user="auditor", password="auditor-pw").status == 400
    refused = Stream(console_server, "#", user="auditor", password="auditor-pw")
    assert refused.status == 403 and "may not subscribe" in refused.json()["message"]
    shared = Stream(console_server, "$share/group/audit/#", user="auditor", password="auditor-pw")
    assert shared.status == 400 and "shared subscription" in shared.json()["message"]
    stream = Stream(console_server, "audit/#", user="auditor", password="auditor-pw")
    try:
        assert stream.status == 200
        mosquitto_pub(console_server, "audit/door", "opened")
        while not stream.messages:
            assert stream.read_event() == "messages"
        assert stream.messages[0]["topic"] == "audit/door"
        iotdb(console_server, "acl", "revoke", "auditor", "audit/#")
        deadline = time.monotonic() + TIMEOUT

        def publish_until_ended() -> None:
            while stream.end is None and time.monotonic() < deadline:
                mosquitto_pub(console_server, "audit/door", "closed")
                time.sleep(0.3)

        feeder = threading.Thread(target=publish_until_ended)
        feeder.start()
        try:
            while stream.end is None and stream.read_event() is not None:
                pass
        finally:
            deadline = 0.0
            feeder.join()
        assert stream.end is not None and "the topic ACL changed" in stream.end, stream.end
        assert "may not subscribe to 'audit/#'" in stream.end
        assert stream.read_event() is None  # the answer ends after the end event
    finally:
        stream.close()


def test_a_shutdown_ends_open_streams_at_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = ServerProcess(tmp_path_factory.mktemp("topics-stop")).start(timeout=60)
    try:
        stream = Stream(server, "#", timeout=30)
        assert stream.status == 200
        began = time.monotonic()
        stopping = threading.Thread(target=server.stop, kwargs={"timeout": 60})
        stopping.start()
        while stream.read_event() not in ("end", None):
            pass
        stopping.join()
        stream.close()
        assert stream.end == "the server is stopping"
        assert time.monotonic() - began < 10, "the open stream held the shutdown up"
        assert server.process is not None and server.process.returncode == 0, server.output
        assert "Traceback" not in server.output, server.output
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
