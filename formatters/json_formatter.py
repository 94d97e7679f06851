"""The ``json`` payload formatter: Apache IoTDB's MQTT JSON shapes, keeping JSON's own value types.

Accepted documents (``datatypes`` is optional everywhere; other keys are ignored)::

    {"device": "root.sg.d1", "timestamp": 1, "measurements": ["s1", "s2"], "values": [1.5, true]}
    {"device": "root.sg.d1", "timestamps": [1, 2], "measurements": ["s1"], "values": [[1], [2]]}
    [ <either of the above>, ... ]

Timestamps are integers in the database's ``timestamp_precision``. Values keep their JSON type
(integer, number, boolean, string); ``null`` means "no value". The engine applies the type inference
settings afterwards. Any problem rejects the whole payload with a :class:`FormatError` that names
where it is (``[1].timestamps[2]: ...``).

Payloads are decoded with msgspec (C, no per-value dictionary work); what msgspec refuses (``NaN`` and
``Infinity`` literals, numbers beyond the double range, invalid JSON) is decoded again with ujson, so the
documents accepted and the error messages are ujson's as before. :meth:`JsonFormatter.format_columns` returns a
``timestamps`` document without ``datatypes`` as one :class:`Tablet` (numpy columns for columns of one JSON
number kind, null masks for ``null``) instead of one row per timestamp; anything else, and every document with
a problem, goes the row path, which names the problem.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from typing import Any, ClassVar

import msgspec
import numpy as np
import ujson

from formatters._text import describe, is_encodable, path_problem, utf8_problem
from iotdb_core.datatypes import (
    FLOAT_MAX,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    TSDataType,
    ValueTypeError,
    coerce,
)
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Formatted, PayloadFormatter, Row, Tablet, Value
from iotdb_core.paths import PathError, validate_device, validate_measurement

__all__ = ["JsonFormatter"]

_MISSING: Any = object()
_SCALARS = frozenset({bool, int, float, str, type(None)})
_ROOT_OFFSET = len("root.")

# Names already validated, so a steady stream from the same devices skips path parsing. Bounded so
# a client inventing names cannot grow them without limit; set.add is atomic under the GIL.
_CACHE_LIMIT = 65536
_known_devices: set[str] = set()
_known_measurements: set[str] = set()
#: Whole measurement lists already validated (valid, distinct names), each mapped to its tuple: the usual
#: document repeats one list, which then costs one lookup instead of a check per name.
_known_lists: dict[tuple[Any, ...], tuple[str, ...]] = {}
#: ``Row`` built without its generated ``__new__`` (a Python function): the hot path makes one per row.
_new_tuple = tuple.__new__

Types = tuple[TSDataType | None, ...] | None

# How a value of a declared type is checked quickly: its exact Python type and, for numbers, the
# range that fits; anything else goes through ``coerce``, which explains the mismatch. Keyed by
# type name because hashing an enum member runs Python code.
Quick = tuple[type[Any], float | None, float | None]
_QUICK: dict[str, Quick] = {
    "BOOLEAN": (bool, None, None),
    "INT32": (int, INT32_MIN, INT32_MAX),
    "INT64": (int, INT64_MIN, INT64_MAX),
    "FLOAT": (float, -FLOAT_MAX, FLOAT_MAX),
    "DOUBLE": (float, None, None),
    "TEXT": (str, None, None),
}
#: The usual spellings of type names, resolved without TSDataType.parse (which also accepts any case).
_TYPE_NAMES: dict[str, TSDataType] = {kind.value: kind for kind in TSDataType} | {"STRING": TSDataType.TEXT}


class JsonFormatter(PayloadFormatter):
    """Turns IoTDB-style JSON documents into rows; see the module documentation for the shapes."""

    name: ClassVar[str] = "json"

    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        document, _ = _decode(payload)
        if type(document) is dict:
            return _rows_of(document, "")
        if type(document) is list:
            rows: list[Row] = []
            for index, item in enumerate(document):
                if type(item) is not dict:
                    raise FormatError(f"[{index}]: expected an object, got {describe(item)}")
                rows.extend(_rows_of(item, f"[{index}]."))
            return rows
        raise FormatError(f"payload: expected a JSON object or an array of objects, got {describe(document)}")

    def format_columns(self, topic: str, payload: bytes, context: FormatContext) -> Sequence[Formatted]:
        document, finite = _decode(payload)
        if type(document) is dict:
            return _items_of(document, "", finite)
        if type(document) is list:
            items: list[Formatted] = []
            for index, item in enumerate(document):
                if type(item) is not dict:
                    raise FormatError(f"[{index}]: expected an object, got {describe(item)}")
                items.extend(_items_of(item, f"[{index}].", finite))
            return items
        raise FormatError(f"payload: expected a JSON object or an array of objects, got {describe(document)}")


_strict_decode = msgspec.json.Decoder().decode


def _decode(payload: bytes) -> tuple[Any, bool]:
    """The JSON document of ``payload``, and whether every float in it is finite (msgspec read it).

    msgspec accepts a subset of what ujson accepts and reads it alike; whatever it refuses is read by ujson,
    whose acceptance and errors the formatter keeps.
    """
    try:
        return _strict_decode(payload), True
    except Exception:  # any refusal: ujson decides, as it always did
        try:
            return ujson.loads(payload), False
        except Exception as exc:  # ujson raises JSONDecodeError, ValueError or OverflowError
            raise FormatError(_decode_problem(payload, exc)) from None


def _decode_problem(payload: bytes, exc: Exception) -> str:
    """Explain why ``payload`` is not JSON, locating the problem when the standard parser can.

    ujson's messages carry no position, so on this (rare) path the payload is parsed again with
    :mod:`json`, whose errors give line and column.
    """
    if not payload.strip():
        return "empty payload"
    problem = utf8_problem(payload)
    if problem is not None:
        return problem
    try:
        json.loads(payload)
    except json.JSONDecodeError as located:
        return f"line {located.lineno}, column {located.colno}: invalid JSON: {located.msg}"
    except Exception:  # deep nesting overflows the standard parser; ujson's reason is kept
        return f"invalid JSON: {exc}"
    return f"invalid JSON: {exc}"


def _rows_of(document: dict[str, Any], where: str) -> list[Row]:
    device = document.get("device", _MISSING)
    if type(device) is not str or device not in _known_devices:
        _check_device(device, where)
    measurements = _measurements(document.get("measurements", _MISSING), where)
    raw_types = document.get("datatypes", _MISSING)
    types: Types = None
    quick: tuple[Quick | None, ...] = ()
    if raw_types is not _MISSING:
        types, quick = _datatypes(raw_types, len(measurements), where)
    values = document.get("values", _MISSING)
    if values is _MISSING:
        raise FormatError(f"{where}values: missing")
    if "timestamps" in document:
        if "timestamp" in document:
            raise FormatError(f"{where}timestamp: give either \"timestamp\" or \"timestamps\", not both")
        return _batch_rows(
            document["timestamps"], device, measurements, values, types=types, quick=quick, where=where
        )
    timestamp = document.get("timestamp", _MISSING)
    if type(timestamp) is not int or not INT64_MIN <= timestamp <= INT64_MAX:
        _check_timestamp(timestamp, f"{where}timestamp")
    checked = _row_values(values, measurements, types, quick, where, "values")
    return [_new_tuple(Row, (device, timestamp, measurements, checked, types))]


def _items_of(document: dict[str, Any], where: str, finite: bool) -> list[Formatted]:
    """One document as a tablet when :func:`_tablet_of` can make one, else as :func:`_rows_of` rows."""
    if "timestamps" in document and "datatypes" not in document and "timestamp" not in document:
        tablet = _tablet_of(document, where, finite)
        if tablet is not None:
            return [tablet]
    return list(_rows_of(document, where))


def _tablet_of(document: dict[str, Any], where: str, finite: bool) -> Tablet | None:
    """A ``timestamps`` document without ``datatypes`` as one tablet, or None to leave it to the row path.

    The device and the measurements are checked first, as the row path checks them (same errors). After that,
    None whenever anything is unusual (a timestamp or value the row path would reject, a shape it would
    refuse): the row path then validates the document and names its problem, so the errors stay its own. A
    column whose values are all of one JSON kind (floats, integers within INT64, booleans; nulls allowed) becomes
    a numpy array with a null mask; any other column (text, mixed kinds, NaN) stays a list of its values, which
    the engine converts exactly as it converts rows. ``finite`` says no float is NaN or infinite.
    """
    device = document.get("device", _MISSING)
    if type(device) is not str or device not in _known_devices:
        _check_device(device, where)
    measurements = _measurements(document.get("measurements", _MISSING), where)
    timestamps = document["timestamps"]
    values = document.get("values")
    if type(timestamps) is not list or type(values) is not list:
        return None
    count, width = len(timestamps), len(measurements)
    if not count or len(values) != count or set(map(type, timestamps)) != {int}:
        return None
    if set(map(type, values)) != {list} or set(map(len, values)) != {width}:
        return None
    try:
        stamps = np.array(timestamps, dtype=np.int64)
    except OverflowError:
        return None
    block = _block_of(values, finite)
    if block is not None:
        return Tablet(device, stamps, measurements, block)
    columns: list[Any] = []
    nulls: list[np.ndarray | None] = []
    has_nulls = False
    for column in zip(*values, strict=True):
        kinds = set(map(type, column))
        if not kinds <= _SCALARS or (str in kinds and not all(is_encodable(v) for v in column if type(v) is str)):
            return None
        array, mask = _array_of(column, kinds, finite)
        columns.append(array if array is not None else list(column))
        nulls.append(mask)
        has_nulls = has_nulls or mask is not None
    return Tablet(device, stamps, measurements, columns, None, nulls if has_nulls else None)


def _block_of(values: list[list[Any]], finite: bool) -> list[np.ndarray] | None:
    """The usual document, every value a float (or every value an integer within INT64), as one array per
    measurement; None for anything else (the columns are then looked at one by one).

    One kind check over every value, then one conversion per column; the per-column checks of the general
    path are left out.
    """
    kinds = set(map(type, chain.from_iterable(values)))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is not float and kind is not int:
        return None
    dtype = np.float64 if kind is float else np.int64
    try:
        columns = [np.array(column, dtype=dtype) for column in zip(*values, strict=True)]
    except OverflowError:
        return None
    if not finite and kind is float and any(np.isnan(column).any() for column in columns):
        return None
    return columns


_NONE = type(None)
#: The numpy dtype a column of one JSON kind is stored in before the engine converts it.
_DTYPES: dict[type[Any], type[np.generic]] = {float: np.float64, int: np.int64, bool: np.bool_}
_FILL: dict[type[Any], Any] = {float: 0.0, int: 0, bool: False}


def _array_of(
    column: tuple[Any, ...], kinds: set[type[Any]], finite: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A column of one JSON kind as ``(array, null mask or None)``; ``(None, None)`` to keep it a list.

    A float column holding NaN stays a list: a new series takes its type from its first value, and NaN has
    its own setting (``nan_string_infer_type``), which an array's dtype would not show.
    """
    mask = None
    if _NONE in kinds:
        kinds = kinds - {_NONE}
        if len(kinds) != 1:
            return None, None
        mask = np.fromiter((v is None for v in column), dtype=np.bool_, count=len(column))
        kind = next(iter(kinds))
        fill = _FILL.get(kind)
        column = tuple(fill if v is None else v for v in column)
    elif len(kinds) == 1:
        kind = next(iter(kinds))
    else:
        return None, None
    dtype = _DTYPES.get(kind)
    if dtype is None:
        return None, None
    try:
        array = np.array(column, dtype=dtype)
    except OverflowError:  # an integer beyond INT64: the engine rejects it as it does for rows
        return None, None
    if not finite and kind is float and np.isnan(array).any():
        return None, None
    return array, mask


def _batch_rows(
    timestamps: Any, device: str, measurements: tuple[str, ...], values: Any, *,
    types: Types, quick: tuple[Quick | None, ...], where: str,
) -> list[Row]:
    if type(timestamps) is not list:
        raise FormatError(f"{where}timestamps: expected an array of integers, got {describe(timestamps)}")
    if not timestamps:
        raise FormatError(f"{where}timestamps: empty")
    if type(values) is not list:
        raise FormatError(f"{where}values: expected an array of rows (one per timestamp), got {describe(values)}")
    if len(values) != len(timestamps):
        raise FormatError(f"{where}values: {len(timestamps)} timestamps but {len(values)} rows of values")
    if types is None and _plainly_valid(timestamps, values, len(measurements)):
        pairs = zip(timestamps, values, strict=True)
        return [_new_tuple(Row, (device, timestamp, measurements, tuple(row), None)) for timestamp, row in pairs]
    rows = []
    for index, (timestamp, row) in enumerate(zip(timestamps, values, strict=True)):
        if type(timestamp) is not int or not INT64_MIN <= timestamp <= INT64_MAX:
            _check_timestamp(timestamp, f"{where}timestamps[{index}]")
        if type(row) is not list:
            raise FormatError(
                f"{where}values[{index}]: expected an array of {len(measurements)} values, got {describe(row)}"
            )
        checked = _row_values(row, measurements, types, quick, where, f"values[{index}]")
        rows.append(Row(device, timestamp, measurements, checked, types))
    return rows


def _plainly_valid(timestamps: list[Any], values: list[Any], width: int) -> bool:
    """True when every timestamp is an int64 integer and every row a list of ``width`` plain values.

    The checks of the row-by-row path, each over the whole document at once; when one fails, that path
    runs and names the first problem.
    """
    if set(map(type, timestamps)) != {int} or min(timestamps) < INT64_MIN or max(timestamps) > INT64_MAX:
        return False
    if set(map(type, values)) != {list} or set(map(len, values)) != {width}:
        return False
    kinds = set(map(type, chain.from_iterable(values)))
    if not kinds <= _SCALARS:
        return False
    return str not in kinds or all(is_encodable(v) for v in chain.from_iterable(values) if type(v) is str)


def _check_device(device: Any, where: str) -> None:
    if device is _MISSING:
        raise FormatError(f"{where}device: missing")
    if type(device) is not str:
        raise FormatError(f"{where}device: expected a string, got {describe(device)}")
    try:
        validate_device(device)
    except PathError as exc:
        raise FormatError(f"{where}device {device!r}: {path_problem(exc, device)}") from None
    if not is_encodable(device):
        raise FormatError(f"{where}device {device!r}: contains a lone surrogate, which is not Unicode text")
    if len(_known_devices) < _CACHE_LIMIT:
        _known_devices.add(device)


def _measurements(raw: Any, where: str) -> tuple[str, ...]:
    if type(raw) is list:
        try:
            known = _known_lists.get(tuple(raw))
        except TypeError:  # an unhashable element (an array or object): the checks below name it
            known = None
        if known is not None:
            return known
    if raw is _MISSING:
        raise FormatError(f"{where}measurements: missing")
    if type(raw) is not list:
        raise FormatError(f"{where}measurements: expected an array of strings, got {describe(raw)}")
    if not raw:
        raise FormatError(f"{where}measurements: empty")
    for name in raw:
        if type(name) is not str or name not in _known_measurements:
            _check_measurements(raw, where)
            break
    if len(raw) > 1 and len(set(raw)) != len(raw):
        seen: set[str] = set()
        for index, name in enumerate(raw):
            if name in seen:
                raise FormatError(f"{where}measurements[{index}]: duplicate measurement {name!r}")
            seen.add(name)
    names = tuple(raw)
    if len(_known_lists) < _CACHE_LIMIT:
        _known_lists[names] = names
    return names


def _check_measurements(names: list[Any], where: str) -> None:
    for index, name in enumerate(names):
        if type(name) is not str:
            raise FormatError(f"{where}measurements[{index}]: expected a string, got {describe(name)}")
        if name in _known_measurements:
            continue
        try:
            validate_measurement(name)
        except PathError as exc:
            problem = path_problem(exc, "root." + name, _ROOT_OFFSET)
            raise FormatError(f"{where}measurements[{index}]: invalid measurement {name!r}: {problem}") from None
        if not is_encodable(name):
            raise FormatError(f"{where}measurements[{index}]: {name!r} contains a lone surrogate")
        if len(_known_measurements) < _CACHE_LIMIT:
            _known_measurements.add(name)


def _datatypes(raw: Any, count: int, where: str) -> tuple[tuple[TSDataType | None, ...], tuple[Quick | None, ...]]:
    """The declared types (None: infer) and, for each, how its values are checked quickly."""
    if type(raw) is not list:
        raise FormatError(f"{where}datatypes: expected an array of type names, got {describe(raw)}")
    if len(raw) != count:
        raise FormatError(f"{where}datatypes: {count} measurements but {len(raw)} datatypes")
    types: list[TSDataType | None] = []
    quick: list[Quick | None] = []
    for index, name in enumerate(raw):
        if name is None:
            types.append(None)
            quick.append(None)
            continue
        if type(name) is not str:
            raise FormatError(f"{where}datatypes[{index}]: expected a type name, got {describe(name)}")
        declared = _TYPE_NAMES.get(name)
        if declared is None:
            try:
                declared = TSDataType.parse(name)
            except ValueError as exc:
                raise FormatError(f"{where}datatypes[{index}]: {exc}") from None
        types.append(declared)
        quick.append(_QUICK[declared.value])
    return tuple(types), tuple(quick)


def _check_timestamp(timestamp: Any, where: str) -> None:
    if timestamp is _MISSING:
        raise FormatError(f"{where}: missing (give \"timestamp\", or \"timestamps\" with one row of values each)")
    if type(timestamp) is not int:
        subject = "must" if where.endswith("timestamp") else "timestamp must"
        raise FormatError(f"{where}: {subject} be an integer, got {describe(timestamp)}")
    raise FormatError(f"{where}: timestamp {timestamp} is out of the INT64 range [{INT64_MIN}, {INT64_MAX}]")


def _row_values(
    values: Any, measurements: tuple[str, ...], types: Types, quick: tuple[Quick | None, ...], where: str,
    name: str,
) -> tuple[Value | None, ...]:
    """Check one row of values against its measurements (and declared types) and return it as a tuple.

    ``where + name`` locates the row in an error (joined only then: this runs once per row).
    """
    if type(values) is not list:
        raise FormatError(f"{where}{name}: expected an array of {len(measurements)} values, got {describe(values)}")
    if len(values) != len(measurements):
        raise FormatError(f"{where}{name}: {len(measurements)} measurements but {len(values)} values")
    for value in values:
        kind = type(value)
        if kind not in _SCALARS or (kind is str and not is_encodable(value)):
            _reject_value(values, where + name)
    if types is not None:
        _check_declared(values, measurements, types, quick, where + name)
    return tuple(values)


def _reject_value(values: list[Any], where: str) -> None:
    for index, value in enumerate(values):
        if type(value) is list or type(value) is dict:
            hint = " (several rows need \"timestamps\")" if type(value) is list else ""
            raise FormatError(f"{where}[{index}]: objects and arrays are not values{hint}")
        if type(value) is str and not is_encodable(value):
            raise FormatError(f"{where}[{index}]: text contains a lone surrogate, which is not Unicode text")
        if type(value) not in _SCALARS:
            raise FormatError(f"{where}[{index}]: unsupported value {describe(value)}")


def _check_declared(
    values: Sequence[Any], measurements: tuple[str, ...], types: tuple[TSDataType | None, ...],
    quick: tuple[Quick | None, ...], where: str,
) -> None:
    for index, value in enumerate(values):
        check = quick[index]
        if value is None or check is None:
            continue
        kind, low, high = check
        if type(value) is kind and (low is None or low <= value <= high):
            continue
        declared = types[index]
        assert declared is not None  # quick[index] is None exactly when types[index] is
        try:
            coerce(value, declared)
        except ValueTypeError as exc:
            raise FormatError(f"{where}[{index}] (measurement {measurements[index]!r}): {exc}") from None
