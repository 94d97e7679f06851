"""Fixtures of the web console tests: a real ``iotdb serve``, a paho-mqtt publisher and Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``chromium`` on the PATH), driven by playwright-core from npm
through ``driver.mjs`` (one browser per test module, commanded over stdin/stdout). The tests skip, saying
why, only when no Chromium is installed; missing npm packages are an error that names the command to run
(``.ci/run`` runs it). Screenshots go to ``tests/console/artifacts/`` (docs/console.md uses them).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from iotdb_core.testing.server import ServerProcess

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
TIMEOUT = 15.0


def chromium_path() -> str | None:
    """Debian's Chromium, or any ``chromium`` on the PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def wait_until(condition: Callable[[], object], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


class Browser:
    """One Chromium driven by ``driver.mjs``; :meth:`do` runs an action and returns its result."""

    def __init__(self, base_url: str, artifacts: Path) -> None:
        executable = chromium_path()
        if executable is None:
            pytest.skip("Chromium is not installed (apt-get install chromium); the console's browser tests need it")
        if not (HERE / "node_modules" / "playwright-core").is_dir():
            pytest.fail(f"playwright-core is missing: run `npm ci` in {HERE} (.ci/run does it)")
        self._ids = itertools.count(1)
        self.process = subprocess.Popen(
            ["node", str(HERE / "driver.mjs"), executable, base_url, str(artifacts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE,
        )
        self._answers: list[str] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._next(60.0)
        assert ready["result"] == "ready", ready

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._arrived:
                self._answers.append(line)
                self._arrived.notify_all()
        with self._arrived:
            self._answers.append("")
            self._arrived.notify_all()

    def _next(self, timeout: float) -> dict[str, Any]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._answers, timeout):
                raise AssertionError("the browser driver did not answer in time")
            line = self._answers.pop(0)
        if not line:
            assert self.process.stderr is not None
            raise AssertionError(f"the browser driver exited:\n{self.process.stderr.read()}")
        return json.loads(line)

    def do(self, action: str, timeout: float = 60.0, **args: Any) -> Any:
        command_id = next(self._ids)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": command_id, "action": action, "args": args}) + "\n")
        self.process.stdin.flush()
        answer = self._next(timeout)
        assert answer["id"] == command_id, answer
        if not answer["ok"]:
            raise AssertionError(f"browser action {action} failed: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


class Publisher:
    """A paho-mqtt client connected to the server, on its network thread."""

    def __init__(self, server: ServerProcess, client_id: str, *, user: str = "root", password: str = "root") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(user, password)
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = lambda *_args: self.connected.set()
        self.client.on_disconnect = lambda *_args: self.disconnected.set()
        self.client.connect(server.host, server.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"

    def publish(self, topic: str, payloads: list[bytes], qos: int = 1) -> None:
        """Publish and wait until every message is acknowledged."""
        infos = [self.client.publish(topic, payload, qos=qos) for payload in payloads]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), f"message {info.mid} not acknowledged"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rest(server: ServerProcess, path: str, body: Any = None, *, user: str = "root", password: str = "root",
         method: str | None = None) -> tuple[int, Any]:
    """One REST call with Basic credentials: (HTTP status, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.rest_url + path, data=data, method=method or ("POST" if data else "GET"))
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def serve_console(tmp_path_factory: pytest.TempPathFactory, **properties: object) -> Iterator[ServerProcess]:
    """``iotdb serve`` with the console, on ports the OS picks; it must stop cleanly, without a traceback."""
    server = ServerProcess(tmp_path_factory.mktemp("console"), properties).start(timeout=60)
    assert server.rest_port, server.output
    yield server
    code = server.stop(timeout=60)
    assert code == 0, server.output
    assert "Traceback" not in server.output, server.output


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``iotdb serve`` on its defaults (REST and the console on); a test module may override it with other
    properties through :func:`serve_console`."""
    yield from serve_console(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(console_server: ServerProcess) -> Iterator[Browser]:
    driver = Browser(console_server.rest_url, ARTIFACTS)
    yield driver
    driver.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    """The browser with a fresh page and no cookies; fails the test on a script error in the page."""
    browser.do("fresh")
    yield browser
    assert browser.do("errors") == []
