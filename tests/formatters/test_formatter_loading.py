"""Both formatters load through the real entry points (stevedore) and answer through the plugin manager's hook."""

from __future__ import annotations

import pytest

from formatters.json_formatter import JsonFormatter
from formatters.line_protocol import LineProtocolFormatter
from iotdb_core.bootstrap import configure
from iotdb_core.config import load_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Row
from iotdb_core.formatter_loader import formatter_class, formatter_options, installed_formatters, load_formatter
from iotdb_core.plugin_manager import create_plugin_manager


def test_entry_points_name_both_formatters() -> None:
    targets = {entry.name: entry.target for entry in installed_formatters()}
    assert targets["json"] == "formatters.json_formatter:JsonFormatter"
    assert targets["line"] == "formatters.line_protocol:LineProtocolFormatter"
    assert formatter_class("json") is JsonFormatter
    assert formatter_class("line") is LineProtocolFormatter
    assert formatter_options("json") == ()
    assert [option.key for option in formatter_options("line")] == ["line_timestamp_precision", "line_default_database"]


def test_json_through_the_plugin_manager_hook() -> None:
    settings = load_settings(None, environ={}, overrides={"mqtt_payload_formatter": "json"})
    manager = create_plugin_manager(load_entry_points=False)
    formatter = load_formatter(settings, manager)
    assert isinstance(formatter, JsonFormatter)
    context = FormatContext(client_id="dev-1")
    payload = b'{"device": "root.sg.d1", "timestamp": 7, "measurements": ["s1"], "values": [1.5]}'
    rows = manager.hook.iotdb_format_payload(topic="iotdb/json", payload=payload, context=context)
    assert rows == [Row("root.sg.d1", 7, ("s1",), (1.5,))]
    with pytest.raises(FormatError, match="device: missing"):
        manager.hook.iotdb_format_payload(topic="iotdb/json", payload=b"{}", context=context)


def test_line_through_the_plugin_manager_hook_with_its_options() -> None:
    overrides = {
        "mqtt_payload_formatter": "line", "line_timestamp_precision": "s", "line_default_database": "plant",
        "timestamp_precision": "ms",
    }
    settings = load_settings(None, extra_options=formatter_options("line"), environ={}, overrides=overrides)
    manager = create_plugin_manager(load_entry_points=False)
    formatter = load_formatter(settings, manager)
    assert isinstance(formatter, LineProtocolFormatter)
    rows = manager.hook.iotdb_format_payload(
        topic="/sensors", payload=b"cpu,host=a usage=0.5,n=3i 1700000000", context=FormatContext(client_id="dev-2")
    )
    assert rows == [
        Row("root.plant.cpu.a", 1700000000000, ("usage", "n"), (0.5, 3), (TSDataType.DOUBLE, TSDataType.INT64))
    ]


def test_configure_validates_the_line_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOTDB_CONF", raising=False)
    runtime = configure(
        overrides={"mqtt_payload_formatter": "line", "line_default_database": "root.fallback"},
        environ={}, load_entry_points=False,
    )
    assert isinstance(runtime.formatter, LineProtocolFormatter)
    assert runtime.settings.line_default_database == "fallback"
    rows = runtime.plugins.hook.iotdb_format_payload(topic="", payload=b"m v=1 5000000", context=FormatContext("c"))
    assert rows == [Row("root.fallback.m", 5, ("v",), (1.0,), (TSDataType.DOUBLE,))]
