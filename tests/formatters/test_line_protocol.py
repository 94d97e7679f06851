"""The ``line`` formatter: InfluxDB line protocol, its escaping and typing, and the mapping to IoTDB's tree."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from formatters.line_protocol import LineProtocolFormatter
from iotdb_core.config import load_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import ConfigError, FormatError
from iotdb_core.formatter import FormatContext, Row

MakeLine = Callable[..., LineProtocolFormatter]
T = TSDataType


def rows_of(formatter: LineProtocolFormatter, context: FormatContext, text: str, topic: str = "farm") -> list[Row]:
    return formatter.format(topic, text.encode(), context)


def one(formatter: LineProtocolFormatter, context: FormatContext, line: str, topic: str = "farm") -> Row:
    [row] = rows_of(formatter, context, line, topic)
    return row


def rejection(formatter: LineProtocolFormatter, context: FormatContext, payload: bytes, topic: str = "farm") -> str:
    with pytest.raises(FormatError) as caught:
        formatter.format(topic, payload, context)
    assert type(caught.value) is FormatError
    return str(caught.value)


def test_point_maps_to_device_and_measurements(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    row = one(line_formatter, context, "weather,location=us-midwest,season=summer temperature=82 1465839830100400200",
              topic="farm/sensors/7")
    assert row == Row(
        "root.farm.weather.`us-midwest`.summer", 1465839830100, ("temperature",), (82.0,), (T.DOUBLE,)
    )


def test_tag_values_are_ordered_by_tag_key(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    row = one(line_formatter, context, "m,zone=z1,b=beta,a=alpha v=1i 0")
    assert row.device == "root.farm.m.alpha.beta.z1"


def test_names_that_are_not_plain_nodes_are_backquoted(
    line_formatter: LineProtocolFormatter, context: FormatContext
) -> None:
    row = one(line_formatter, context, "cpu\\ load,host=01,rack=a`b,site=北京 user-time=1,`x`=2,ok=3 0")
    assert row.device == "root.farm.`cpu load`.`01`.`a``b`.北京"
    assert row.measurements == ("`user-time`", "```x```", "ok")


FIELD_TYPES = [
    ('"hello world"', "hello world", T.TEXT),
    ('""', "", T.TEXT),
    ("1i", 1, T.INT64),
    ("-12485903i", -12485903, T.INT64),
    ("9223372036854775807i", 2**63 - 1, T.INT64),
    ("-9223372036854775808i", -(2**63), T.INT64),
    ("12485903u", 12485903, T.INT64),
    ("0u", 0, T.INT64),
    ("9223372036854775807u", 2**63 - 1, T.INT64),
    ("7i32", 7, T.INT32),
    ("-2147483648i32", -(2**31), T.INT32),
    ("1.5f", 1.5, T.FLOAT),
    ("-2e3f", -2000.0, T.FLOAT),
    ("3f", 3.0, T.FLOAT),
    ("1", 1.0, T.DOUBLE),
    ("1.0", 1.0, T.DOUBLE),
    ("-1.234456e+78", -1.234456e78, T.DOUBLE),
    ("6.02E23", 6.02e23, T.DOUBLE),
    ("1e-3", 0.001, T.DOUBLE),
    (".5", 0.5, T.DOUBLE),
    ("-0", -0.0, T.DOUBLE),
]


@pytest.mark.parametrize(("written", "value", "kind"), FIELD_TYPES)
def test_field_typing(
    line_formatter: LineProtocolFormatter, context: FormatContext, written: str, value: object, kind: TSDataType
) -> None:
    row = one(line_formatter, context, f"m v={written} 1")
    assert row.types == (kind,)
    assert row.values == (value,)
    assert type(row.values[0]) is type(value)


@pytest.mark.parametrize("written", ["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"])
def test_booleans(line_formatter: LineProtocolFormatter, context: FormatContext, written: str) -> None:
    row = one(line_formatter, context, f"m v={written}")
    assert row.values == (written.lower().startswith("t"),)
    assert row.types == (T.BOOLEAN,)


def test_quoted_boolean_is_text(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    assert one(line_formatter, context, 'm v="true"').values == ("true",)


# Examples from InfluxDB's line protocol reference ("Special characters" and the 1.x tutorial).
INFLUX_ESCAPING = [
    ('my\\ Measurement fieldKey="string value"', "root.farm.`my Measurement`", ("fieldKey",), ("string value",)),
    ('myMeasurement fieldKey="\\"string\\" within a string"', "root.farm.myMeasurement", ("fieldKey",),
     ('"string" within a string',)),
    ("myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100",
     "root.farm.myMeasurement.`tag Value1`.`tag Value2`", ("fieldKey",), (100.0,)),
    ('myMeasurement,tagKey=🍭 fieldKey="Launch 🚀" 1556813561098000000', "root.farm.myMeasurement.`🍭`",
     ("fieldKey",), ("Launch 🚀",)),
    ("weather,location=us\\,midwest temperature=82", "root.farm.weather.`us,midwest`", ("temperature",), (82.0,)),
    ("weather,location\\ place=us-midwest temperature=82", "root.farm.weather.`us-midwest`", ("temperature",),
     (82.0,)),
    ("wea\\,ther,location=us-midwest temperature=82", "root.farm.`wea,ther`.`us-midwest`", ("temperature",),
     (82.0,)),
    ("wea\\ ther,location=us-midwest temperature=82", "root.farm.`wea ther`.`us-midwest`", ("temperature",),
     (82.0,)),
    ("weather,location=us-midwest temperature\\=cel=82", "root.farm.weather.`us-midwest`", ("`temperature=cel`",),
     (82.0,)),
    ('"weather",location=us-midwest temperature=82', 'root.farm.`"weather"`.`us-midwest`', ("temperature",),
     (82.0,)),
    ('weather,location=us-midwest temperature_str="too hot\\cold"', "root.farm.weather.`us-midwest`",
     ("temperature_str",), ("too hot\\cold",)),
    ('weather,location=us-midwest temperature_str="too hot\\\\cold"', "root.farm.weather.`us-midwest`",
     ("temperature_str",), ("too hot\\cold",)),
    ('weather,location=us-midwest temperature_str="too hot\\\\\\cold"', "root.farm.weather.`us-midwest`",
     ("temperature_str",), ("too hot\\\\cold",)),
    ('weather,location=us-midwest temperature_str="too, hot = cold"', "root.farm.weather.`us-midwest`",
     ("temperature_str",), ("too, hot = cold",)),
]


@pytest.mark.parametrize(("line", "device", "measurements", "values"), INFLUX_ESCAPING)
def test_influxdb_escaping_examples(
    line_formatter: LineProtocolFormatter, context: FormatContext,
    line: str, device: str, measurements: tuple[str, ...], values: tuple[object, ...],
) -> None:
    row = one(line_formatter, context, line)
    assert (row.device, row.measurements, row.values) == (device, measurements, values)


# InfluxDB's "Escaping backslashes" table: with two contiguous backslashes the first escapes the second.
BACKSLASHES = [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)]


@pytest.mark.parametrize(("written", "meant"), BACKSLASHES)
def test_backslash_table_in_every_element(
    line_formatter: LineProtocolFormatter, context: FormatContext, written: int, meant: int
) -> None:
    slashes = "\\" * written
    kept = "\\" * meant
    row = one(line_formatter, context, f'm{slashes}x,t=a{slashes}b k{slashes}y="s{slashes}z"')
    assert row.device == f"root.farm.`m{kept}x`.`a{kept}b`"
    assert row.measurements == (f"`k{kept}y`",)
    assert row.values == (f"s{kept}z",)


def test_backslash_before_an_ordinary_character_is_kept(
    line_formatter: LineProtocolFormatter, context: FormatContext
) -> None:
    row = one(line_formatter, context, 'm\\=x,t=a\\"b k="\\n\\t"')
    assert row.device == 'root.farm.`m\\=x`.`a\\"b`'
    assert row.values == ("\\n\\t",)


def test_many_lines_blank_lines_and_comments(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    payload = (
        "# header\r\ncpu,host=a v=1 1000000\r\n\r\n   \n  # indented comment\n"
        "cpu,host=b v=2 2000000\nmem v=3i 3000000"
    )
    rows = rows_of(line_formatter, context, payload)
    assert [(row.device, row.timestamp, row.values) for row in rows] == [
        ("root.farm.cpu.a", 1, (1.0,)), ("root.farm.cpu.b", 2, (2.0,)), ("root.farm.mem", 3, (3,)),
    ]


def test_comment_only_payload_gives_no_rows(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    assert rows_of(line_formatter, context, "# nothing to write\n\n# still nothing\n") == []


def test_spaces_around_sections(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    row = one(line_formatter, context, "  cpu   v=1,w=2    5000000   ")
    assert (row.device, row.timestamp, row.values) == ("root.farm.cpu", 5, (1.0, 2.0))


def test_missing_timestamp_is_the_server_time(make_line: MakeLine, context: FormatContext) -> None:
    formatter = make_line(timestamp_precision="us")
    before = time.time_ns() // 1000
    rows = rows_of(formatter, context, "a v=1\nb v=2\nc v=3 7000")
    after = time.time_ns() // 1000
    assert before <= rows[0].timestamp <= after
    assert rows[1].timestamp == rows[0].timestamp
    assert rows[2].timestamp == 7


PRECISIONS = [
    ("ns", "ms", 1465839830100400200, 1465839830100),
    ("ns", "us", 1465839830100400200, 1465839830100400),
    ("ns", "ns", 1465839830100400200, 1465839830100400200),
    ("us", "ms", 1465839830100400, 1465839830100),
    ("us", "ns", 1465839830100400, 1465839830100400000),
    ("ms", "ms", 1465839830100, 1465839830100),
    ("ms", "us", 1465839830100, 1465839830100000),
    ("s", "ms", 1465839830, 1465839830000),
    ("s", "ns", 1465839830, 1465839830000000000),
    ("ns", "ms", 999999, 0),
    ("ns", "ms", -1, -1),
    ("ns", "ms", -1000000, -1),
    ("ns", "ms", -1000001, -2),
]


@pytest.mark.parametrize(("line_precision", "database_precision", "written", "stored"), PRECISIONS)
def test_timestamp_precision_conversion(
    make_line: MakeLine, context: FormatContext,
    line_precision: str, database_precision: str, written: int, stored: int,
) -> None:
    formatter = make_line(line_timestamp_precision=line_precision, timestamp_precision=database_precision)
    assert one(formatter, context, f"m v=1 {written}").timestamp == stored


def test_timestamp_overflowing_the_database_precision(make_line: MakeLine, context: FormatContext) -> None:
    formatter = make_line(line_timestamp_precision="s", timestamp_precision="ns")
    message = rejection(formatter, context, b"m v=1 1\nm v=1 9223372037")
    assert message == "line 2, column 7: timestamp 9223372037 (s) is out of the INT64 range in ns"


def test_database_from_topic_and_default(make_line: MakeLine, context: FormatContext) -> None:
    plain = make_line()
    assert one(plain, context, "m v=1", topic="plant_7/line/3").device == "root.plant_7.m"
    assert one(plain, context, "m v=1", topic="工厂").device == "root.工厂.m"
    with_default = make_line(line_default_database="root.fallback")
    assert with_default.default_database == "fallback"
    assert one(with_default, context, "m v=1", topic="plant/x").device == "root.plant.m"
    assert one(with_default, context, "m v=1", topic="/x").device == "root.fallback.m"
    assert one(with_default, context, "m v=1", topic="").device == "root.fallback.m"
    assert one(with_default, context, "m v=1", topic="plant-7/x").device == "root.fallback.m"


@pytest.mark.parametrize(("topic", "message"), [
    ("/sensors", "topic '/sensors': its first level is empty, so it names no database, and line_default_database"),
    ("", "topic '': its first level is empty"),
    ("plant-7/x", "topic 'plant-7/x': first level 'plant-7' cannot name a database"),
    ("123/x", "topic '123/x': first level '123' cannot name a database"),
    ("a.b/x", "topic 'a.b/x': first level 'a.b' cannot name a database"),
])
def test_topic_without_database(line_formatter: LineProtocolFormatter, context: FormatContext, topic: str,
                                message: str) -> None:
    assert rejection(line_formatter, context, b"m v=1", topic=topic).startswith(message)


def test_options_are_declared_and_validated() -> None:
    options = {option.key: option for option in LineProtocolFormatter.options}
    assert set(options) == {"line_timestamp_precision", "line_default_database"}
    assert options["line_timestamp_precision"].default == "ns"
    assert options["line_default_database"].default == ""
    extra = LineProtocolFormatter.options
    assert load_settings(None, extra_options=extra, environ={},
                         overrides={"line_timestamp_precision": "MS"}).line_timestamp_precision == "ms"
    with pytest.raises(ConfigError, match=r"line_timestamp_precision=h: expected ns, us, ms or s"):
        load_settings(None, extra_options=extra, environ={}, overrides={"line_timestamp_precision": "h"})
    with pytest.raises(ConfigError, match=r"line_default_database=a-b: expected empty or a database name"):
        load_settings(None, extra_options=extra, environ={}, overrides={"line_default_database": "a-b"})


LINE_ERRORS = [
    (b"cpu v=1\ncpu v=2\nsensors,a=b temp 82", "line 3, column 17: expected '=' after field key 'temp'"),
    (b"cpu", "line 1, column 4: expected a space and a field set after measurement 'cpu'"),
    (b"cpu,host=a", "line 1, column 11: expected a space and a field set after the tag set"),
    (b"cpu ", "line 1, column 5: expected a field set (field_key=value)"),
    (b",host=a v=1", "line 1, column 1: expected a measurement name"),
    (b"cpu,=a v=1", "line 1, column 5: expected a tag key after ','"),
    (b"cpu,host v=1", "line 1, column 9: expected '=' after tag key 'host'"),
    (b"cpu,host= v=1", "line 1, column 10: expected a value for tag 'host' (tag values cannot be empty)"),
    (b"cpu,host=a=b v=1", "line 1, column 11: unescaped '=' in the value of tag 'host' (write \\=)"),
    (b"cpu,h=a,h=b v=1", "line 1, column 9: duplicate tag key 'h'"),
    (b"cpu =1", "line 1, column 5: expected a field key"),
    (b"cpu v=1,", "line 1, column 9: expected a field key"),
    (b"cpu v", "line 1, column 6: expected '=' after field key 'v'"),
    (b"cpu v=", "line 1, column 7: expected a value for field 'v'"),
    (b"cpu v=,w=1", "line 1, column 7: expected a value for field 'v'"),
    (b"cpu v=1,v=2", "line 1, column 9: duplicate field key 'v'"),
    (b'cpu v="abc', "line 1, column 11: unterminated string value of field 'v' (opened at column 7)"),
    (b'cpu v="abc\\"', "line 1, column 13: unterminated string value of field 'v' (opened at column 7)"),
    (b'cpu v="a"b', "line 1, column 10: expected ',' or ' ' after the string value of field 'v'"),
    (b'cpu v="a""b"', "line 1, column 10: expected ',' or ' ' after the string value of field 'v'"),
    (b"cpu v=abc", "line 1, column 7: invalid value 'abc' for field 'v': expected a number"),
    (b"cpu v=yes", "line 1, column 7: invalid value 'yes' for field 'v'"),
    (b"cpu v=1=2", "line 1, column 7: invalid value '1=2' for field 'v'"),
    (b'cpu v=1"', "line 1, column 7: invalid value '1\"' for field 'v'"),
    (b"cpu v=+1", "line 1, column 7: invalid value '+1' for field 'v'"),
    (b"cpu v=1_000", "line 1, column 7: invalid value '1_000' for field 'v'"),
    (b"cpu v=NaN", "line 1, column 7: invalid value 'NaN' for field 'v'"),
    (b"cpu v=inf", "line 1, column 7: invalid value 'inf' for field 'v'"),
    (b"cpu v=1.2.3", "line 1, column 7: invalid value '1.2.3' for field 'v'"),
    (b"cpu v=1.5i", "line 1, column 7: invalid value '1.5i' for field 'v'"),
    (b"cpu v=i", "line 1, column 7: invalid value 'i' for field 'v'"),
    (b"cpu v=1e999", "line 1, column 7: 1e999 for field 'v' is out of the DOUBLE range"),
    (b"cpu v=1e39f", "line 1, column 7: 1e39f for field 'v' is out of the FLOAT range"),
    (b"cpu v=9223372036854775808i", "line 1, column 7: 9223372036854775808i for field 'v' is out of the INT64 range"),
    (b"cpu v=9223372036854775808u", "line 1, column 7: 9223372036854775808u for field 'v' is out of the INT64 range"),
    (b"cpu v=18446744073709551615u", "line 1, column 7: 18446744073709551615u for field 'v' is out of the INT64"),
    (b"cpu v=-1u", "line 1, column 7: unsigned integer -1u for field 'v' cannot be negative"),
    (b"cpu v=2147483648i32", "line 1, column 7: 2147483648i32 for field 'v' is out of the INT32 range"),
    (b"cpu v=1 12.5", "line 1, column 9: expected an integer timestamp, got '12.5'"),
    (b"cpu v=1 +12", "line 1, column 9: expected an integer timestamp, got '+12'"),
    (b"cpu v=1 1,2", "line 1, column 9: expected an integer timestamp, got '1,2'"),
    (b"cpu v=1 9223372036854775808", "line 1, column 9: timestamp 9223372036854775808 is out of the INT64 range"),
    (b"cpu v=1 1 2", "line 1, column 11: expected the end of the line after the timestamp"),
    (b"cpu v=1\x00", "line 1, column 8: U+0000 is not allowed in line protocol"),
    (b"cpu v=1\ncpu v=\"caf\xc3\xa9\xff\"", "line 2, column 12: payload is not UTF-8 (byte 0xff at offset 20"),
    (b"", "empty payload"),
    (b" \r\n\n\t", "empty payload"),
]


@pytest.mark.parametrize(("payload", "message"), LINE_ERRORS, ids=[case[1] for case in LINE_ERRORS])
def test_line_errors(line_formatter: LineProtocolFormatter, context: FormatContext, payload: bytes,
                     message: str) -> None:
    assert rejection(line_formatter, context, payload).startswith(message)


def test_one_bad_line_rejects_the_payload(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    payload = b"cpu v=1 1\ncpu v=2 2\n\ncpu v=oops 3\ncpu v=worse 4\n"
    message = rejection(line_formatter, context, payload)
    assert message.startswith("line 4, column 7: invalid value 'oops' for field 'v'")
    assert "worse" not in message


def test_columns_count_characters_not_bytes(line_formatter: LineProtocolFormatter, context: FormatContext) -> None:
    message = rejection(line_formatter, context, "  北京,区=东城 温度 1".encode())
    assert message == "line 1, column 13: expected '=' after field key '温度'"
