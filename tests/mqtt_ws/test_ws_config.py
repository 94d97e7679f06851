"""The MQTT over WebSocket settings: parsing, turning it off, and a port in use."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from iotdb_core.config import load_settings
from iotdb_core.errors import ConfigError
from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT


def settings_from(tmp_path: Path, text: str) -> object:
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text(text)
    return load_settings(conf, environ={})


def test_defaults_are_port_8083_path_mqtt_on_the_mqtt_host() -> None:
    settings = load_settings(None, environ={})
    assert (settings.mqtt_ws_port, settings.mqtt_ws_host, settings.mqtt_ws_path) == (8083, "", "/mqtt")


@pytest.mark.parametrize(("text", "port"), [("", -1), ("-1", -1), ("0", 0), ("9001", 9001)])
def test_port_minus_one_or_empty_is_off(tmp_path: Path, text: str, port: int) -> None:
    assert settings_from(tmp_path, f"mqtt_ws_port={text}\n").mqtt_ws_port == port  # type: ignore[attr-defined]


@pytest.mark.parametrize(("line", "expected"), [
    ("mqtt_ws_port=70000", "mqtt_ws_port=70000: expected a port number 0-65535, or -1 or empty for off"),
    ("mqtt_ws_port=-2", "mqtt_ws_port=-2: expected a port number 0-65535, or -1 or empty for off"),
    ("mqtt_ws_path=mqtt", "mqtt_ws_path=mqtt: expected a URL path starting with /"),
    ("mqtt_ws_path=/a?b", "mqtt_ws_path=/a?b: expected a URL path starting with /"),
])
def test_bad_values_name_key_value_and_form(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, line + "\n")
    assert str(error.value).startswith(expected)
    assert "line 1" in str(error.value)


def test_custom_path_is_served(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "s", properties={"mqtt_ws_path": "/ws/mqtt"}) as server:
        assert server.ws_path == "/ws/mqtt"
        assert server.ws_url.endswith("/ws/mqtt")


def test_port_in_use_is_one_clear_line_and_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        config = ServerProcess(tmp_path / "busy", properties={"mqtt_ws_port": port}).config_path
        done = subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", "serve", "--config", str(config)],
                              capture_output=True, text=True, timeout=TIMEOUT * 3, check=False,
                              stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
    assert errors[0].startswith("iotdb serve: error: cannot serve MQTT over WebSocket on 127.0.0.1:")
    assert f":{port}: the port is in use (set mqtt_ws_port" in errors[0]
