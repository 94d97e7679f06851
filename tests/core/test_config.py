"""Configuration: properties files, environment overrides, validation messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from iotdb_core.config import (
    CONFIG_FILE_NAMES,
    CORE_OPTIONS,
    default_settings,
    load_settings,
    read_properties,
    resolve_config_path,
)
from iotdb_core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_cover_the_six_mqtt_keys_with_iotdb_defaults() -> None:
    settings = default_settings()
    assert settings.enable_mqtt_service is True
    assert settings.mqtt_host == "127.0.0.1"
    assert settings.mqtt_port == 1883
    assert settings.mqtt_handler_pool_size == 1
    assert settings.mqtt_payload_formatter == "json"
    assert settings.mqtt_max_message_size == 1048576


def test_properties_file_values_are_typed_and_sourced(tmp_path: Path) -> None:
    conf = write(tmp_path / "iotdb-system.properties", "# comment\n! also a comment\nmqtt_port = 1884\n\n"
                 "wal_mode=async\nenable_mqtt_service=FALSE\nmqtt_host=0.0.0.0\n")
    settings = load_settings(conf, environ={})
    assert settings.mqtt_port == 1884
    assert settings.wal_mode == "ASYNC"
    assert settings.enable_mqtt_service is False
    assert settings.mqtt_host == "0.0.0.0"
    assert settings.sources["mqtt_port"] == f"{conf}, line 3"
    assert "mqtt_handler_pool_size" not in settings.sources


def test_later_duplicate_key_wins_as_in_java_properties(tmp_path: Path) -> None:
    conf = write(tmp_path / "a.properties", "mqtt_port=1\nmqtt_port=2\n")
    assert load_settings(conf, environ={}).mqtt_port == 2


def test_bad_value_names_key_value_expectation_file_and_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "iotdb-system.properties", "mqtt_port=1884\n\nmqtt_handler_pool_size=zero\n")
    with pytest.raises(ConfigError) as info:
        load_settings(conf, environ={})
    message = str(info.value)
    assert "mqtt_handler_pool_size=zero" in message
    assert "expected an integer 1-1024" in message
    assert f"{conf}, line 3" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("mqtt_port=70000", "a port number 0-65535"),
        ("wal_mode=FAST", "SYNC, ASYNC or DISABLE"),
        ("mqtt_event_loop=tokio", "auto, uvloop or asyncio"),
        ("enable_mqtt_service=yes", "true or false"),
        ("mqtt_host=", "a host name or IP address"),
        ("integer_string_infer_type=TEXT", "INT32, INT64, FLOAT or DOUBLE"),
    ],
)
def test_each_kind_of_bad_value_is_rejected(tmp_path: Path, line: str, expected: str) -> None:
    conf = write(tmp_path / "x.properties", line + "\n")
    with pytest.raises(ConfigError, match=expected):
        load_settings(conf, environ={})


def test_unknown_key_warns_with_closest_known_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = write(tmp_path / "x.properties", "mqtt_prot=1884\n")
    with caplog.at_level(logging.WARNING, logger="iotdb.config"):
        settings = load_settings(conf, environ={})
    assert settings.mqtt_port == 1883
    assert "unknown configuration key 'mqtt_prot'" in caplog.text
    assert "did you mean 'mqtt_port'?" in caplog.text
    assert "line 1" in caplog.text


def test_environment_overrides_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "x.properties", "mqtt_port=1884\n")
    settings = load_settings(conf, environ={"IOTDB_MQTT_PORT": "1999", "IOTDB_WAL_MODE": "disable"})
    assert settings.mqtt_port == 1999
    assert settings.wal_mode == "DISABLE"
    assert settings.sources["mqtt_port"] == "environment variable IOTDB_MQTT_PORT"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment variable IOTDB_MQTT_PORT"):
        load_settings(None, environ={"IOTDB_MQTT_PORT": "http"})


@pytest.mark.parametrize("name", CONFIG_FILE_NAMES)
def test_each_iotdb_file_name_is_found_in_a_conf_directory(tmp_path: Path, name: str) -> None:
    write(tmp_path / name, "mqtt_port=1885\n")
    path = resolve_config_path(tmp_path)
    assert path == tmp_path / name
    assert load_settings(path, environ={}).mqtt_port == 1885


def test_newest_file_name_wins_when_several_are_present(tmp_path: Path) -> None:
    for name in CONFIG_FILE_NAMES:
        write(tmp_path / name, "")
    assert resolve_config_path(tmp_path) == tmp_path / "iotdb-system.properties"


def test_missing_config_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        resolve_config_path(tmp_path / "absent.properties")
    with pytest.raises(ConfigError, match="holds none of"):
        resolve_config_path(tmp_path)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "x.properties"
    conf.write_bytes(b"mqtt_host=\xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        read_properties(conf)


def test_shipped_properties_file_lists_every_core_key_with_its_default() -> None:
    shipped = read_properties(PROJECT_ROOT / "conf" / "iotdb-system.properties")
    for option in CORE_OPTIONS:
        assert option.key in shipped, f"conf/iotdb-system.properties lacks {option.key}"
    settings = load_settings(PROJECT_ROOT / "conf" / "iotdb-system.properties", environ={})
    assert settings.values == default_settings().values | {
        key: settings[key] for key in settings.values if key not in {o.key for o in CORE_OPTIONS}
    }
