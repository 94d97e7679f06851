"""Plugin SPI: formatter discovery through stevedore, dispatch through pluggy, plugin loading and blocking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from iotdb_core import FormatContext, Row, hookimpl
from iotdb_core.bootstrap import configure
from iotdb_core.config import default_settings
from iotdb_core.errors import ConfigError, PluginError
from iotdb_core.formatter_loader import formatter_class, installed_formatters, load_formatter
from iotdb_core.plugin_manager import create_plugin_manager, hooks_of

InstallDist = Callable[..., Path]

RECORDING_FORMATTER = textwrap.dedent(
    """
    from iotdb_core import PayloadFormatter, Row

    class EchoFormatter(PayloadFormatter):
        name = "echo"

        def format(self, topic, payload, context):
            return [Row("root.echo." + context.client_id, 1, ("len",), (len(payload),))]
    """
)

CONTEXT = FormatContext(client_id="c1", username="root", qos=1)


def test_builtin_formatters_are_discovered_as_entry_points() -> None:
    names = {entry.name: entry for entry in installed_formatters()}
    assert {"json", "line"} <= names.keys()
    assert names["json"].distribution == "iotdb-py"


def test_unknown_formatter_name_lists_every_installed_formatter() -> None:
    with pytest.raises(ConfigError) as info:
        formatter_class("foo")
    message = str(info.value)
    installed = ", ".join(entry.name for entry in installed_formatters())
    assert message == f"mqtt_payload_formatter=foo: no payload formatter named 'foo'; installed: {installed}"
    assert "json" in installed and "line" in installed


def test_unknown_formatter_in_config_file_fails_configure(tmp_path: Path) -> None:
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text("mqtt_payload_formatter=foo\n")
    with pytest.raises(ConfigError, match="mqtt_payload_formatter=foo: no payload formatter named 'foo'"):
        configure(conf, environ={})


def test_broken_entry_point_names_entry_point_distribution_and_exception(install_dist: InstallDist) -> None:
    install_dist("broken-formatters", {"iotdb.payload_formatters": {"broken": "no_such_module_xyz:Formatter"}})
    with pytest.raises(PluginError) as info:
        formatter_class("broken")
    message = str(info.value)
    assert "'broken = no_such_module_xyz:Formatter'" in message
    assert "broken-formatters 1.0" in message
    assert "ModuleNotFoundError" in message and "no_such_module_xyz" in message


def test_entry_point_that_is_not_a_formatter_is_rejected(install_dist: InstallDist) -> None:
    install_dist("odd-formatters", {"iotdb.payload_formatters": {"odd": "odd_module:NotAFormatter"}},
                 {"odd_module": "class NotAFormatter:\n    pass\n"})
    with pytest.raises(PluginError, match=r"not a subclass of iotdb_core\.PayloadFormatter"):
        formatter_class("odd")


def test_third_party_formatter_is_loaded_by_config_and_dispatched_through_the_hook(
    install_dist: InstallDist, tmp_path: Path
) -> None:
    install_dist("echo-formatter", {"iotdb.payload_formatters": {"echo": "echo_formatter:EchoFormatter"}},
                 {"echo_formatter": RECORDING_FORMATTER})
    assert "echo" in {entry.name for entry in installed_formatters()}
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text("mqtt_payload_formatter=echo\n")
    runtime = configure(conf, environ={})
    assert type(runtime.formatter).__name__ == "EchoFormatter"
    rows = runtime.plugins.hook.iotdb_format_payload(topic="t", payload=b"abc", context=CONTEXT)
    assert rows == [Row("root.echo.c1", 1, ("len",), (3,))]


def test_a_plugin_can_wrap_the_formatter() -> None:
    class AddSource:
        @hookimpl(wrapper=True)
        def iotdb_format_payload(self, topic: str, payload: bytes, context: FormatContext):  # type: ignore[no-untyped-def]
            rows = yield
            return [Row(row.device, row.timestamp, (*row.measurements, "qos"), (*row.values, context.qos))
                    for row in rows]

    manager = create_plugin_manager(load_entry_points=False, plugins=[AddSource()])
    load_formatter(default_settings(), manager)
    payload = b'{"device": "root.sg.d1", "timestamp": 5, "measurements": ["s1"], "values": [1.5]}'
    rows = manager.hook.iotdb_format_payload(topic="root/sg", payload=payload, context=CONTEXT)
    assert rows == [Row("root.sg.d1", 5, ("s1", "qos"), (1.5, 1))]


def test_misspelt_hook_fails_loudly() -> None:
    class Misspelt:
        @hookimpl
        def iotdb_befor_write(self, rows):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(PluginError, match="iotdb_befor_write"):
        create_plugin_manager(load_entry_points=False, plugins=[Misspelt()])


PLUGIN_MODULE = textwrap.dedent(
    """
    from iotdb_core import hookimpl

    @hookimpl
    def iotdb_before_write(rows, settings):
        rows[:] = [row for row in rows if not row.device.startswith("root.ignored")]
    """
)


def test_entry_point_plugins_load_and_can_be_blocked_by_environment(install_dist: InstallDist) -> None:
    install_dist("filter-plugin", {"iotdb": {"filter": "filter_plugin"}}, {"filter_plugin": PLUGIN_MODULE})
    manager = create_plugin_manager(environ={})
    assert hooks_of(manager)["filter"] == ["iotdb_before_write"]
    rows = [Row("root.ignored.d", 1, ("s",), (1,)), Row("root.kept.d", 1, ("s",), (1,))]
    manager.hook.iotdb_before_write(rows=rows, settings=default_settings())
    assert [row.device for row in rows] == ["root.kept.d"]

    blocked = create_plugin_manager(environ={"IOTDB_DISABLE_PLUGINS": "other, filter"})
    assert "filter" not in hooks_of(blocked)
    assert blocked.is_blocked("filter")


def test_plugin_that_fails_to_import_is_a_plugin_error(install_dist: InstallDist) -> None:
    install_dist("bad-plugin", {"iotdb": {"bad": "bad_plugin_module_xyz"}})
    with pytest.raises(PluginError, match="bad_plugin_module_xyz"):
        create_plugin_manager(environ={})


def test_plugin_options_are_validated_like_core_keys(install_dist: InstallDist, tmp_path: Path) -> None:
    module = textwrap.dedent(
        """
        from iotdb_core import Option, hookimpl
        from iotdb_core.config import integer

        @hookimpl
        def iotdb_config_options():
            return [Option("limit_rows", 10, integer(1), "a positive integer", "most rows")]
        """
    )
    install_dist("limit-plugin", {"iotdb": {"limit": "limit_plugin"}}, {"limit_plugin": module})
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text("limit_rows=25\n")
    assert configure(conf, environ={}).settings["limit_rows"] == 25
    conf.write_text("limit_rows=-1\n")
    with pytest.raises(ConfigError, match=r"limit_rows=-1: expected a positive integer .*line 1"):
        configure(conf, environ={})


def test_isolated_manager_has_specs_only(iotdb_plugin_manager: pluggy.PluginManager) -> None:
    assert iotdb_plugin_manager.get_plugins() == set()
    assert "iotdb_before_write" in {name for name in dir(iotdb_plugin_manager.hook) if name.startswith("iotdb_")}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_lists_formatters_with_distribution_and_version() -> None:
    result = run_cli("formatters")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "OBJECT"]
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert by_name["json"][1:3] == ["iotdb-py", "0.1.0"]
    assert by_name["line"][1:3] == ["iotdb-py", "0.1.0"]


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text("mqtt_port=abc\n")
    result = run_cli("config", "--config", str(conf))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    expected = f"iotdb config: error: mqtt_port=abc: expected a port number 0-65535, or -1 for off ({conf}, line 1)"
    assert result.stderr.strip() == expected


def test_cli_help_describes_every_subcommand() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("serve", "formatters", "plugins", "config"):
        assert command in result.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "usage: iotdb " + command in sub.stdout
