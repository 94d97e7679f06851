"""Graceful stop: what a closed connection left unwritten is written before the engine closes.

A connection whose batch is still being written when it closes keeps publishes queued behind that batch,
and its will. The write is held by the test gate plugin (see iotdb_test_gate.py) across the SIGTERM.
"""

from __future__ import annotations

import json
import signal

from iotdb_mqtt.codec import Will

from .conftest import DEVICE, TIMEOUT, StartServer, WriteGate, connected_raw, read_series, row, wait_until

HELD = f"{WriteGate.DEVICE}.s1"
S1 = f"{DEVICE}.s1"
WILL_SERIES = "root.sg.will.gone"


def test_sigterm_writes_what_a_closed_connection_queued_behind_a_write_under_way(
        start_server: StartServer, gate: WriteGate) -> None:
    server = start_server(env=gate.env)
    gate.hold()
    will = json.dumps({"device": "root.sg.will", "timestamp": 9, "measurements": ["gone"], "values": [True]})
    client = connected_raw(server, "leaver", 4, will=Will("status/w", will.encode()))
    client.publish(row(1, WriteGate.DEVICE), qos=0)
    gate.wait_holding()
    client.publish(row(2), qos=0)
    client.publish(row(3), qos=0)
    client.close()  # no DISCONNECT: the will is queued behind rows 2 and 3
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "shutting down" in server.output), server.output
    gate.release()
    assert server.process.wait(TIMEOUT * 3) == 0, server.output
    data = read_series(server.data_dir, HELD, S1, WILL_SERIES)
    assert data == {HELD: {1: 1.5}, S1: {2: 1.5, 3: 1.5}, WILL_SERIES: {9: True}}
