"""The ``json`` formatter: IoTDB's JSON shapes, JSON's own value types, and located error messages."""

from __future__ import annotations

import json

import pytest

from formatters.json_formatter import JsonFormatter
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Row


def fmt(formatter: JsonFormatter, context: FormatContext, document: object) -> list[Row]:
    return formatter.format("iotdb/json", json.dumps(document).encode(), context)


def rejection(formatter: JsonFormatter, context: FormatContext, payload: bytes) -> str:
    with pytest.raises(FormatError) as caught:
        formatter.format("iotdb/json", payload, context)
    assert type(caught.value) is FormatError
    return str(caught.value)


def test_single_row_keeps_json_types(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {
        "device": "root.sg.d1", "timestamp": 1586076045524,
        "measurements": ["i", "f", "b", "s", "n", "big"],
        "values": [12, 1.5, True, "12", None, 2**70],
    }
    [row] = fmt(json_formatter, context, document)
    assert row == Row("root.sg.d1", 1586076045524, ("i", "f", "b", "s", "n", "big"), (12, 1.5, True, "12", None, 2**70))
    assert [type(value) for value in row.values] == [int, float, bool, str, type(None), int]
    assert row.types is None


def test_batch_gives_one_row_per_timestamp(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {
        "device": "root.sg.d1", "timestamps": [1586076045524, 1586076065526],
        "measurements": ["s1", "s2"], "values": [[0.530635, 0.530635], [0.530655, None]],
    }
    rows = fmt(json_formatter, context, document)
    assert rows == [
        Row("root.sg.d1", 1586076045524, ("s1", "s2"), (0.530635, 0.530635)),
        Row("root.sg.d1", 1586076065526, ("s1", "s2"), (0.530655, None)),
    ]


def test_array_of_both_shapes(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = [
        {"device": "root.sg.d1", "timestamp": 1, "measurements": ["s1"], "values": [1]},
        {"device": "root.sg.`d-2`", "timestamps": [2, 3], "measurements": ["`s.1`"], "values": [[2], [3]]},
    ]
    rows = fmt(json_formatter, context, document)
    assert [(row.device, row.timestamp, row.measurements, row.values) for row in rows] == [
        ("root.sg.d1", 1, ("s1",), (1,)),
        ("root.sg.`d-2`", 2, ("`s.1`",), (2,)),
        ("root.sg.`d-2`", 3, ("`s.1`",), (3,)),
    ]


def test_empty_array_is_no_rows(json_formatter: JsonFormatter, context: FormatContext) -> None:
    assert json_formatter.format("t", b"[]", context) == []


def test_datatypes_become_row_types(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {
        "device": "root.sg.d1", "timestamps": [1, 2], "measurements": ["a", "b", "c", "d", "e"],
        "datatypes": ["FLOAT", "int64", "STRING", None, "BOOLEAN"],
        "values": [[1.5, 7, "x", 3, True], [2, None, "y", "any", False]],
    }
    rows = fmt(json_formatter, context, document)
    expected = (TSDataType.FLOAT, TSDataType.INT64, TSDataType.TEXT, None, TSDataType.BOOLEAN)
    assert [row.types for row in rows] == [expected, expected]
    assert rows[1].values == (2, None, "y", "any", False)


def test_unknown_keys_are_ignored(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {"device": "root.sg.d1", "timestamp": 5, "measurements": ["s"], "values": [1], "qos": 2, "note": {}}
    assert fmt(json_formatter, context, document) == [Row("root.sg.d1", 5, ("s",), (1,))]


def test_int64_edges_are_timestamps(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {"device": "root.sg.d1", "timestamps": [-(2**63), 2**63 - 1], "measurements": ["s"],
                "values": [[1], [2]]}
    assert [row.timestamp for row in fmt(json_formatter, context, document)] == [-(2**63), 2**63 - 1]


GOOD = {"device": "root.sg.d1", "timestamp": 1, "measurements": ["s1", "s2"], "values": [1, 2]}
BATCH = {"device": "root.sg.d1", "timestamps": [1, 2], "measurements": ["s1", "s2"], "values": [[1, 2], [3, 4]]}


def changed(base: dict[str, object], **changes: object) -> dict[str, object]:
    document = {key: value for key, value in base.items() if key not in changes}
    document.update({key: value for key, value in changes.items() if value is not ...})
    return document


ERRORS: list[tuple[str, object, str]] = [
    ("single row length", changed(GOOD, values=[1, 2, 3]), "values: 2 measurements but 3 values"),
    ("batch row length", changed(BATCH, timestamps=[1, 2, 3, 4], values=[[1, 2]] * 3 + [[1, 2, 3]]),
     "values[3]: 2 measurements but 3 values"),
    ("float timestamp in an array", [GOOD, changed(BATCH, timestamps=[1, 2, 1.5], values=[[1, 2]] * 3)],
     "[1].timestamps[2]: timestamp must be an integer, got 1.5"),
    ("missing device", changed(GOOD, device=...), "device: missing"),
    ("missing device in an array", [GOOD, changed(GOOD, device=...)], "[1].device: missing"),
    ("device not a string", changed(GOOD, device=3), "device: expected a string, got 3"),
    ("bad device node", changed(GOOD, device="root.a-b"),
     "device 'root.a-b': node 'a-b' at column 6 has characters that need backquotes"),
    ("device without level", changed(GOOD, device="root"), "device 'root': device path 'root' needs at least one"),
    ("device not under root", changed(GOOD, device="sg.d1"), "device 'sg.d1': must start with 'root'"),
    ("array as value", changed(GOOD, values=[[1], 2]), "values[0]: objects and arrays are not values"),
    ("object as value", changed(GOOD, values=[1, {"v": 2}]), "values[1]: objects and arrays are not values"),
    ("object in batch", changed(BATCH, values=[[1, 2], [3, [4]]]), "values[1][1]: objects and arrays are not values"),
    ("duplicate measurement", changed(GOOD, measurements=["s1", "s1"]), "measurements[1]: duplicate measurement 's1'"),
    ("measurement not a string", changed(GOOD, measurements=["s1", 2]), "measurements[1]: expected a string, got 2"),
    ("bad measurement", changed(GOOD, measurements=["s1", "a.b"]),
     "measurements[1]: invalid measurement 'a.b': measurement 'a.b' must be a single node"),
    ("measurement needs quotes", changed(GOOD, measurements=["s-1", "s2"]),
     "measurements[0]: invalid measurement 's-1': node 's-1' at column 1 has characters that need backquotes"),
    ("missing measurements", changed(GOOD, measurements=...), "measurements: missing"),
    ("measurements not an array", changed(GOOD, measurements="s1"), 'measurements: expected an array of strings'),
    ("no measurements", changed(GOOD, measurements=[], values=[]), "measurements: empty"),
    ("missing values", changed(GOOD, values=...), "values: missing"),
    ("values not an array", changed(GOOD, values=3), "values: expected an array of 2 values, got 3"),
    ("missing timestamp", changed(GOOD, timestamp=...), "timestamp: missing"),
    ("both timestamp forms", changed(BATCH, timestamp=1), 'give either "timestamp" or "timestamps"'),
    ("bool timestamp", changed(GOOD, timestamp=True), "timestamp: must be an integer, got true"),
    ("string timestamp", changed(GOOD, timestamp="1"), 'timestamp: must be an integer, got "1"'),
    ("float timestamp", changed(GOOD, timestamp=1e3), "timestamp: must be an integer, got 1000.0"),
    ("timestamp above INT64", changed(GOOD, timestamp=2**63), "timestamp: timestamp 9223372036854775808 is out of"),
    ("timestamp below INT64", changed(BATCH, timestamps=[1, -(2**63) - 1]), "timestamps[1]: timestamp -9223"),
    ("bool in timestamps", changed(BATCH, timestamps=[False, 2]),
     "timestamps[0]: timestamp must be an integer, got false"),
    ("timestamps not an array", changed(BATCH, timestamps=5), "timestamps: expected an array of integers, got 5"),
    ("no timestamps", changed(BATCH, timestamps=[], values=[]), "timestamps: empty"),
    ("rows per timestamp", changed(BATCH, values=[[1, 2]]), "values: 2 timestamps but 1 rows of values"),
    ("batch row not an array", changed(BATCH, values=[[1, 2], 3]), "values[1]: expected an array of 2 values, got 3"),
    ("unknown datatype", changed(GOOD, datatypes=["FLOAT", "FLOT"]), "datatypes[1]: unknown data type 'FLOT'"),
    ("datatypes length", changed(GOOD, datatypes=["FLOAT"]), "datatypes: 2 measurements but 1 datatypes"),
    ("datatypes not an array", changed(GOOD, datatypes="FLOAT"), "datatypes: expected an array of type names"),
    ("datatype not a string", changed(GOOD, datatypes=["FLOAT", 3]), "datatypes[1]: expected a type name, got 3"),
    ("value against datatype", changed(GOOD, datatypes=["FLOAT", "INT32"], values=[1.5, 2**40]),
     "values[1] (measurement 's2'): 1099511627776 is out of the INT32 range"),
    ("text against datatype", changed(BATCH, datatypes=["DOUBLE", "DOUBLE"], values=[[1, 2], [3, "x"]]),
     "values[1][1] (measurement 's2'): expected DOUBLE, got text 'x'"),
    ("bool against datatype", changed(GOOD, datatypes=["BOOLEAN", "INT64"], values=[True, False]),
     "values[1] (measurement 's2'): expected INT64, got boolean false"),
    ("top-level number", 3, "payload: expected a JSON object or an array of objects, got 3"),
    ("top-level string", "root.sg", 'payload: expected a JSON object or an array of objects, got "root.sg"'),
    ("top-level null", None, "got null"),
    ("array of scalars", [GOOD, 3], "[1]: expected an object, got 3"),
    ("nested arrays", [[GOOD]], "[0]: expected an object, got an array"),
]


@pytest.mark.parametrize(("document", "message"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_document_errors(json_formatter: JsonFormatter, context: FormatContext, document: object, message: str) -> None:
    assert message in rejection(json_formatter, context, json.dumps(document).encode())


BYTE_ERRORS = [
    ("empty", b"", "empty payload"),
    ("blank", b"  \n\t ", "empty payload"),
    ("not UTF-8", b'{"device": "root.sg.\xff"}', "line 1, column 21: payload is not UTF-8 (byte 0xff at offset 20"),
    ("not UTF-8 on line 2", b'{\n "d\xc3": 1}', "line 2, column 4: payload is not UTF-8"),
    ("truncated", b'{"device": "root.sg.d1", "timestamp": 1', "line 1, column 40: invalid JSON"),
    ("trailing data", json.dumps(GOOD).encode() + b" x", "invalid JSON: Extra data"),
    ("single quotes", b"{'device': 1}", "line 1, column 2: invalid JSON"),
    ("deep nesting", b"[" * 100_000, "invalid JSON"),
    ("lone surrogate in device",
     b'{"device": "root.sg.`\\ud800`", "timestamp": 1, "measurements": ["s"], "values": [1]}',
     "lone surrogate"),
    ("lone surrogate in value",
     b'{"device": "root.sg.d", "timestamp": 1, "measurements": ["s"], "values": ["\\udc00"]}',
     "values[0]: text contains a lone surrogate"),
    ("lone surrogate in measurement",
     b'{"device": "root.sg.d", "timestamp": 1, "measurements": ["`\\ud800`"], "values": [1]}',
     "measurements[0]: '`\\ud800`' contains a lone surrogate"),
]


@pytest.mark.parametrize(("payload", "message"), [case[1:] for case in BYTE_ERRORS], ids=[c[0] for c in BYTE_ERRORS])
def test_payload_errors(json_formatter: JsonFormatter, context: FormatContext, payload: bytes, message: str) -> None:
    assert message in rejection(json_formatter, context, payload)


def test_one_bad_element_rejects_the_whole_array(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = [GOOD, GOOD, changed(GOOD, values=[1])]
    assert rejection(json_formatter, context, json.dumps(document).encode()).startswith(
        "[2].values: 2 measurements but 1 values"
    )
