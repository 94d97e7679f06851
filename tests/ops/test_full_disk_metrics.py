"""The read-only state in ``/metrics`` and ``iotdb status`` while a real tmpfs under ``iotdb serve`` is full, and
back to writable once space is freed (real paho-mqtt QoS 1 publishers keep writing throughout)."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

from .test_full_disk import TIMEOUT, Publisher, fill, ping, tmpfs  # noqa: F401 - tmpfs is the fixture


def read_only(server: ServerProcess) -> list[tuple[str, float]]:
    """The samples of ``iotdb_read_only`` as (reason, value)."""
    request = urllib.request.Request(server.rest_url + "/metrics", headers={"Authorization": "Basic cm9vdDpyb290"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read().decode()
    return [(sample.labels["reason"], sample.value) for family in text_string_to_metric_families(text)
            if family.name == "iotdb_read_only" for sample in family.samples]


def status_state(server: ServerProcess) -> str:
    done = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "status", "--url", server.rest_url],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("state  ")]
    return line.removeprefix("state").strip()


@pytest.mark.slow
def test_metrics_and_status_report_the_read_only_state(tmpfs: Path) -> None:  # noqa: F811
    server = ServerProcess(tmpfs / "server", properties={
        "enable_rest_service": "true", "memtable_flush_interval_in_ms": 1000,
        "wal_file_size_threshold_in_byte": 1024 * 1024,
    }).start(timeout=TIMEOUT)
    stop = threading.Event()
    publisher = Publisher(server, 0, stop)
    try:
        publisher.start()
        assert wait_until(lambda: len(publisher.acked) >= 20, TIMEOUT), "no traffic"
        assert read_only(server) == [("", 0)]
        assert status_state(server) == "writable"

        filler = fill(tmpfs)
        assert wait_until(lambda: ping(server) == 503, TIMEOUT), "the server never reported the full disk"
        [(reason, flag)] = read_only(server)
        assert flag == 1
        assert "is read-only" in reason and "No space left on device" in reason, reason
        assert status_state(server) == f"READ-ONLY: {reason}"

        filler.unlink()
        assert wait_until(lambda: ping(server) == 200, TIMEOUT), "the server did not resume by itself"
        assert read_only(server) == [("", 0)]
        assert status_state(server) == "writable"
    finally:
        stop.set()
        publisher.join(TIMEOUT)
        code = server.stop(timeout=TIMEOUT)
    assert code == 0, server.output
    assert "Traceback" not in server.output, server.output
