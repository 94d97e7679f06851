"""The ``bounds`` plugin: rule syntax and errors, and clamping and dropping through a real plugin manager."""

from __future__ import annotations

import logging
import math
import threading

import pluggy
import pytest
from iotdb_plugins_example.bounds import (
    OPTIONS,
    BoundsCount,
    BoundsPlugin,
    BoundsRuleError,
    parse_rule,
    parse_rules,
)

from iotdb_core import ConfigError, Row, Settings
from iotdb_core.bootstrap import plugin_options
from iotdb_core.config import default_settings, load_settings
from iotdb_core.plugin_manager import create_plugin_manager

RULES = "root.sg.*.temperature:-40:85:clamp;root.**.humidity:0:100:drop;root.**.pressure::1100"


def manager_with(plugin: BoundsPlugin) -> pluggy.PluginManager:
    return create_plugin_manager(load_entry_points=False, plugins=[plugin])


def before_write(manager: pluggy.PluginManager, rows: list[Row], settings: Settings | None = None) -> list[Row]:
    manager.hook.iotdb_before_write(rows=rows, settings=settings or default_settings())
    return rows


# Rule syntax


def test_rule_fields() -> None:
    rules = parse_rules(RULES).rules
    assert [(rule.pattern, rule.low, rule.high, rule.action) for rule in rules] == [
        ("root.sg.*.temperature", -40.0, 85.0, "clamp"),
        ("root.**.humidity", 0.0, 100.0, "drop"),
        ("root.**.pressure", None, 1100.0, None),
    ]


def test_blanks_case_and_empty_entries_are_tolerated() -> None:
    rules = parse_rules(" ; root.a.b : 1 : 2 : DROP ;\n root.a.c:0.5: ;").rules
    assert [(rule.pattern, rule.low, rule.high, rule.action) for rule in rules] == [
        ("root.a.b", 1.0, 2.0, "drop"),
        ("root.a.c", 0.5, None, None),
    ]
    assert len(parse_rules("")) == 0


def test_backquoted_nodes_may_hold_separators() -> None:
    (rule,) = parse_rules("root.`a:b;c`.`x.y`:1:2").rules
    assert rule.pattern == "root.`a:b;c`.`x.y`"
    assert rule.matches(("root", "a:b;c", "x.y"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("root.sg.*.t:1", "rule 1 'root.sg.*.t:1': expected PATTERN:LOW:HIGH or PATTERN:LOW:HIGH:ACTION, "
                          "got 2 field(s)"),
        ("root.sg.*.t:1:2:drop:x", "got 5 field(s)"),
        ("root.a.t:0:1;root.sg.*.t:a:1", "rule 2 'root.sg.*.t:a:1': lower bound 'a' is not a number"),
        ("root.sg.*.t:0:high", "upper bound 'high' is not a number"),
        ("root.sg.*.t::", "sets neither a lower nor an upper bound"),
        ("root.sg.*.t:5:1", "lower bound 5 is above upper bound 1"),
        ("root.sg.*.t:1:5:zap", "action 'zap' is neither clamp nor drop"),
        ("root.sg.*.t:1:5:", "action '' is neither clamp nor drop"),
        ("root.sg.t:-inf:0", "lower bound '-inf' must be a finite number; leave it empty for none"),
        ("root.sg.t:nan:0", "lower bound 'nan' must be a finite number"),
        ("root:1:2", "pattern 'root' matches no series"),
        ("sg.t:1:2", "must start with 'root'"),
        ("root.s-g.t:1:2", "node 's-g' at column 6 has characters that need backquotes"),
        ("root.a.t:0:1;root.`sg.t:1:2", "backquote at column 19 is never closed"),
        ("root.sg..t:1:2", "empty node"),
        (";;root.a.t:1:2;root.a.t:1", "rule 4 'root.a.t:1'"),
    ],
)
def test_rule_errors_name_the_rule_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(BoundsRuleError, match=r"^bounds_rules (rule \d+ )?'") as info:
        parse_rules(text)
    assert message in str(info.value)


def test_bad_rules_in_the_configuration_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"bounds_rules=root\.x:1: expected rules PATTERN:LOW:HIGH\[:clamp\|drop\]"):
        load_settings(None, extra_options=OPTIONS, environ={}, overrides={"bounds_rules": "root.x:1"})
    with pytest.raises(ConfigError, match="bounds_default_action=keep: expected clamp or drop"):
        load_settings(None, extra_options=OPTIONS, environ={}, overrides={"bounds_default_action": "keep"})


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(BoundsRuleError, match="lower bound 'x' is not a number"):
        BoundsPlugin("root.a.b:x:1")
    with pytest.raises(BoundsRuleError, match="default action 'keep' is neither clamp nor drop"):
        BoundsPlugin("root.a.b:0:1", default_action="keep")


@pytest.mark.parametrize(
    ("pattern", "series", "matches"),
    [
        ("root.sg.*.t", "root.sg.d1.t", True),
        ("root.sg.*.t", "root.sg.t", False),
        ("root.sg.*.t", "root.sg.a.b.t", False),
        ("root.**.t", "root.sg.t", True),
        ("root.**.t", "root.sg.a.b.t", True),
        ("root.**.t", "root.t", False),
        ("root.**", "root.sg.d.anything", True),
        ("root.sg.**.d.*", "root.sg.x.y.d.t", True),
        ("root.sg.**.d.*", "root.sg.d.t", False),
        ("root.sg.`d-1`.t", "root.sg.`d-1`.t", True),
        ("root.sg.`d1`.t", "root.sg.d1.t", True),
        ("root.sg.`*`.t", "root.sg.d1.t", False),
        ("root.sg.`*`.t", "root.sg.`*`.t", True),
        ("root.sg.d1.t", "root.sg.d1.T", False),
    ],
)
def test_wildcards(pattern: str, series: str, matches: bool) -> None:
    rules = parse_rules(f"{pattern}:0:1")
    device, _, measurement = series.rpartition(".")
    assert (rules.rule_for(device, measurement) is not None) is matches


def test_first_matching_rule_wins() -> None:
    rules = parse_rules("root.sg.d1.t:0:10;root.**.t:0:1")
    assert rules.rule_for("root.sg.d1", "t") == parse_rule("root.sg.d1.t:0:10")
    assert rules.rule_for("root.sg.d2", "t") == parse_rule("root.**.t:0:1", 2)


# Through a plugin manager


def test_clamp_and_drop_through_the_plugin_manager() -> None:
    plugin = BoundsPlugin(RULES)
    rows = before_write(manager_with(plugin), [
        Row("root.sg.d1", 1, ("temperature", "humidity", "other"), (100.0, 50.0, 1e9)),
        Row("root.sg.d1", 2, ("temperature", "humidity"), (-45.5, 101.0)),
        Row("root.sg.d2", 3, ("humidity",), (-1.0,)),
        Row("root.plant.a.b", 4, ("pressure",), (5000.0,)),
    ])
    assert rows == [
        Row("root.sg.d1", 1, ("temperature", "humidity", "other"), (85.0, 50.0, 1e9)),
        Row("root.sg.d1", 2, ("temperature", "humidity"), (-40.0, None)),
        Row("root.plant.a.b", 4, ("pressure",), (1100.0,)),
    ]
    assert plugin.counts() == {
        "root.plant.a.b.pressure": BoundsCount(clamped=1),
        "root.sg.d1.humidity": BoundsCount(dropped=1),
        "root.sg.d1.temperature": BoundsCount(clamped=2),
        "root.sg.d2.humidity": BoundsCount(dropped=1),
    }
    assert plugin.totals() == BoundsCount(clamped=3, dropped=2)


def test_values_on_a_bound_are_kept() -> None:
    rows = before_write(manager_with(BoundsPlugin("root.**.t:-1.5:2.5")), [Row("root.a", 1, ("t",), (2.5,))])
    assert rows[0].values == (2.5,)


def test_integers_stay_integers() -> None:
    manager = manager_with(BoundsPlugin("root.**.t:-1.5:2.5"))
    rows = before_write(manager, [Row("root.a", 1, ("t",), (7,)), Row("root.a", 2, ("t",), (-9,))])
    assert [row.values for row in rows] == [(2,), (-1,)]
    assert all(type(row.values[0]) is int for row in rows)


def test_integer_without_an_integer_within_bounds_is_dropped() -> None:
    plugin = BoundsPlugin("root.**.t:0.2:0.8")
    rows = before_write(manager_with(plugin), [Row("root.a", 1, ("t",), (0,)), Row("root.a", 2, ("t",), (0.5,))])
    assert rows == [Row("root.a", 2, ("t",), (0.5,))]
    assert plugin.totals() == BoundsCount(dropped=1)


@pytest.mark.parametrize("value", [True, False, "hot", None, math.nan])
def test_non_numeric_values_pass_untouched(value: object) -> None:
    plugin = BoundsPlugin("root.**.t:10:20")
    row = Row("root.a", 1, ("t",), (value,))  # type: ignore[arg-type]
    rows = before_write(manager_with(plugin), [row])
    assert rows == [row]
    assert rows[0].values[0] is value
    assert plugin.totals() == BoundsCount()


def test_infinities_are_out_of_bounds() -> None:
    rows = before_write(manager_with(BoundsPlugin("root.**.t:0:1")), [Row("root.a", 1, ("t",), (math.inf,))])
    assert rows[0].values == (1.0,)


def test_rows_without_a_rule_are_left_as_they_are() -> None:
    rows = [Row("root.x", 1, ("t",), (1e9,)), Row("not a path", 1, ("t",), (1e9,))]
    expected = list(rows)
    before_write(manager_with(BoundsPlugin("root.sg.**:0:1")), rows)
    assert rows == expected


def test_rows_are_changed_in_place() -> None:
    rows = [Row("root.a", 1, ("t",), (5.0,))]
    same_list = rows
    before_write(manager_with(BoundsPlugin("root.**.t:0:1:drop")), rows)
    assert same_list is rows
    assert rows == []


def test_rules_and_default_action_from_the_settings() -> None:
    plugin = BoundsPlugin()
    manager = manager_with(plugin)
    options = plugin_options(manager)
    assert [option.key for option in options] == ["bounds_rules", "bounds_default_action"]
    settings = load_settings(None, extra_options=options, environ={}, overrides={
        "bounds_rules": "root.**.t:0:1;root.**.u:0:1:clamp", "bounds_default_action": "drop",
    })
    rows = before_write(manager, [Row("root.a", 1, ("t", "u"), (5.0, 5.0))], settings)
    assert rows == [Row("root.a", 1, ("t", "u"), (None, 1.0))]


def test_without_rules_nothing_changes() -> None:
    rows = [Row("root.a", 1, ("t",), (1e300,))]
    before_write(manager_with(BoundsPlugin()), rows)
    assert rows == [Row("root.a", 1, ("t",), (1e300,))]


def test_rules_given_to_the_plugin_take_precedence_over_the_settings() -> None:
    settings = load_settings(None, extra_options=OPTIONS, environ={}, overrides={"bounds_rules": "root.**.t:0:1"})
    rows = before_write(manager_with(BoundsPlugin("root.**.t:0:10", default_action="drop")),
                        [Row("root.a", 1, ("t",), (5.0,)), Row("root.a", 2, ("t",), (11.0,))], settings)
    assert rows == [Row("root.a", 1, ("t",), (5.0,))]


def test_two_instances_declare_the_same_options_without_conflict() -> None:
    manager = create_plugin_manager(load_entry_points=False, plugins=[BoundsPlugin(), BoundsPlugin()])
    settings = load_settings(None, extra_options=plugin_options(manager), environ={})
    assert settings.bounds_default_action == "clamp"


def test_counters_are_thread_safe() -> None:
    plugin = BoundsPlugin("root.**.t:0:1:clamp;root.**.u:0:1:drop")
    manager = manager_with(plugin)
    threads, writes = 8, 200
    barrier = threading.Barrier(threads)

    def write(device: str) -> None:
        barrier.wait()
        for timestamp in range(writes):
            before_write(manager, [Row(device, timestamp, ("t", "u", "v"), (2.0, 2.0, 2.0))])

    workers = [threading.Thread(target=write, args=(f"root.d{index % 2}",)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    per_device = threads // 2 * writes
    assert plugin.counts() == {
        "root.d0.t": BoundsCount(clamped=per_device), "root.d0.u": BoundsCount(dropped=per_device),
        "root.d1.t": BoundsCount(clamped=per_device), "root.d1.u": BoundsCount(dropped=per_device),
    }


def test_startup_resets_and_shutdown_logs_the_counts(caplog: pytest.LogCaptureFixture) -> None:
    plugin = BoundsPlugin("root.**.t:0:1;root.**.u:0:1:drop")
    manager = manager_with(plugin)
    before_write(manager, [Row("root.a", 1, ("t",), (5.0,))])
    manager.hook.iotdb_startup(engine=None, settings=default_settings())
    assert plugin.counts() == {}
    before_write(manager, [Row("root.a", 1, ("t", "u"), (5.0, 5.0)), Row("root.b", 1, ("t",), (-1.0,))])
    with caplog.at_level(logging.INFO, logger="iotdb.plugins.bounds"):
        manager.hook.iotdb_shutdown(engine=None)
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.startswith("bounds: 2 value(s) clamped, 1 dropped in 3 series: ")
    for part in ("root.a.t: 1 clamped, 0 dropped", "root.a.u: 0 clamped, 1 dropped", "root.b.t: 1 clamped"):
        assert part in message


def test_shutdown_log_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    plugin = BoundsPlugin("root.**.t:0:1")
    manager = manager_with(plugin)
    before_write(manager, [Row(f"root.d{index}", 1, ("t",), (5.0,)) for index in range(30)])
    with caplog.at_level(logging.INFO, logger="iotdb.plugins.bounds"):
        manager.hook.iotdb_shutdown(engine=None)
    assert caplog.records[0].getMessage().endswith("; and 10 more series")


def test_shutdown_without_counts(caplog: pytest.LogCaptureFixture) -> None:
    manager = manager_with(BoundsPlugin("root.**.t:0:1"))
    with caplog.at_level(logging.INFO, logger="iotdb.plugins.bounds"):
        manager.hook.iotdb_shutdown(engine=None)
    assert [record.getMessage() for record in caplog.records] == ["bounds: no value was outside its bounds"]

