"""Properties: no input makes a formatter raise anything but FormatError; line protocol round-trips."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formatters.json_formatter import JsonFormatter
from formatters.line_protocol import LineProtocolFormatter
from formatters.line_tokenizer import escape_key, escape_measurement, escape_string, parse_line
from iotdb_core.config import default_settings, load_settings
from iotdb_core.datatypes import FLOAT_MAX, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Value
from iotdb_core.paths import quote_node
from iotdb_core.testing import check_any_payload

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXT = FormatContext(client_id="hypothesis")
JSON = JsonFormatter(default_settings())
LINE = LineProtocolFormatter(default_settings())
LINE_NS = LineProtocolFormatter(
    load_settings(None, extra_options=LineProtocolFormatter.options, environ={},
                  overrides={"timestamp_precision": "ns", "line_timestamp_precision": "ns"})
)
TOPICS = st.sampled_from(["farm/sensors", "farm", "", "/x", "a-b/c", "123", "工厂/1"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
iotdb_like = st.fixed_dictionaries(
    {},
    optional={
        "device": st.sampled_from(["root.sg.d1", "root.`a b`.c", "root", "root.a-b", ""]) | json_values,
        "timestamp": st.integers(min_value=-(2**64), max_value=2**64) | json_values,
        "timestamps": st.lists(st.integers(min_value=-(2**64), max_value=2**64) | json_values, max_size=4),
        "measurements": st.lists(st.sampled_from(["s1", "s2", "`x.y`", "a-b", ""]) | json_values, max_size=4),
        "datatypes": st.lists(st.sampled_from(["FLOAT", "INT32", "TEXT", "BOOLEAN", "x"]) | json_values, max_size=4),
        "values": st.lists(json_values | st.lists(json_values, max_size=4), max_size=4),
    },
)


@FAST
@given(payload=st.binary(max_size=2048), topic=TOPICS)
def test_arbitrary_bytes(payload: bytes, topic: str) -> None:
    check_any_payload(JSON, topic, payload, context=CONTEXT)
    check_any_payload(LINE, topic, payload, context=CONTEXT)


@FAST
@given(document=json_values)
def test_arbitrary_json_values(document: object) -> None:
    check_any_payload(JSON, "t", json.dumps(document).encode(), context=CONTEXT)


@FAST
@given(document=iotdb_like | st.lists(iotdb_like, max_size=3))
def test_documents_shaped_like_iotdb_ones(document: object) -> None:
    check_any_payload(JSON, "t", json.dumps(document).encode(), context=CONTEXT)


plain_nodes = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()


@FAST
@given(
    device_nodes=st.lists(plain_nodes, min_size=1, max_size=4),
    names=st.lists(plain_nodes, min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_valid_json_documents_give_their_rows(device_nodes: list[str], names: list[str], data: st.DataObject) -> None:
    device = "root." + ".".join(device_nodes)
    timestamps = data.draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=1, max_size=4))
    rows = [data.draw(st.lists(scalars, min_size=len(names), max_size=len(names))) for _ in timestamps]
    document = {"device": device, "timestamps": timestamps, "measurements": names, "values": rows}
    got = check_any_payload(JSON, "t", json.dumps(document).encode(), context=CONTEXT)
    assert [(row.device, row.timestamp, row.measurements) for row in got] == [
        (device, timestamp, tuple(names)) for timestamp in timestamps
    ]
    for row, values in zip(got, rows, strict=True):
        assert [(type(value), value) for value in row.values] == [(type(value), value) for value in values]


batch_values = scalars | st.sampled_from(["\udc00", [1], {"a": 1}, 2**63, -(2**63) - 1])
batch_timestamps = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from([True, 1.5, "3", None, 2**63, -(2**63) - 1])


@FAST
@given(names=st.lists(plain_nodes, min_size=1, max_size=4, unique=True), data=st.data())
def test_a_timestamps_document_equals_its_rows_sent_one_by_one(names: list[str], data: st.DataObject) -> None:
    """Accepted exactly when each row alone is accepted, with the same rows: the whole-document checks agree."""
    timestamps = data.draw(st.lists(batch_timestamps, min_size=1, max_size=6))
    rows = [
        data.draw(st.lists(batch_values, min_size=len(names), max_size=len(names)) | st.sampled_from([[], "x"]))
        for _ in timestamps
    ]
    batch = {"device": "root.sg.d", "timestamps": timestamps, "measurements": names, "values": rows}
    singles = [{"device": "root.sg.d", "timestamp": t, "measurements": names, "values": v}
               for t, v in zip(timestamps, rows, strict=True)]

    def rows_of(document: object) -> list[object] | None:
        try:
            return list(JSON.format("t", json.dumps(document).encode(), CONTEXT))
        except FormatError:
            return None

    one_by_one = [rows_of(single) for single in singles]
    accepted = [got for got in one_by_one if got is not None]
    expected = [row for got in accepted for row in got] if len(accepted) == len(one_by_one) else None
    assert rows_of(batch) == expected


line_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=120) | st.text(
    alphabet=st.sampled_from(list(' ,="\\#\tabcm0123456789.eE-+iuftTF`')), max_size=80
)


@FAST
@given(lines=st.lists(line_text, min_size=1, max_size=5), separator=st.sampled_from(["\n", "\r\n"]), topic=TOPICS)
def test_arbitrary_text_lines(lines: list[str], separator: str, topic: str) -> None:
    check_any_payload(LINE, topic, separator.join(lines).encode("utf-8", errors="surrogatepass"), context=CONTEXT)


# Round trip: points rendered with InfluxDB's escaping parse back to what was rendered.

names = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\x00"), min_size=1, max_size=12)
measurements = names.filter(lambda name: not name.startswith(("#", "\t")))
finite = st.floats(allow_nan=False, allow_infinity=False)


@dataclass(frozen=True)
class Field:
    written: str
    value: Value
    kind: TSDataType


fields = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\x00"), max_size=20).map(
        lambda text: Field(escape_string(text), text, TSDataType.TEXT)),
    st.booleans().map(lambda flag: Field(str(flag).lower(), flag, TSDataType.BOOLEAN)),
    st.integers(INT64_MIN, INT64_MAX).map(lambda number: Field(f"{number}i", number, TSDataType.INT64)),
    st.integers(0, INT64_MAX).map(lambda number: Field(f"{number}u", number, TSDataType.INT64)),
    st.integers(INT32_MIN, INT32_MAX).map(lambda number: Field(f"{number}i32", number, TSDataType.INT32)),
    finite.map(lambda number: Field(repr(number), number, TSDataType.DOUBLE)),
    finite.filter(lambda number: abs(number) <= FLOAT_MAX).map(
        lambda number: Field(f"{number!r}f", number, TSDataType.FLOAT)),
)


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Field]
    timestamp: int | None

    def render(self, spaces: str) -> str:
        key = escape_measurement(self.measurement) + "".join(
            f",{escape_key(tag)}={escape_key(value)}" for tag, value in self.tags.items()
        )
        field_set = ",".join(f"{escape_key(name)}={field.written}" for name, field in self.fields.items())
        line = f"{key}{spaces}{field_set}"
        return line if self.timestamp is None else f"{line}{spaces}{self.timestamp}"


points = st.builds(
    Point,
    measurement=measurements,
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, fields, min_size=1, max_size=5),
    timestamp=st.none() | st.integers(INT64_MIN, INT64_MAX),
)


@FAST
@given(batch=st.lists(points, min_size=1, max_size=4), separator=st.sampled_from(["\n", "\r\n"]),
       spaces=st.sampled_from([" ", "  "]))
def test_line_protocol_round_trip(batch: list[Point], separator: str, spaces: str) -> None:
    payload = separator.join(point.render(spaces) for point in batch).encode()
    rows = check_any_payload(LINE_NS, "farm/x", payload, context=CONTEXT)
    assert len(rows) == len(batch), LINE_NS.format("farm/x", payload, CONTEXT)
    for point, row in zip(batch, rows, strict=True):
        tag_nodes = "".join("." + quote_node(value) for _, value in sorted(point.tags.items()))
        assert row.device == "root.farm." + quote_node(point.measurement) + tag_nodes
        assert row.measurements == tuple(quote_node(name) for name in point.fields)
        assert row.types == tuple(field.kind for field in point.fields.values())
        for got, field in zip(row.values, point.fields.values(), strict=True):
            assert type(got) is type(field.value)
            assert got == field.value or (isinstance(got, float) and math.isnan(got) and math.isnan(field.value))
        if point.timestamp is not None:
            assert row.timestamp == point.timestamp


@FAST
@given(point=points)
def test_tokenizer_round_trip(point: Point) -> None:
    parsed = parse_line(point.render(" "))
    assert parsed is not None
    assert parsed.measurement == point.measurement
    assert dict(parsed.tags) == point.tags
    assert parsed.field_keys == tuple(point.fields)
    assert parsed.timestamp == point.timestamp


@pytest.mark.parametrize("line", ["", "   ", "\t", "# comment", "  # indented comment", "#cpu v=1"])
def test_blank_and_comment_lines(line: str) -> None:
    assert parse_line(line) is None


def test_escape_functions() -> None:
    assert escape_measurement("a, b=c\\") == "a\\,\\ b=c\\\\"
    assert escape_key("a, b=c\\") == "a\\,\\ b\\=c\\\\"
    assert escape_string('say "hi" \\o/, ok') == '"say \\"hi\\" \\\\o/, ok"'
