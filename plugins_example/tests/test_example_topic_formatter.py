"""The ``topic`` formatter: topic-to-series mapping, payload forms, timestamps and error messages."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from iotdb_plugins_example.topic_formatter import TopicFormatter, TopicTemplate

from iotdb_core import ConfigError, FormatContext, FormatError, Row
from iotdb_core.config import Settings, default_settings, load_settings
from iotdb_core.paths import split_path, unquote_node, validate_device, validate_measurement

CONTEXT = FormatContext("sensor-1")
MakeSettings = Callable[..., Settings]


def formatter(make_settings: MakeSettings | None = None, **raw: str) -> TopicFormatter:
    settings = make_settings(**raw) if make_settings is not None else default_settings()
    return TopicFormatter(settings)


def one_row(fmt: TopicFormatter, topic: str, payload: bytes) -> Row:
    rows = fmt.format(topic, payload, CONTEXT)
    assert len(rows) == 1
    return rows[0]


# Topic to series


@pytest.mark.parametrize(
    ("topic", "device", "measurement"),
    [
        ("root/sg/d1/temperature", "root.sg.d1", "temperature"),
        ("root/sg/temperature", "root.sg", "temperature"),
        ("plant/d1/temperature", "root.mqtt.plant.d1", "temperature"),
        ("temperature", "root.mqtt", "temperature"),
        ("root/sg/d-1/temp.c", "root.sg.`d-1`", "`temp.c`"),
        ("root/sg/42/t", "root.sg.`42`", "t"),
        ("root/sg/a`b/t", "root.sg.`a``b`", "t"),
        ("root/工厂/设备/温度", "root.工厂.设备", "温度"),
    ],
)
def test_topic_levels_become_path_nodes(topic: str, device: str, measurement: str) -> None:
    row = one_row(formatter(), topic, b"1")
    assert (row.device, row.measurements) == (device, (measurement,))


def test_prefix_is_configurable(make_settings: MakeSettings) -> None:
    fmt = formatter(make_settings, topic_formatter_prefix="root.factory.`hall-2`")
    assert fmt.series_of("m7/temp") == ("root.factory.`hall-2`.m7", "temp")
    assert fmt.series_of("root/sg/d/temp") == ("root.sg.d", "temp")


@pytest.mark.parametrize(
    ("template", "topic", "device", "measurement"),
    [
        ("root.{1}.{2}.{3}", "plant/sg/d1/temperature", "root.sg.d1", "temperature"),
        ("root.factory.{0}.{-1}", "plant7/line2/temp", "root.factory.plant7", "temp"),
        ("root.factory.line_{1}.{-1}", "plant7/2/temp", "root.factory.line_2", "temp"),
        ("root.f.{0}.{-1}", "plant-7/x/temp", "root.f.`plant-7`", "temp"),
        ("root.f.`hall {0}`.value", "7/t", "root.f.`hall 7`", "value"),
        ("root.f.{0}.{0}", "42", "root.f.`42`", "`42`"),
    ],
)
def test_template(make_settings: MakeSettings, template: str, topic: str, device: str, measurement: str) -> None:
    fmt = formatter(make_settings, topic_formatter_template=template)
    assert fmt.series_of(topic) == (device, measurement)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("root.{1}", "needs root, at least one device node and a measurement"),
        ("sg.{1}.{2}", "must start with 'root'"),
        ("root.{a}.b", "'{' at column 6 is not part of a placeholder"),
        ("root.{0}.{1", "'{' at column 10 is not part of a placeholder"),
        ("root.{0}.c-d", "node 'c-d' at column 10 has characters that need backquotes"),
        ("root..{0}", "empty node at column 6"),
        ("root.{0}.123", "is all digits"),
    ],
)
def test_template_errors_name_the_problem(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^template ") as info:
        TopicTemplate.parse(template)
    assert message in str(info.value)
    assert repr(template) in str(info.value)


def test_bad_template_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"topic_formatter_template=root\.\{x\}\.y: expected .*\{i\}"):
        load_settings(None, extra_options=TopicFormatter.options, environ={},
                      overrides={"topic_formatter_template": "root.{x}.y"})


def test_bad_prefix_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="topic_formatter_prefix=mqtt: expected a path starting with root"):
        load_settings(None, extra_options=TopicFormatter.options, environ={},
                      overrides={"topic_formatter_prefix": "mqtt"})


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("", "topic is empty"),
        ("root/sg//t", "topic 'root/sg//t': level 2 is empty"),
        ("/sg/d/t", "topic '/sg/d/t': level 0 is empty"),
        ("root/sg/d/", "topic 'root/sg/d/': level 3 is empty"),
        ("root/t", "topic 'root/t': expected root/<device levels>/<measurement>"),
        ("root", "topic 'root': expected root/<device levels>/<measurement>"),
        ("a/b\x00c", "topic 'a/b\\x00c': level 1: node name"),
        ("a/\udc80", "topic 'a/\\udc80': holds a lone surrogate at index 2"),
    ],
)
def test_topic_errors(topic: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        formatter().format(topic, b"1", CONTEXT)
    assert message in str(info.value)


def test_topic_without_device_under_bare_root_prefix(make_settings: MakeSettings) -> None:
    fmt = formatter(make_settings, topic_formatter_prefix="root")
    assert fmt.series_of("sg/t") == ("root.sg", "t")
    with pytest.raises(FormatError, match="topic 't': under topic_formatter_prefix=root it names no device"):
        fmt.series_of("t")


def test_template_errors_at_format_time(make_settings: MakeSettings) -> None:
    fmt = formatter(make_settings, topic_formatter_template="root.f.{0}.{2}")
    with pytest.raises(FormatError, match=r"topic 'a/b' has 2 level\(s\) but topic_formatter_template=root\.f\.\{0\}"
                                          r"\.\{2\} uses level \{2\}"):
        fmt.series_of("a/b")
    with pytest.raises(FormatError, match="topic 'a/b/': level 2 is empty"):
        fmt.series_of("a/b/")
    assert fmt.series_of("a//c") == ("root.f.a", "c")  # unused levels may be empty


TOPIC_LEVEL = st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1)


@given(st.booleans(), st.lists(TOPIC_LEVEL, min_size=2, max_size=6))
def test_any_topic_maps_to_valid_series_that_keep_the_level_names(under_root: bool, levels: list[str]) -> None:
    assume(levels[0] != "root")
    device, measurement = formatter().series_of("/".join(["root", *levels] if under_root else levels))
    nodes = validate_device(device)
    validate_measurement(measurement)
    names = [unquote_node(node) for node in (*nodes, measurement)]
    assert names == (["root", *levels] if under_root else ["root", "mqtt", *levels])
    assert split_path(f"{device}.{measurement}")


# Payloads


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"21.5", 21.5),
        (b" 42\n", 42),
        (b"-7", -7),
        (b"1e3", 1000.0),
        (b"true", True),
        (b"FALSE", False),
        (b'"text"', "text"),
        (b'"line\\nbreak \\u00e9"', "line\nbreak \u00e9"),
        (b"12345678901234567890123", 12345678901234567890123),
        (b'{"value": 3}', 3),
        (b'{"value": "on"}', "on"),
        (b'{"value": false}', False),
        (b"on", "on"),
        (b"  12 V \r\n", "12 V"),
        (b"1.2.3", "1.2.3"),
        ("température élevée".encode(), "température élevée"),
    ],
)
def test_payload_values(payload: bytes, value: object) -> None:
    row = one_row(formatter(), "root/sg/d1/s", payload)
    assert row.values == (value,)
    assert type(row.values[0]) is type(value)
    assert row.types is None


@pytest.mark.parametrize(("payload", "check"), [(b"NaN", math.isnan), (b"-Infinity", lambda v: v == -math.inf)])
def test_non_finite_numbers(payload: bytes, check: object) -> None:
    value = one_row(formatter(), "root/sg/d1/s", payload).values[0]
    assert callable(check) and check(value)


def test_plain_text_can_be_rejected(make_settings: MakeSettings) -> None:
    fmt = formatter(make_settings, topic_formatter_plain_text="false")
    assert one_row(fmt, "root/sg/d/s", b'"on"').values == ("on",)
    with pytest.raises(FormatError, match=r"payload: not valid JSON \(line 1, column 1: Expecting value\)"):
        fmt.format("root/sg/d/s", b"on", CONTEXT)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "payload is empty"),
        (b" \n", "payload is empty"),
        (b"\xff\xfe", "payload: not UTF-8 text (byte 0: invalid start byte)"),
        (b"null", "payload: expected a number, boolean or string, got null"),
        (b"[1, 2]", "payload: expected a number, boolean or string, got an array"),
        (b'{"value": 1', "payload: not valid JSON (line 1, column 12: Expecting ',' delimiter)"),
        (b'"unterminated', "payload: not valid JSON (line 1, column 1: Unterminated string"),
        (b"[1,", "payload: not valid JSON"),
        (b"[" * 100_000, "payload: JSON nested too deeply"),
        (b"9" * 5000, "payload: cannot be decoded (Exceeds the limit (4300 digits)"),
        (b"{}", 'payload: the object has no "value" key'),
        (b'{"ts": 1}', 'payload: the object has no "value" key'),
        (b'{"value": 1, "unit": "C"}', "payload: unknown key 'unit'; expected \"value\" and optionally \"ts\""),
        (b'{"value": null}', 'payload "value": expected a number, boolean or string, got null'),
        (b'{"value": {"a": 1}}', 'payload "value": expected a number, boolean or string, got an object'),
        (b'"a\\ud800"', "payload: the string holds a lone surrogate (\\ud800), which is not Unicode text"),
        (b'{"value": "\\udfff"}', 'payload "value": the string holds a lone surrogate (\\udfff)'),
        (b'{"value": [1]}', 'payload "value": expected a number, boolean or string, got an array'),
        (b'{"value": 1, "ts": 1.5}', 'payload "ts": expected an integer in ms or an ISO-8601 text, got a floating'),
        (b'{"value": 1, "ts": true}', 'payload "ts": expected an integer in ms or an ISO-8601 text, got a boolean'),
        (b'{"value": 1, "ts": null}', 'payload "ts": expected an integer in ms or an ISO-8601 text, got null'),
        (b'{"value": 1, "ts": 9223372036854775808}', 'payload "ts": 9223372036854775808 is outside the INT64 range'),
        (b'{"value": 1, "ts": "yesterday"}', "payload \"ts\": 'yesterday' is not an ISO-8601 date and time"),
        (b'{"value": 1, "ts": "2024-05-01T10:00:00"}', "has no UTC offset (add Z or +hh:mm)"),
    ],
)
def test_payload_errors(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError) as info:
        formatter().format("root/sg/d1/s", payload, CONTEXT)
    assert message in str(info.value)


@given(st.binary(max_size=64))
def test_any_payload_gives_one_row_or_a_format_error(payload: bytes) -> None:
    try:
        rows = formatter().format("root/sg/d1/s", payload, CONTEXT)
    except FormatError as exc:
        assert str(exc)
    else:
        assert len(rows) == 1
        assert isinstance(rows[0].values[0], bool | int | float | str)


# Timestamps


@pytest.mark.parametrize(
    ("precision", "expected"),
    [("ms", 1714550400123), ("us", 1714550400123456), ("ns", 1714550400123456000)],
)
def test_iso_timestamp_follows_precision(make_settings: MakeSettings, precision: str, expected: int) -> None:
    fmt = formatter(make_settings, timestamp_precision=precision)
    payload = b'{"ts": "2024-05-01T10:00:00.123456+02:00", "value": 1}'
    assert one_row(fmt, "root/sg/d/s", payload).timestamp == expected


def test_integer_timestamp_is_taken_as_is() -> None:
    assert one_row(formatter(), "root/sg/d/s", b'{"ts": -5, "value": 1}').timestamp == -5
    assert one_row(formatter(), "root/sg/d/s", b'{"ts": 1714550400123, "value": 1}').timestamp == 1714550400123


def test_timestamp_before_the_epoch_rounds_down() -> None:
    row = one_row(formatter(), "root/sg/d/s", b'{"ts": "1969-12-31T23:59:59.9995Z", "value": 1}')
    assert row.timestamp == -1


@pytest.mark.parametrize(("precision", "per_second"), [("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_server_time_follows_precision(make_settings: MakeSettings, precision: str, per_second: int) -> None:
    fmt = formatter(make_settings, timestamp_precision=precision)
    before = time.time_ns() * per_second // 10**9
    for payload in (b"1", b'{"value": 1}'):
        timestamp = one_row(fmt, "root/sg/d/s", payload).timestamp
        assert before <= timestamp <= time.time_ns() * per_second // 10**9


def test_formatter_declares_its_options() -> None:
    keys = [option.key for option in TopicFormatter.options]
    assert keys == ["topic_formatter_template", "topic_formatter_prefix", "topic_formatter_plain_text"]
    assert TopicFormatter.name == "topic"
