"""A second storage backend supplied by the ``iotdb_storage_backend`` hook runs a real ``iotdb serve``.

The backend (``iotdb_memory_backend.py``, in-memory, written from ``docs/plugins.md``) is installed as a
plugin distribution on ``PYTHONPATH``; real paho-mqtt QoS 1 publishes and real REST calls go through it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

from .conftest import TIMEOUT, RestClient, stop_server


def install_backend(directory: Path) -> dict[str, str]:
    """The environment that makes ``iotdb serve`` load the memory backend through its entry point."""
    site = directory / "site"
    info = site / "iotdb_memory_backend-1.0.dist-info"
    info.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("iotdb_memory_backend.py"), site / "iotdb_memory_backend.py")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: iotdb-memory-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[iotdb]\nmemory_backend = iotdb_memory_backend\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(site), os.environ.get("PYTHONPATH"))))}


def test_a_backend_from_the_docs_serves_mqtt_sql_and_rest(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", properties={"enable_rest_service": "true"},
                           env=install_backend(tmp_path)).start(timeout=TIMEOUT * 3)
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="memory-backend", protocol=mqtt.MQTTv311)
        client.username_pw_set("root", "root")
        client.connect(server.host, server.port, keepalive=30)
        client.loop_start()
        try:
            infos = [
                client.publish("root/mem/d1", json.dumps(
                    {"device": "root.mem.d1", "timestamp": 100 + i, "measurements": ["t"], "values": [i + 0.5]}
                ).encode(), qos=1)
                for i in range(20)
            ]
            for info in infos:
                info.wait_for_publish(TIMEOUT)
                assert info.is_published()
        finally:
            client.disconnect()
            client.loop_stop()
        rest = RestClient(server)
        body = rest.query("SELECT t FROM root.mem.d1")
        assert body["timestamps"] == list(range(100, 120))
        assert body["values"] == [[i + 0.5 for i in range(20)]]
        assert rest.query("SELECT LAST t FROM root.mem.d1")["values"] == [["root.mem.d1.t"], ["19.5"], ["DOUBLE"]]
        assert rest.query("SELECT count(t) FROM root.mem.d1")["values"] == [[20]]
        rest.non_query("INSERT INTO root.mem.d2(time, s) VALUES (5, 7)")
        reply = rest.request("POST", "/rest/v2/insertTablet", {
            "device": "root.mem.d3", "timestamps": [1, 2], "measurements": ["x"], "data_types": ["DOUBLE"],
            "values": [[1.0, 2.0]], "is_aligned": False,
        })
        assert reply.status == 200 and reply.body["code"] == 200, reply.text
        assert rest.query("SELECT x FROM root.mem.d3")["values"] == [[1.0, 2.0]]
        assert rest.query("SHOW DEVICES")["values"][0] == ["root.mem.d1", "root.mem.d2", "root.mem.d3"]
        refused = rest.request("POST", "/rest/v2/nonQuery", {"sql": "DELETE FROM root.mem.d1.t"})
        assert refused.body["code"] == 701 and "not supported by this storage engine" in refused.body["message"]
        assert wait_until(lambda: rest.request("GET", "/ping").status == 200, TIMEOUT)
        # a backend without SupportsStats: the service figures are there, the engine's are left out
        metrics = rest.request("GET", "/metrics")
        assert metrics.status == 200 and "iotdb_mqtt_publishes_received 20" in metrics.text
        assert "iotdb_memtable_bytes" not in metrics.text and "iotdb_wal_bytes" not in metrics.text
        overview = rest.request("GET", "/console/api/overview")
        assert overview.status == 200 and overview.body["engine"] is None
        status = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "status", "--url", rest.base],
                                capture_output=True, text=True, timeout=TIMEOUT * 3, check=False)
        assert status.returncode == 0, status.stderr
        assert "\nengine figures  not reported by this storage backend\n" in status.stdout
        assert "Flushes and compactions\nnot reported by this storage backend" in status.stdout
    finally:
        stop_server(server)
    assert "Traceback" not in server.output, server.output
    assert (server.data_dir / "memory-backend-closed").read_text() == "3"
    assert not (server.data_dir / "wal").exists() and not (server.data_dir / "sequence").exists()


def test_a_backend_missing_a_call_is_refused_at_startup(tmp_path: Path) -> None:
    env = install_backend(tmp_path)
    module = tmp_path / "site" / "iotdb_memory_backend.py"
    module.write_text(module.read_text() + "\ndel MemoryBackend.write_rows_deferred\n")
    server = ServerProcess(tmp_path / "server", env=env)
    try:
        server.start(timeout=TIMEOUT * 3)
        raise AssertionError("the server started with an incomplete backend")
    except RuntimeError:
        pass
    assert server.process is not None and server.process.wait(TIMEOUT) != 0
    assert "lacks write_rows_deferred" in server.output
    assert "Traceback" not in server.output, server.output
