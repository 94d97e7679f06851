"""A disk that fills up under a running ``iotdb serve`` with real paho-mqtt QoS 1 publishers, then frees up.

The data directory is a real tmpfs of a few MiB, filled to the brim with a filler file while publishers
keep sending. Expected: writes fail cleanly (nothing acknowledged that is not stored), ``/ping`` answers 503
while full, the server goes on by itself once the filler is deleted or the tmpfs is grown (no restart),
and every acknowledged message is stored exactly once. Skipped, with the reason, where tmpfs cannot be
mounted (not root, no mount permission).
"""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

MEASUREMENTS = [f"m{i}" for i in range(40)]  # ~1 KB of WAL per message: the disk fills in a few seconds
PUBLISHERS = 2
TIMEOUT = 60.0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a filler file until the file system is full; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            chunk = b"\xff" * size
            while True:
                try:
                    out.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def ping(server: ServerProcess) -> int:
    try:
        with urllib.request.urlopen(server.rest_url + "/ping", timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def query(server: ServerProcess, sql: str) -> dict[str, object]:
    request = urllib.request.Request(server.rest_url + "/rest/v2/query", data=json.dumps({"sql": sql}).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": "Basic cm9vdDpyb290"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


class Publisher(threading.Thread):
    """Publishes messages 0, 1, 2... of its own device at QoS 1; a message counts as sent once its PUBACK
    arrived. An unacknowledged message is sent again (after reconnecting) until it is acknowledged."""

    def __init__(self, server: ServerProcess, number: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.server, self.number, self.stop = server, number, stop
        self.device = f"root.full.p{number}"
        self.acked: list[int] = []
        self.failures = 0

    def connect(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"full-{self.number}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.username_pw_set("root", "root")
        client.connect(self.server.host, self.server.port, keepalive=30)
        client.loop_start()
        return client

    def run(self) -> None:
        client = self.connect()
        timestamp = 0
        while not self.stop.is_set():
            payload = json.dumps({"device": self.device, "timestamp": timestamp, "measurements": MEASUREMENTS,
                                  "values": [float(timestamp)] * len(MEASUREMENTS)}).encode()
            info = client.publish(self.device.replace(".", "/"), payload, qos=1)
            with contextlib.suppress(RuntimeError, ValueError):  # the connection was closed meanwhile
                info.wait_for_publish(2.0)
            if info.is_published():
                self.acked.append(timestamp)
                timestamp += 1
                continue
            self.failures += 1  # not acknowledged: the server refused it; reconnect and send it again
            client.disconnect()
            client.loop_stop()
            time.sleep(0.2)
            try:
                client = self.connect()
            except OSError:
                time.sleep(0.5)
        client.disconnect()
        client.loop_stop()


@pytest.mark.slow
@pytest.mark.parametrize("relief", ["delete", "grow"])
def test_full_disk_refuses_then_resumes_without_losing_or_duplicating(tmpfs: Path, relief: str) -> None:
    server = ServerProcess(tmpfs / "server", properties={
        "enable_rest_service": "true", "memtable_flush_interval_in_ms": 1000,
        "wal_file_size_threshold_in_byte": 1024 * 1024,
    }).start(timeout=TIMEOUT)
    stop = threading.Event()
    publishers = [Publisher(server, number, stop) for number in range(PUBLISHERS)]
    try:
        for publisher in publishers:
            publisher.start()
        assert wait_until(lambda: all(len(p.acked) >= 50 for p in publishers), TIMEOUT), "no traffic"
        assert ping(server) == 200
        filler = fill(tmpfs)
        assert wait_until(lambda: ping(server) == 503, TIMEOUT), "the server never reported the full disk"
        stalled = [len(p.acked) for p in publishers]
        time.sleep(2.0)
        assert ping(server) == 503
        assert [len(p.acked) for p in publishers] == stalled or all(
            len(p.acked) - before < 5 for p, before in zip(publishers, stalled, strict=True)
        ), "writes were acknowledged while the disk was full"
        if relief == "delete":
            filler.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,size=64m", str(tmpfs)], check=True)
        assert wait_until(lambda: ping(server) == 200, TIMEOUT), "the server did not resume by itself"
        assert wait_until(lambda: all(len(p.acked) >= before + 50 for p, before in zip(publishers, stalled,
                                                                                       strict=True)), TIMEOUT)
        stop.set()
        for publisher in publishers:
            publisher.join(TIMEOUT)
        for publisher in publishers:
            body = query(server, f"SELECT m0, m39 FROM {publisher.device}")
            stamps = body["timestamps"]
            assert isinstance(stamps, list)
            assert len(stamps) == len(set(stamps)), "a timestamp appears twice"
            assert set(publisher.acked) <= set(stamps), "an acknowledged message was lost"
            assert body["values"] == [[float(t) for t in stamps]] * 2
            assert publisher.failures > 0  # the full disk was really met
    finally:
        stop.set()
        code = server.stop(timeout=TIMEOUT)
    output = server.output
    assert code == 0, output
    assert "Traceback" not in output, output
    assert output.count("is read-only") >= 1 and output.count("writable again") >= 1, output
    assert output.count("probing until it can write again") <= 3, output  # once per episode, not per write


@pytest.mark.slow
def test_shutdown_while_full_is_one_line_without_a_traceback(tmpfs: Path) -> None:
    server = ServerProcess(tmpfs / "server", properties={
        "enable_rest_service": "true", "memtable_flush_interval_in_ms": 1000,
    }).start(timeout=TIMEOUT)
    stop = threading.Event()
    publisher = Publisher(server, 0, stop)
    try:
        publisher.start()
        assert wait_until(lambda: len(publisher.acked) >= 20, TIMEOUT), "no traffic"
        fill(tmpfs)
        assert wait_until(lambda: ping(server) == 503, TIMEOUT), "the server never reported the full disk"
        stop.set()
        publisher.join(TIMEOUT)
    finally:
        stop.set()
        code = server.stop(timeout=TIMEOUT)
    output = server.output
    assert "Traceback" not in output, output
    last = output.strip().splitlines()[-1]
    assert code != 0 and last.startswith("iotdb serve: error: ") and "read-only" in last, output
