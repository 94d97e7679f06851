"""Validating REST request bodies: JSON syntax, required fields, shapes and value types.

Every problem is a :class:`RequestError` (answered with HTTP 400) whose message names the field and, for
lists, the index: ``values[1][4]: expected an integer for INT32, got "abc"``. Malformed JSON has code 700
(SQL_PARSE_ERROR, the closest IoTDB code for text that does not parse); a missing field, a wrong type or
mismatched lengths have code 701 (SEMANTIC_ERROR).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import ujson

from iotdb_core.datatypes import FLOAT_MAX, TSDataType
from iotdb_core.query.errors import SEMANTIC_ERROR, SQL_PARSE_ERROR

__all__ = [
    "V1_EXPRESSION",
    "V1_TABLET",
    "V2_EXPRESSION",
    "V2_TABLET",
    "ExpressionFields",
    "ExpressionRequest",
    "RecordsRequest",
    "RequestError",
    "TabletFields",
    "TabletRequest",
    "expression_request",
    "last_request",
    "node_request",
    "parse_json",
    "parse_json_value",
    "query_request",
    "records_request",
    "sql_request",
    "tablet_request",
]

#: Values above FLOAT_MAX but below this round to FLOAT_MAX in float32 (``3.4028235e+38`` is FLOAT's maximum).
FLOAT_ROUNDING_LIMIT = 2.0**128 - 2.0**103
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_EXPECTED = {
    TSDataType.BOOLEAN: "a boolean",
    TSDataType.INT32: "an integer",
    TSDataType.INT64: "an integer",
    TSDataType.FLOAT: "a number",
    TSDataType.DOUBLE: "a number",
    TSDataType.TEXT: "a string",
}


class RequestError(Exception):
    """A request body that cannot be used; ``code`` is the IoTDB status code of the 400 body."""

    def __init__(self, message: str, code: int = SEMANTIC_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TabletRequest:
    """A validated ``insertTablet`` body."""

    device: str
    timestamps: list[int]
    measurements: list[str]
    data_types: list[TSDataType]
    values: list[list[Any]]
    is_aligned: bool

    @property
    def points(self) -> int:
        return sum(1 for column in self.values for value in column if value is not None)


@dataclass(frozen=True)
class RecordsRequest:
    """A validated ``insertRecords`` body."""

    devices: list[str]
    timestamps: list[int]
    measurements_list: list[list[str]]
    data_types_list: list[list[TSDataType]]
    values_list: list[list[Any]]
    is_aligned: bool


def _show(value: Any) -> str:
    text = ujson.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json_value(body: bytes, expected: str = "a JSON object") -> Any:
    """The request body as any JSON value (``expected`` names what the endpoint takes, for the messages)."""
    if not body.strip():
        raise RequestError(f"the request body is empty; send {expected}", SQL_PARSE_ERROR)
    try:
        data = ujson.loads(body)
    except (ValueError, OverflowError) as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}", SQL_PARSE_ERROR) from None
    if _SURROGATE_ESCAPE.search(body):
        _check_unicode(data, "the request body")
    return data


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    data = parse_json_value(body)
    if not isinstance(data, dict):
        raise RequestError(f"the request body should be a JSON object, got {type(data).__name__}")
    return data


def _check_unicode(value: Any, label: str) -> None:
    """Refuse text holding a lone UTF-16 surrogate (``"\\ud800"``), which can be neither stored nor printed."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(f"{label} holds text that is not valid Unicode (a lone surrogate escape)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, label)
            _check_unicode(item, f'"{key}"')
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{label}[{index}]")


def _field(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is None:
        raise RequestError(f'missing field "{name}" ({name} should not be null)')
    return value


def _string(data: dict[str, Any], name: str) -> str:
    value = _field(data, name)
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f'"{name}" should be a non-empty string, got {_show(value)}')
    return value


def _list(value: Any, label: str) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(f"{label} should be a list, got {_show(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamps(value: Any, label: str) -> list[int]:
    items = _list(value, label)
    for index, item in enumerate(items):
        if not _is_int(item):
            raise RequestError(f"{label}[{index}] should be an integer timestamp, got {_show(item)}")
    return items


def _strings(value: Any, label: str) -> list[str]:
    items = _list(value, label)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise RequestError(f"{label}[{index}] should be a non-empty string, got {_show(item)}")
    return items


def _types(value: Any, label: str) -> list[TSDataType]:
    names = _strings(value, label)
    out = []
    for index, name in enumerate(names):
        try:
            out.append(TSDataType.parse(name))
        except ValueError as exc:
            raise RequestError(f"{label}[{index}]: {exc}") from None
    return out


def _aligned(data: dict[str, Any], name: str = "is_aligned") -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f'"{name}" should be true or false, got {_show(value)}')
    return value


def _check_value(value: Any, data_type: TSDataType, label: str) -> Any:
    """``value`` converted for ``data_type`` (None stays None); RequestError when it does not fit the type."""
    if value is None:
        return None
    if data_type is TSDataType.TEXT:
        ok = isinstance(value, str)
    elif data_type is TSDataType.BOOLEAN:
        ok = isinstance(value, bool)
    elif data_type in (TSDataType.INT32, TSDataType.INT64):
        ok = _is_int(value)
    else:
        if isinstance(value, str) and value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        ok = (_is_int(value) or isinstance(value, float)) and not isinstance(value, bool)
    if not ok:
        raise RequestError(f"{label}: expected {_EXPECTED[data_type]} for {data_type.value}, got {_show(value)}")
    return value


def nearest_float(value: Any) -> Any:
    """A FLOAT value as float32 reads it: the shortest form of the maximum (``3.4028235e+38``) is just above
    FLOAT_MAX as a double, and rounds to it."""
    if isinstance(value, float) and FLOAT_MAX < abs(value) < FLOAT_ROUNDING_LIMIT:
        return math.copysign(FLOAT_MAX, value)
    return value


def _check_column(values: list[Any], data_type: TSDataType, label: str) -> list[Any]:
    """A whole column checked, fast paths first (a column of one Python type needs no per-value call)."""
    if data_type is TSDataType.FLOAT:
        values = [_check_value(value, data_type, f"{label}[{index}]") for index, value in enumerate(values)]
        return [nearest_float(value) for value in values]
    if data_type in (TSDataType.INT32, TSDataType.INT64):
        if all(type(v) is int or v is None for v in values):
            return values
    elif data_type is TSDataType.DOUBLE:
        if all(type(v) is float or type(v) is int or v is None for v in values):
            return values
    elif data_type is TSDataType.TEXT:
        if all(type(v) is str or v is None for v in values):
            return values
    elif all(type(v) is bool or v is None for v in values):
        return values
    return [_check_value(value, data_type, f"{label}[{index}]") for index, value in enumerate(values)]


def sql_request(data: dict[str, Any]) -> str:
    """The ``sql`` of a ``nonQuery`` body."""
    return _string(data, "sql")


def query_request(data: dict[str, Any], default_limit: int, limit_name: str = "row_limit") -> tuple[str, int]:
    """``(sql, row_limit)`` of a ``query`` body; the limit (``limit_name``) defaults to ``default_limit``."""
    sql = _string(data, "sql")
    limit = data.get(limit_name)
    if limit is None:
        limit = data.get("rowLimit")  # v1's spelling, accepted by v2 too
    if limit is None:
        return sql, default_limit
    if not _is_int(limit) or limit <= 0:
        raise RequestError(f'"{limit_name}" should be a positive integer, got {_show(limit)}')
    return sql, limit


@dataclass(frozen=True)
class TabletFields:
    """The names an API version gives the ``insertTablet`` fields that differ between versions."""

    device: str
    data_types: str
    is_aligned: str


#: REST v2 (``iotdb_rest_v2.yaml``: snake_case) and v1 (``iotdb_rest_v1.yaml``: camelCase).
V2_TABLET = TabletFields("device", "data_types", "is_aligned")
V1_TABLET = TabletFields("deviceId", "dataTypes", "isAligned")


def tablet_request(data: dict[str, Any], fields: TabletFields = V2_TABLET) -> TabletRequest:
    """Validate an ``insertTablet`` body: every column as long as ``timestamps``, values of their type."""
    types_label = f'"{fields.data_types}"'
    device = _string(data, fields.device)
    timestamps = _timestamps(_field(data, "timestamps"), '"timestamps"')
    measurements = _strings(_field(data, "measurements"), '"measurements"')
    data_types = _types(_field(data, fields.data_types), types_label)
    values = _list(_field(data, "values"), '"values"')
    aligned = _aligned(data, fields.is_aligned)
    if not measurements:
        raise RequestError('"measurements" should not be empty')
    if len(set(measurements)) != len(measurements):
        twice = next(m for m in measurements if measurements.count(m) > 1)
        raise RequestError(f'"measurements" names {twice!r} twice')
    if len(data_types) != len(measurements):
        raise RequestError(
            f'{types_label} has {len(data_types)} entries but "measurements" has {len(measurements)}'
        )
    if len(values) != len(measurements):
        raise RequestError(
            f'"values" has {len(values)} columns but "measurements" has {len(measurements)} '
            "(values are column-major: one list per measurement)"
        )
    columns = []
    for index, (raw, data_type) in enumerate(zip(values, data_types, strict=True)):
        column = _list(raw, f'"values"[{index}]')
        if len(column) != len(timestamps):
            raise RequestError(
                f'"values"[{index}] ({measurements[index]}) has {len(column)} values but "timestamps" has '
                f"{len(timestamps)}"
            )
        columns.append(_check_column(column, data_type, f'"values"[{index}]'))
    return TabletRequest(device, timestamps, measurements, data_types, columns, aligned)


def records_request(data: dict[str, Any]) -> RecordsRequest:
    """Validate an ``insertRecords`` body: one device, timestamp, measurement list, type list and value list per row."""
    devices = _strings(_field(data, "devices"), '"devices"')
    timestamps = _timestamps(_field(data, "timestamps"), '"timestamps"')
    measurements_list = _list(_field(data, "measurements_list"), '"measurements_list"')
    types_list = _list(_field(data, "data_types_list"), '"data_types_list"')
    values_list = _list(_field(data, "values_list"), '"values_list"')
    aligned = _aligned(data)
    count = len(devices)
    for name, items in (
        ("timestamps", timestamps),
        ("measurements_list", measurements_list),
        ("data_types_list", types_list),
        ("values_list", values_list),
    ):
        if len(items) != count:
            raise RequestError(f'"{name}" has {len(items)} entries but "devices" has {count}')
    out_measurements: list[list[str]] = []
    out_types: list[list[TSDataType]] = []
    out_values: list[list[Any]] = []
    for row in range(count):
        measurements = _strings(measurements_list[row], f'"measurements_list"[{row}]')
        data_types = _types(types_list[row], f'"data_types_list"[{row}]')
        values = _list(values_list[row], f'"values_list"[{row}]')
        if not measurements:
            raise RequestError(f'"measurements_list"[{row}] should not be empty')
        if len(data_types) != len(measurements) or len(values) != len(measurements):
            raise RequestError(
                f'row {row}: "measurements_list"[{row}] has {len(measurements)} entries, '
                f'"data_types_list"[{row}] {len(data_types)} and "values_list"[{row}] {len(values)}'
            )
        out_measurements.append(measurements)
        out_types.append(data_types)
        checked = [
            _check_value(value, data_type, f'"values_list"[{row}][{index}]')
            for index, (value, data_type) in enumerate(zip(values, data_types, strict=True))
        ]
        out_values.append(
            [nearest_float(v) if t is TSDataType.FLOAT else v for v, t in zip(checked, data_types, strict=True)]
        )
    return RecordsRequest(devices, timestamps, out_measurements, out_types, out_values, aligned)


@dataclass(frozen=True)
class ExpressionFields:
    """The names an API version gives the Grafana expression request's fields."""

    prefix_path: str
    start_time: str
    end_time: str


#: ``/grafana/v1`` (``iotdb_rest_v1.yaml``, what the Grafana plugin sends) and ``/grafana/v2``
#: (``iotdb_rest_v2.yaml``).
V1_EXPRESSION = ExpressionFields("prefixPath", "startTime", "endTime")
V2_EXPRESSION = ExpressionFields("prefix_path", "start_time", "end_time")


@dataclass(frozen=True)
class ExpressionRequest:
    """A validated Grafana ``query/expression`` body; times in milliseconds, as Grafana sends them."""

    expression: list[str]
    prefix_path: list[str]
    start_time: float
    end_time: float
    condition: str
    control: str


def _optional_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestError(f'"{name}" should be a string, got {_show(value)}')
    return value.strip()


def _milliseconds(data: dict[str, Any], name: str) -> float:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f'"{name}" should be a number of milliseconds since the epoch, got {_show(value)}')
    return value


def expression_request(data: dict[str, Any], fields: ExpressionFields = V1_EXPRESSION) -> ExpressionRequest:
    """Validate a Grafana expression body: ``expression`` and the prefix paths non-empty lists of text, both
    times numbers (``condition`` and ``control`` optional text)."""
    expression = _strings(_field(data, "expression"), '"expression"')
    prefix_path = _strings(_field(data, fields.prefix_path), f'"{fields.prefix_path}"')
    if not expression:
        raise RequestError('"expression" should not be empty: name at least one series or aggregate to select')
    if not prefix_path:
        raise RequestError(f'"{fields.prefix_path}" should not be empty: name at least one path to select from')
    start = _milliseconds(data, fields.start_time)
    end = _milliseconds(data, fields.end_time)
    return ExpressionRequest(
        expression, prefix_path, start, end, _optional_text(data, "condition"), _optional_text(data, "control")
    )


def node_request(value: Any) -> list[str]:
    """Validate a Grafana ``node`` body: a JSON array of path nodes (``["root", "sg"]``)."""
    if not isinstance(value, list):
        raise RequestError(
            f'the request body should be a JSON array of path nodes like ["root", "sg"], got {_show(value)}'
        )
    return _strings(value, "the request body")


def last_request(data: dict[str, Any]) -> list[str]:
    """The ``prefix_paths`` of a ``fastLastQuery`` body: the nodes of one path (``["root", "sg", "d1"]``)."""
    nodes = _strings(_field(data, "prefix_paths"), '"prefix_paths"')
    if not nodes:
        raise RequestError('"prefix_paths" should not be empty: give the nodes of a path, like ["root", "sg"]')
    return nodes
