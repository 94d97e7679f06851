"""Running ``iotdb serve`` as a real subprocess on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

_LISTENING = re.compile(r"serving MQTT on ([\d.]+):(\d+)")
_TLS_LISTENING = re.compile(r"serving MQTT over TLS on ([\d.]+):(\d+)")
_WITHOUT_MQTT = re.compile(r"running without MQTT")
_REST_LISTENING = re.compile(r"serving REST (over HTTPS )?on ([\w.:-]+):(\d+)")
_WS_LISTENING = re.compile(r"serving MQTT over WebSocket on ([\w.:-]+):(\d+), path (\S+)")
_WSS_LISTENING = re.compile(r"serving MQTT over secure WebSocket on ([\w.:-]+):(\d+)")
_RPC_LISTENING = re.compile(r"serving RPC (?:over TLS )?on ([\w.:-]+):(\d+)")


class ServerProcess:
    """One ``iotdb serve`` process with its own configuration file and data directory.

    ``properties`` are written to ``<directory>/iotdb-system.properties``; ``mqtt_port`` defaults to
    0 so the operating system picks a free port, which is read back from the startup log line.
    Unless ``enable_rest_service=false``, the REST port (``rest_service_port`` also defaults to 0 here) is read
    back the same way into :attr:`rest_port` (:attr:`rest_url` is its base URL), and :meth:`start` waits for
    both services. MQTT over WebSocket (``mqtt_ws_port`` defaults to 0 here too; ``-1`` turns it off) is read back
    into :attr:`ws_port` and :attr:`ws_url`. The native RPC service (on by default; ``rpc_port`` defaults to 0
    here) is read back into :attr:`rpc_port` and waited for likewise. With a certificate (``ssl_certfile`` or
    ``mqtt_ssl_certfile``), MQTT over TLS and over secure WebSocket (``mqtt_ssl_port`` and ``mqtt_wss_port``,
    0 here as well) are read back into :attr:`ssl_port` and :attr:`wss_port` (:attr:`wss_url`); with
    ``enable_https``, :attr:`rest_url` starts with ``https``. Output is collected in :attr:`output` (stdout and
    stderr interleaved).
    """

    def __init__(self, directory: Path, properties: Mapping[str, object] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.directory / "data"
        self.config_path = self.directory / "iotdb-system.properties"
        settings: dict[str, object] = {
            "mqtt_host": "127.0.0.1", "mqtt_port": 0, "data_dir": self.data_dir,
            "rest_service_host": "127.0.0.1", "rest_service_port": 0, "mqtt_ws_port": 0,
            "rpc_address": "127.0.0.1", "rpc_port": 0, "mqtt_ssl_port": 0, "mqtt_wss_port": 0,
        }
        settings.update(properties or {})
        self.config_path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        self.env = {**os.environ, **(env or {})}

        def setting(key: str, default: str = "") -> str:
            return self.env.get(f"IOTDB_{key.upper()}", str(settings.get(key, default))).strip()

        enabled = self.env.get("IOTDB_ENABLE_REST_SERVICE", str(settings.get("enable_rest_service", "true")))
        self.rest_enabled = enabled.strip().lower() == "true"
        mqtt = self.env.get("IOTDB_ENABLE_MQTT_SERVICE", str(settings.get("enable_mqtt_service", "true")))
        ws_port = self.env.get("IOTDB_MQTT_WS_PORT", str(settings.get("mqtt_ws_port", "8083")))
        self.ws_enabled = mqtt.strip().lower() == "true" and ws_port.strip() not in ("", "-1")
        mqtt_tls = mqtt.strip().lower() == "true" and bool(setting("mqtt_ssl_certfile") or setting("ssl_certfile"))
        self.tls_enabled = mqtt_tls and setting("mqtt_ssl_port", "8883") not in ("", "-1")
        self.wss_enabled = mqtt_tls and setting("mqtt_wss_port", "8084") not in ("", "-1")
        rpc_enabled = self.env.get("IOTDB_ENABLE_RPC_SERVICE", str(settings.get("enable_rpc_service", "true")))
        self.rpc_enabled = rpc_enabled.strip().lower() == "true"
        self.rpc_host = "127.0.0.1"
        self.rpc_port = 0
        self.host = "127.0.0.1"
        self.port = 0
        self.rest_host = "127.0.0.1"
        self.rest_port = 0
        self.ws_host = "127.0.0.1"
        self.ws_port = 0
        self.ws_path = "/mqtt"
        self.ssl_port = 0
        self.wss_port = 0
        self.rest_scheme = "http"
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        with self._lock:
            return "".join(self._lines)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the process and wait until it listens; raises with its output if it does not."""
        with self._lock:
            self._lines.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=self.env,
        )
        listening = threading.Event()
        rest_listening = threading.Event()
        rpc_listening = threading.Event()
        if not self.rest_enabled:
            rest_listening.set()
        ws_listening = threading.Event()
        if not self.ws_enabled:
            ws_listening.set()
        if not self.rpc_enabled:
            rpc_listening.set()
        tls_listening, wss_listening = threading.Event(), threading.Event()
        if not self.tls_enabled:
            tls_listening.set()
        if not self.wss_enabled:
            wss_listening.set()
        events = (listening, rest_listening, ws_listening, rpc_listening, tls_listening, wss_listening)
        threading.Thread(target=self._pump, args=(self.process, *events), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not (listening.wait(0.05) and all(event.is_set() for event in events)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"iotdb serve did not start:\n{self.output}")
        return self

    @property
    def rest_url(self) -> str:
        """Base URL of the REST service, e.g. ``http://127.0.0.1:18080``."""
        return f"{self.rest_scheme}://{self.rest_host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        """URL of MQTT over WebSocket, e.g. ``ws://127.0.0.1:8083/mqtt``."""
        return f"ws://{self.ws_host}:{self.ws_port}{self.ws_path}"

    @property
    def wss_url(self) -> str:
        """URL of MQTT over secure WebSocket, e.g. ``wss://127.0.0.1:8084/mqtt``."""
        return f"wss://{self.ws_host}:{self.wss_port}{self.ws_path}"

    def _pump(self, process: subprocess.Popen[str], listening: threading.Event,
              rest_listening: threading.Event, ws_listening: threading.Event,
              rpc_listening: threading.Event, tls_listening: threading.Event,
              wss_listening: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self._lines.append(line)
            match = _LISTENING.search(line)
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
                listening.set()
            elif _WITHOUT_MQTT.search(line):
                listening.set()
            tls = _TLS_LISTENING.search(line)
            if tls:
                self.host, self.ssl_port = tls.group(1), int(tls.group(2))
                tls_listening.set()
                listening.set()
            wss = _WSS_LISTENING.search(line)
            if wss:
                self.wss_port = int(wss.group(2))
                wss_listening.set()
            rest = _REST_LISTENING.search(line)
            if rest:
                self.rest_scheme = "https" if rest.group(1) else "http"
                self.rest_host, self.rest_port = rest.group(2), int(rest.group(3))
                rest_listening.set()
            ws = _WS_LISTENING.search(line)
            if ws:
                self.ws_host, self.ws_port, self.ws_path = ws.group(1), int(ws.group(2)), ws.group(3)
                ws_listening.set()
            rpc = _RPC_LISTENING.search(line)
            if rpc:
                self.rpc_host, self.rpc_port = rpc.group(1), int(rpc.group(2))
                rpc_listening.set()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process (a crash) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
