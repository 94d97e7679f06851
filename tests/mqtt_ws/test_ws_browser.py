"""A browser client: MQTT.js's browser bundle in headless Chromium, over the browser's own WebSocket."""

from __future__ import annotations

import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import DEVICE, TOPIC, assert_healthy, row, run_mqttjs, stop_and_read

S1 = f"{DEVICE}.s1"


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_browser_mqttjs_publishes_qos_0_1_2(server: ServerProcess, version: int) -> None:
    messages = [{"topic": TOPIC, "payload": row(t, value=t).decode(), "qos": t % 3} for t in range(6)]
    report = run_mqttjs("publish", server.ws_url, browser=True, protocolVersion=version, clientId="browser",
                        username="root", password="root", messages=messages)
    assert "HeadlessChrome" in report["userAgent"]
    assert report["pageErrors"] == []
    assert report["error"] is None and report["connack"]["code"] == 0, report
    assert [entry["error"] for entry in report["published"]] == [None] * 6
    acknowledged = [packet["cmd"] for packet in report["received"]]
    assert acknowledged == ["connack", "puback", "pubrec", "pubcomp", "puback", "pubrec", "pubcomp"]
    assert stop_and_read(server, S1)[S1] == {t: float(t) for t in range(6)}


def test_browser_mqttjs_bad_password_is_refused(server: ServerProcess) -> None:
    report = run_mqttjs("connect", server.ws_url, browser=True, protocolVersion=5, clientId="browser-bad",
                        username="root", password="wrong")
    assert report["connack"] is None and report["error"]["code"] == 0x86, report
    assert_healthy(server)
