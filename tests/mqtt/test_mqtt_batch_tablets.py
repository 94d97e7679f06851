"""Batch documents over MQTT: formatted as tablets and written with ``write_tablets_deferred``.

The server formats a ``timestamps`` document into one tablet when no ``iotdb_before_write`` hook is registered
(``bounds``, the example plugin's, is disabled here); with one (the test gate plugin's) it formats rows. Each
scenario runs against both servers and must give the same acknowledgements, reason strings, dead letters and
stored points.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_mqtt.codec import PubAck, Publish, encode

from .conftest import (
    DEVICE,
    TIMEOUT,
    TOPIC,
    PahoPublisher,
    StartServer,
    WriteGate,
    connected_raw,
    dead_letters,
    read_series,
    row,
    stop_and_read,
    wait_until,
)
from .test_mqtt_privileges import iotdb, sql

NO_HOOKS = {"IOTDB_DISABLE_PLUGINS": "bounds"}
S1, S2 = f"{DEVICE}.s1", f"{DEVICE}.s2"
D2 = "root.sg.d2"


def batch(first: int, count: int, device: str = DEVICE, values: Any = None) -> bytes:
    """A ``timestamps`` document of ``count`` rows from ``first`` with measurements s1 and s2."""
    stamps = list(range(first, first + count))
    rows = values if values is not None else [[t + 0.5, t * 2.0] for t in stamps]
    return json.dumps({"device": device, "timestamps": stamps, "measurements": ["s1", "s2"],
                       "values": rows}).encode()


def start(start_server: StartServer, gate: WriteGate, path: str, name: str, **properties: object) -> ServerProcess:
    """A server formatting tablets (``path="tablets"``) or rows (a write hook registered)."""
    env = dict(NO_HOOKS) if path == "tablets" else {**gate.env, **NO_HOOKS}
    return start_server(name=name, env=env, **properties)


def test_batch_documents_published_by_paho_are_stored(start_server: StartServer, gate: WriteGate) -> None:
    server = start(start_server, gate, "tablets", "paho")
    publisher = PahoPublisher(server, "batcher", mqtt.MQTTv5)
    mids = publisher.publish_all([batch(number * 100, 100) for number in range(20)])
    assert [publisher.acks[mid] for mid in mids] == [0] * 20
    publisher.close()
    data = stop_and_read(server, S1, S2)
    assert data[S1] == {t: t + 0.5 for t in range(2000)}
    assert data[S2] == {t: t * 2.0 for t in range(2000)}


def _mixed_batch(server: ServerProcess) -> tuple[list[tuple[int, str | None]], list[tuple[str, str]], dict]:
    """Pipelined publishes of one connection (one ingest batch): good and bad batch documents, a single row, a
    second device; returns the acks, the dead letters and the stored points."""
    client = connected_raw(server, "mixed", 5)
    payloads = [
        batch(1, 3),
        b"{bad",
        batch(4, 3, values=[[4.5, 8.0], ["x", 10.0], [6.5, 12.0]]),  # "x" cannot go into the DOUBLE series s1
        row(7),
        batch(1, 2, device=D2, values=[[1, True], [2, False]]),
        batch(8, 2),
        batch(8, 1, values=[[80.5, None]]),  # the same timestamp again: the last write wins
    ]
    client.send_raw(b"".join(encode(Publish(TOPIC, payload, 1, False, False, number + 1), 5)
                             for number, payload in enumerate(payloads)))
    acks = [client.expect(PubAck) for _ in payloads]
    assert [ack.packet_id for ack in acks] == list(range(1, len(payloads) + 1))
    client.disconnect()
    letters = [(letter.topic, letter.reason) for letter in dead_letters(server)]
    data = stop_and_read(server, S1, S2, f"{D2}.s1", f"{D2}.s2")
    return [(ack.reason_code, ack.properties.reason_string) for ack in acks], letters, data


def test_mixed_batch_outcomes_are_the_row_paths(start_server: StartServer, gate: WriteGate) -> None:
    by_tablets = _mixed_batch(start(start_server, gate, "tablets", "tablets", mqtt_ack_reason_strings="true"))
    by_rows = _mixed_batch(start(start_server, gate, "rows", "rows", mqtt_ack_reason_strings="true"))
    assert by_tablets == by_rows
    acks, letters, data = by_tablets
    assert [code for code, _ in acks] == [0, 0x99, 0x99, 0, 0, 0, 0]
    assert len(letters) == 2
    assert "invalid JSON" in letters[0][1]
    assert letters[1][1].startswith("1 value(s) rejected, the others written: root.sg.d1.s1 at 5 = 'x'")
    assert data[S1] == {1: 1.5, 2: 2.5, 3: 3.5, 4: 4.5, 6: 6.5, 7: 1.5, 8: 80.5, 9: 9.5}
    assert data[S2] == {1: 2.0, 2: 4.0, 3: 6.0, 4: 8.0, 5: 10.0, 6: 12.0, 7: 2.0, 8: 16.0, 9: 18.0}
    assert data[f"{D2}.s1"] == {1: 1.0, 2: 2.0}  # integers infer DOUBLE by default, as for rows
    assert data[f"{D2}.s2"] == {1: True, 2: False}


def _refused(start_server: StartServer, gate: WriteGate, path: str) -> tuple[list[int], list[str], dict]:
    server = start(start_server, gate, path, path, enable_rest_service="true")
    assert sql(server, "CREATE USER meter 'meter-pw'")["code"] == 200
    assert sql(server, "GRANT WRITE_DATA ON root.sg.d1.s1 TO USER meter")["code"] == 200
    assert sql(server, "GRANT WRITE_DATA ON root.sg.d2.** TO USER meter")["code"] == 200
    granted = iotdb("--data-dir", str(server.data_dir), "acl", "grant", "meter", "write", "#")
    assert granted.returncode == 0, granted.stderr
    time.sleep(1.0)  # the server re-reads the ACL file within a second
    publisher = PahoPublisher(server, "meter-1", mqtt.MQTTv5, username="meter", password="meter-pw")
    both = json.dumps([json.loads(batch(20, 7)), json.loads(batch(30, 2, device=D2))]).encode()
    mids = publisher.publish_all([batch(10, 7), batch(40, 3, device=D2), both])
    acks = [publisher.acks[mid] for mid in mids]
    publisher.close()
    reasons = [letter.reason for letter in dead_letters(server)]
    return acks, reasons, stop_and_read(server, S1, S2, f"{D2}.s1")


def test_refused_series_are_named_as_the_row_path_names_them(start_server: StartServer, gate: WriteGate) -> None:
    by_tablets = _refused(start_server, gate, "tablets")
    by_rows = _refused(start_server, gate, "rows")
    assert by_tablets == by_rows
    acks, reasons, data = by_tablets
    assert acks == [0x87, 0, 0x87]
    assert reasons[0] == ("not authorized: user 'meter' lacks WRITE_DATA on root.sg.d1.s2, root.sg.d1.s2, "
                          "root.sg.d1.s2, root.sg.d1.s2, root.sg.d1.s2 and 2 more; the payload's other series were "
                          "written")
    assert data[S1] == {t: t + 0.5 for t in [*range(10, 17), *range(20, 27)]}
    assert data[S2] == {}
    assert data[f"{D2}.s1"] == {t: t + 0.5 for t in [30, 31, 40, 41, 42]}


@pytest.mark.parametrize("wal_mode", ["SYNC"])
def test_acknowledged_batches_survive_a_kill(start_server: StartServer, wal_mode: str) -> None:
    """QoS 1 acknowledgements come only once the tablets are durable: after SIGKILL every acked point is there."""
    server = start_server(name="killed", env=NO_HOOKS, wal_mode=wal_mode)
    publisher = PahoPublisher(server, "durable", mqtt.MQTTv311)
    infos = [publisher.client.publish(TOPIC, batch(number * 50, 50), qos=1) for number in range(40)]
    assert wait_until(lambda: len(publisher.acks) >= 10, timeout=TIMEOUT)
    acked = set(publisher.acks)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(TIMEOUT)
    publisher.client.loop_stop()
    numbers = [number for number, info in enumerate(infos) if info.mid in acked]
    data = read_series(Path(server.data_dir), S1)[S1]
    for number in numbers:
        assert all(data.get(t) == t + 0.5 for t in range(number * 50, number * 50 + 50)), number
