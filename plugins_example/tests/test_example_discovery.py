"""Discovery through the installed entry points: this distribution must be installed (``pip install``)."""

from __future__ import annotations

from pathlib import Path

import iotdb_plugins_example
import pytest
from iotdb_plugins_example import bounds
from iotdb_plugins_example.topic_formatter import TopicFormatter

from iotdb_core import ConfigError, FormatContext, Row
from iotdb_core.bootstrap import configure
from iotdb_core.formatter_loader import installed_formatters
from iotdb_core.plugin_manager import hooks_of


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "iotdb-system.properties"
    path.write_text(
        "mqtt_payload_formatter=topic\n"
        "topic_formatter_template=root.factory.{0}.{-1}\n"
        "bounds_rules=root.factory.*.temperature:-40:85\n"
        "bounds_default_action=drop\n",
        encoding="utf-8",
    )
    return path


def test_topic_is_listed_with_this_distribution() -> None:
    (entry,) = [entry for entry in installed_formatters() if entry.name == "topic"]
    assert entry.distribution == "iotdb-plugins-example"
    assert entry.version == iotdb_plugins_example.__version__
    assert entry.target == "iotdb_plugins_example.topic_formatter:TopicFormatter"


def test_configure_loads_the_formatter_and_the_bounds_plugin(config_file: Path) -> None:
    runtime = configure(config_file, environ={})
    assert isinstance(runtime.formatter, TopicFormatter)
    assert runtime.plugins.get_plugin("bounds") is bounds.plugin
    assert "iotdb_before_write" in hooks_of(runtime.plugins)["bounds"]
    assert runtime.settings.bounds_default_action == "drop"

    rows = runtime.plugins.hook.iotdb_format_payload(
        topic="hall1/line2/temperature", payload=b'{"ts": 1, "value": 120.5}', context=FormatContext("c"),
    )
    assert rows == [Row("root.factory.hall1", 1, ("temperature",), (120.5,))]
    rows.append(Row("root.factory.hall1", 2, ("temperature",), (20.0,)))
    bounds.plugin.reset_counts()
    runtime.plugins.hook.iotdb_before_write(rows=rows, settings=runtime.settings)
    assert rows == [Row("root.factory.hall1", 2, ("temperature",), (20.0,))]
    assert bounds.plugin.counts() == {"root.factory.hall1.temperature": bounds.BoundsCount(dropped=1)}
    bounds.plugin.reset_counts()


def test_disabled_bounds_plugin_is_not_registered(config_file: Path) -> None:
    runtime = configure(config_file, environ={"IOTDB_DISABLE_PLUGINS": "bounds"})
    assert runtime.plugins.get_plugin("bounds") is None
    assert runtime.plugins.is_blocked("bounds")
    assert isinstance(runtime.formatter, TopicFormatter)
    assert "bounds_rules" not in runtime.settings.values


def test_bad_option_values_stop_configure(config_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"bounds_rules=root\.x:1: expected rules PATTERN:LOW:HIGH"):
        configure(config_file, environ={}, overrides={"bounds_rules": "root.x:1"})
    with pytest.raises(ConfigError, match=r"topic_formatter_template=root\.\{1\}: expected"):
        configure(config_file, environ={}, overrides={"topic_formatter_template": "root.{1}"})
