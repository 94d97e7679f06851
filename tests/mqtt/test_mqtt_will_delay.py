"""MQTT 5 Will Delay Interval: a will is written when its delay passes or the session ends, whichever is first.

The server's writes are observed while it runs through the test gate plugin's log of durable rows
(see iotdb_test_gate.py), so a test waits for the will's write rather than sleeping.
"""

from __future__ import annotations

import json
import time

import pytest

from iotdb_mqtt.codec import Disconnect, Properties, Will

from .conftest import DEVICE, StartServer, WriteGate, connected_raw, row, stop_and_read, wait_until

WILL_DEVICE = "root.sg.will"
WILL_SERIES = f"{WILL_DEVICE}.gone"
S1 = f"{DEVICE}.s1"


def _will(timestamp: int, delay: int) -> Will:
    payload = json.dumps({"device": WILL_DEVICE, "timestamp": timestamp, "measurements": ["gone"], "values": [True]})
    return Will("status/w1", payload.encode(), properties=Properties(will_delay_interval=delay))


def _session(expiry: int) -> Properties:
    return Properties(session_expiry_interval=expiry)


@pytest.mark.parametrize(("will_delay", "session_expiry", "due"),
                         [(1, 60, 1), (60, 1, 1), (60, 0, 0), (0, 60, 0)],
                         ids=["delay-first", "session-ends-first", "no-session", "no-delay"])
def test_will_is_written_when_its_delay_passes_or_the_session_ends(
        start_server: StartServer, gate: WriteGate, will_delay: int, session_expiry: int, due: int) -> None:
    server = start_server(env=gate.env)
    client = connected_raw(server, "mortal", 5, will=_will(1, will_delay), properties=_session(session_expiry))
    closed_at = time.monotonic()
    client.close()
    assert wait_until(lambda: (WILL_DEVICE, 1) in gate.written(), timeout=due + 3), "the will was not written"
    assert time.monotonic() - closed_at >= due
    assert stop_and_read(server, WILL_SERIES)[WILL_SERIES] == {1: True}


@pytest.mark.parametrize("takeover", [False, True], ids=["reconnect", "takeover"])
def test_connecting_again_before_the_will_delay_drops_the_will(start_server: StartServer, takeover: bool) -> None:
    server = start_server()
    first = connected_raw(server, "flaky", 5, will=_will(1, 3600), properties=_session(3600))
    if not takeover:
        first.close()
    second = connected_raw(server, "flaky", 5, clean_start=False, properties=_session(3600))
    if takeover:
        assert [(type(p), p.reason_code) for p in first.wait_closed()] == [(Disconnect, 0x8E)]
    assert second.publish_acked(row(1)).reason_code == 0
    second.disconnect()
    # Shutdown writes the delayed wills still pending (see below): this one was dropped.
    data = stop_and_read(server, WILL_SERIES, S1)
    assert data == {WILL_SERIES: {}, S1: {1: 1.5}}


@pytest.mark.parametrize("takeover", [False, True], ids=["reconnect", "takeover"])
def test_a_clean_start_before_the_will_delay_ends_the_session_and_writes_the_will(
        start_server: StartServer, gate: WriteGate, takeover: bool) -> None:
    server = start_server(env=gate.env)
    first = connected_raw(server, "restarted", 5, will=_will(1, 3600), properties=_session(3600))
    if not takeover:
        first.close()
    second = connected_raw(server, "restarted", 5, clean_start=True)
    if takeover:
        assert [(type(p), p.reason_code) for p in first.wait_closed()] == [(Disconnect, 0x8E)]
    assert wait_until(lambda: (WILL_DEVICE, 1) in gate.written()), "the will was not written"
    second.disconnect()
    assert stop_and_read(server, WILL_SERIES)[WILL_SERIES] == {1: True}


@pytest.mark.parametrize("connected", [False, True], ids=["closed-before", "connected-at-shutdown"])
def test_shutdown_writes_pending_delayed_wills(start_server: StartServer, connected: bool) -> None:
    server = start_server()
    lingering = connected_raw(server, "lingering", 5, will=_will(1, 3600), properties=_session(3600))
    polite = connected_raw(server, "polite", 5, will=_will(2, 3600), properties=_session(3600))
    polite.disconnect()  # a clean DISCONNECT discards the will, delayed or not
    if not connected:
        lingering.close()
    assert stop_and_read(server, WILL_SERIES)[WILL_SERIES] == {1: True}
    if connected:
        assert [(type(p), p.reason_code) for p in lingering.wait_closed()] == [(Disconnect, 0x8B)]
