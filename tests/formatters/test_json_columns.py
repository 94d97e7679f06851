"""``JsonFormatter.format_columns``: batch documents as tablets that mean exactly the rows ``format`` gives.

The equivalence is checked where it matters, in storage: the same payload written as ``format``'s rows
(``Engine.write_rows``) and as ``format_columns``' items (``Engine.write_tablets``) into two real engines must
give the same series, types, values and rejected points, under several type-inference settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_json_formatter import BYTE_ERRORS, ERRORS

from formatters.json_formatter import JsonFormatter
from iotdb_core.config import Settings, default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Formatted, PayloadFormatter, Row, Tablet
from iotdb_core.plugin_manager import create_plugin_manager
from iotdb_core.storage.engine import Engine


def columns(formatter: JsonFormatter, context: FormatContext, payload: bytes) -> list[Formatted]:
    return list(formatter.format_columns("iotdb/json", payload, context))


def both_errors(formatter: JsonFormatter, context: FormatContext, payload: bytes) -> tuple[str, str]:
    messages = []
    for call in (formatter.format, formatter.format_columns):
        with pytest.raises(FormatError) as caught:
            call("iotdb/json", payload, context)
        assert type(caught.value) is FormatError
        messages.append(str(caught.value))
    return messages[0], messages[1]


@pytest.mark.parametrize("document", [case[1] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_document_errors_are_the_row_paths(json_formatter: JsonFormatter, context: FormatContext,
                                           document: object) -> None:
    by_rows, by_columns = both_errors(json_formatter, context, json.dumps(document).encode())
    assert by_columns == by_rows


@pytest.mark.parametrize("payload", [case[1] for case in BYTE_ERRORS], ids=[case[0] for case in BYTE_ERRORS])
def test_payload_errors_are_the_row_paths(json_formatter: JsonFormatter, context: FormatContext,
                                          payload: bytes) -> None:
    by_rows, by_columns = both_errors(json_formatter, context, payload)
    assert by_columns == by_rows


def test_float_batch_is_one_tablet_of_float64_columns(json_formatter: JsonFormatter,
                                                      context: FormatContext) -> None:
    document = {"device": "root.sg.d1", "timestamps": [1, 2, 3], "measurements": ["a", "b"],
                "values": [[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]]}
    [tablet] = columns(json_formatter, context, json.dumps(document).encode())
    assert isinstance(tablet, Tablet)
    assert (tablet.device, tuple(tablet.measurements), tablet.types, tablet.nulls) == ("root.sg.d1", ("a", "b"),
                                                                                        None, None)
    assert isinstance(tablet.timestamps, np.ndarray) and tablet.timestamps.dtype == np.int64
    assert tablet.timestamps.tolist() == [1, 2, 3]
    assert [(column.dtype, column.tolist()) for column in tablet.columns] == [  # type: ignore[union-attr]
        (np.float64, [0.5, 2.5, 4.5]), (np.float64, [1.5, 3.5, 5.5])]


def test_column_kinds_and_null_masks(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = {"device": "root.sg.d1", "timestamps": [1, 2, 3], "measurements": ["f", "i", "b", "mixed", "t", "n"],
                "values": [[1.5, 1, True, 1, "x", None], [None, 2, False, 2.5, "y", None],
                           [3.5, None, True, None, "z", None]]}
    [tablet] = columns(json_formatter, context, json.dumps(document).encode())
    assert isinstance(tablet, Tablet)
    f, i, b, mixed, t, n = tablet.columns
    assert isinstance(f, np.ndarray) and f.dtype == np.float64
    assert isinstance(i, np.ndarray) and i.dtype == np.int64
    assert isinstance(b, np.ndarray) and b.dtype == np.bool_
    assert list(mixed) == [1, 2.5, None] and [type(v) for v in mixed] == [int, float, type(None)]
    assert list(t) == ["x", "y", "z"]
    assert list(n) == [None, None, None]
    assert tablet.nulls is not None
    masks = [None if mask is None else np.asarray(mask).tolist() for mask in tablet.nulls]
    assert masks == [[False, True, False], [False, False, True], None, None, None, None]


def test_other_shapes_stay_the_rows_of_format(json_formatter: JsonFormatter, context: FormatContext) -> None:
    document = [
        {"device": "root.sg.d1", "timestamp": 1, "measurements": ["s1"], "values": [1]},
        {"device": "root.sg.d1", "timestamps": [2, 3], "measurements": ["s1"], "datatypes": ["FLOAT"],
         "values": [[2], [3]]},
        {"device": "root.sg.d2", "timestamps": [4], "measurements": ["s1"], "values": [[4.5]]},
    ]
    payload = json.dumps(document).encode()
    items = columns(json_formatter, context, payload)
    rows = json_formatter.format("iotdb/json", payload, context)
    assert items[:3] == rows[:3]
    assert all(type(item) is Row for item in items[:3])
    assert isinstance(items[3], Tablet) and items[3].device == "root.sg.d2"
    assert len(items) == 4


def test_a_formatter_without_format_columns_gives_its_rows(context: FormatContext) -> None:
    class Fixed(PayloadFormatter):
        name = "fixed"

        def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
            return [Row("root.sg.d1", 1, ("s",), (1.0,))]

    assert list(Fixed(default_settings()).format_columns("t", b"", context)) == [Row("root.sg.d1", 1, ("s",), (1.0,))]


# ---------------------------------------------------------------------------------------- equivalence in storage

#: Payloads as bytes: NaN and Infinity literals are not JSON that json.dumps would write.
EQUIVALENT: list[tuple[str, bytes]] = [
    ("floats", b'{"device":"root.sg.d1","timestamps":[1,2,3],"measurements":["a","b"],'
               b'"values":[[0.5,1.5],[2.5,3.5],[4.5,-0.0]]}'),
    ("integers", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a","b"],'
                 b'"values":[[1,-2],[9007199254740993,2147483648]]}'),
    ("booleans and nulls", b'{"device":"root.sg.d1","timestamps":[1,2,3],"measurements":["a","b","c"],'
                           b'"values":[[true,null,1.5],[false,2,null],[null,3,2.5]]}'),
    ("ints then floats", b'{"device":"root.sg.d1","timestamps":[1,2,3],"measurements":["a","b"],'
                         b'"values":[[1,1.5],[2.5,2],[3,3]]}'),
    ("text", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a","b"],'
             b'"values":[["x",1],["y","2"]]}'),
    ("NaN first", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a","b"],'
                  b'"values":[[NaN,1.5],[2.5,NaN]]}'),
    ("Infinity", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a"],"values":[[Infinity],[-Infinity]]}'),
    ("int beyond INT64", b'{"device":"root.sg.d1","timestamps":[1,2,3],"measurements":["a","b"],'
                         b'"values":[[1,1.5],[18446744073709551616,2.5],[3,3.5]]}'),
    ("int below INT64", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a"],'
                        b'"values":[[-9223372036854775809],[2]]}'),
    ("all null column", b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a","b"],'
                        b'"values":[[null,1.5],[null,2.5]]}'),
    ("duplicate timestamps", b'{"device":"root.sg.d1","timestamps":[5,5,4,5],"measurements":["a"],'
                             b'"values":[[1.5],[2.5],[3.5],[4.5]]}'),
    ("several devices", b'[{"device":"root.sg.d1","timestamps":[1],"measurements":["a"],"values":[[1]]},'
                        b'{"device":"root.sg.`d-2`","timestamps":[2],"measurements":["`a.b`"],"values":[[true]]},'
                        b'{"device":"root.sg.d1","timestamp":3,"measurements":["a"],"values":[2.5]}]'),
]

SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "integers as INT64": {"integer_string_infer_type": "INT64"},
    "integers as INT32, floats as FLOAT": {"integer_string_infer_type": "INT32", "floating_string_infer_type": "FLOAT"},
    "NaN and booleans as TEXT": {"nan_string_infer_type": "TEXT", "boolean_string_infer_type": "TEXT"},
    "no partial insert": {"integer_string_infer_type": "INT64", "enable_partial_insert": False},
}


def _settings(directory: Path, overrides: dict[str, Any]) -> Settings:
    return default_settings().replace(data_dir=str(directory), **overrides)


def _stored(engine: Engine) -> dict[str, tuple[TSDataType, list[int], list[str]]]:
    """Every series: type, timestamps and values (as repr, so NaN compares and -0.0 differs from 0.0)."""
    out = {}
    for schema in engine.list_series():
        result = engine.query(schema.path)
        values = [repr(value) for value in result.values.tolist()]
        out[schema.path] = (schema.data_type, result.timestamps.tolist(), values)
    return out


def _failures(result: Any) -> list[tuple[str, str, object, str, str]]:
    return sorted((f.device, f.measurement, f.timestamp, repr(f.value), f.reason) for f in result.failures)


@pytest.fixture
def engines(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine, Settings]]:
    overrides = SETTINGS[request.param]
    opened = [Engine.open(tmp_path / name, _settings(tmp_path / name, overrides),
                          create_plugin_manager(load_entry_points=False)) for name in ("rows", "tablets")]
    try:
        yield opened[0], opened[1], _settings(tmp_path, overrides)
    finally:
        for engine in opened:
            engine.close()


@pytest.mark.parametrize("engines", list(SETTINGS), indirect=True)
@pytest.mark.parametrize("payload", [case[1] for case in EQUIVALENT], ids=[case[0] for case in EQUIVALENT])
def test_tablets_store_what_rows_store(engines: tuple[Engine, Engine, Settings], context: FormatContext,
                                       payload: bytes) -> None:
    by_rows, by_tablets, settings = engines
    formatter = JsonFormatter(settings)
    rows = formatter.format("iotdb/json", payload, context)
    items = list(formatter.format_columns("iotdb/json", payload, context))
    assert any(isinstance(item, Tablet) for item in items)
    rows_result = by_rows.write_rows(rows)
    tablet_results = []
    for item in items:  # in payload order, as the MQTT service writes them
        if isinstance(item, Tablet):
            tablet_results.append(by_tablets.write_tablets([item]))
        else:
            tablet_results.append(by_tablets.write_rows([item]))
    assert sum(r.points_written for r in tablet_results) == rows_result.points_written
    assert sorted(f for r in tablet_results for f in _failures(r)) == _failures(rows_result)
    assert _stored(by_tablets) == _stored(by_rows)


def test_nan_series_type_follows_its_setting(tmp_path: Path, context: FormatContext) -> None:
    """A new series whose first value is NaN takes ``nan_string_infer_type``, through tablets as through rows."""
    settings = _settings(tmp_path, {"nan_string_infer_type": "TEXT"})
    engine = Engine.open(tmp_path, settings, create_plugin_manager(load_entry_points=False))
    try:
        payload = b'{"device":"root.sg.d1","timestamps":[1,2],"measurements":["a"],"values":[[NaN],[1.5]]}'
        items = list(JsonFormatter(settings).format_columns("t", payload, context))
        engine.write_tablets([item for item in items if isinstance(item, Tablet)])
        [schema] = engine.list_series()
        assert schema.data_type is TSDataType.TEXT
        values = engine.query(schema.path).values.tolist()
        assert values[0] == "NaN" and not (isinstance(values[0], float) and math.isnan(values[0]))
    finally:
        engine.close()
