r"""A single-pass scanner for one line of InfluxDB line protocol, and the matching escaping functions.

Syntax::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]

Escaping, as InfluxDB documents it: a backslash escapes a comma or a space in a measurement name;
a comma, an equals sign or a space in tag keys, tag values and field keys; a double quote inside a
double-quoted string field value. Everywhere, two backslashes stand for one; a backslash before any
other character is an ordinary backslash.

The scanner first cuts the line at every character that can delimit or escape anything (space,
comma, equals sign, double quote, backslash) in one C-level ``re.split``, then walks those pieces
once, left to right, never backtracking; runs of ordinary characters are never examined one by one
in Python. Every error names the 1-based column where the scanner stopped and what it expected there.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from iotdb_core.datatypes import FLOAT_MAX, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.formatter import Value

__all__ = [
    "LineSyntaxError",
    "ParsedLine",
    "escape_key",
    "escape_measurement",
    "escape_string",
    "parse_line",
]

_split = re.compile(r'([ ,="\\])').split

_MEASUREMENT_STOPS = frozenset(", ")
_KEY_STOPS = frozenset(",= ")
_VALUE_ENDS = frozenset(", ")
_MEASUREMENT_ESCAPES = frozenset(", \\")
_KEY_ESCAPES = frozenset(",= \\")
_STRING_ESCAPES = frozenset('"\\')
_FLOAT_CHARS = "0123456789.eE+-"
_FLOAT_START = frozenset("-.0123456789")

_BOOLEANS: dict[str, bool] = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}
_VALUE_FORMS = (
    "expected a number (1.5, -2e3, 7i, 7u, 7i32, 1.5f), a boolean (t, true, f, false) "
    "or a double-quoted string"
)

TEXT = TSDataType.TEXT
BOOLEAN = TSDataType.BOOLEAN
INT32 = TSDataType.INT32
INT64 = TSDataType.INT64
FLOAT = TSDataType.FLOAT
DOUBLE = TSDataType.DOUBLE


class LineSyntaxError(ValueError):
    """A line that is not line protocol; ``column`` is 1-based, ``message`` says what was expected."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.message = message


class ParsedLine(NamedTuple):
    """One point: names unescaped, field values converted, ``timestamp`` as written (None if absent)."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    field_keys: tuple[str, ...]
    field_values: tuple[Value, ...]
    field_types: tuple[TSDataType, ...]
    timestamp: int | None
    timestamp_column: int


class _Bad(Exception):
    """A syntax error at piece ``index``; ``parse_line`` turns the index into a column only when one occurs."""

    def __init__(self, index: int, message: str, opened: int | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.opened = opened


def _column(items: list[str], offset: int, index: int) -> int:
    """1-based column of the first character of piece ``index`` in the original line."""
    return offset + sum(map(len, items[:index])) + 1


def parse_line(line: str) -> ParsedLine | None:
    """Parse one line (without its line break); None for a blank or ``#`` comment line.

    The line is cut at every delimiter character with one ``re.split``: even indices of the result
    hold runs of ordinary text, odd ones a single delimiter each. The scanner walks these pieces once.
    """
    body = line.lstrip(" \t")
    if not body or body[0] == "#":
        return None
    offset = len(line) - len(body)
    nul = body.find("\x00")
    if nul >= 0:
        raise LineSyntaxError(offset + nul + 1, "U+0000 is not allowed in line protocol")
    items = _split(body)
    try:
        return _scan(items, body, offset)
    except _Bad as bad:
        message = bad.message
        if bad.opened is not None:
            message += f" (opened at column {_column(items, offset, bad.opened)})"
        raise LineSyntaxError(_column(items, offset, bad.index), message) from None


def _scan(items: list[str], body: str, offset: int) -> ParsedLine:
    count = len(items)
    measurement, index = _name(items, 0, _MEASUREMENT_STOPS, _MEASUREMENT_ESCAPES)
    if not measurement:
        raise _Bad(0, "expected a measurement name")
    tags: list[tuple[str, str]] = []
    while index < count and items[index] == ",":
        index = _tag(items, index + 1, tags)
    if index >= count:
        what = "the tag set" if tags else f"measurement {measurement!r}"
        raise _Bad(index, f"expected a space and a field set after {what}")
    index = _skip_spaces(items, index)
    if index >= count:
        raise _Bad(index, "expected a field set (field_key=value)")

    keys: list[str] = []
    values: list[Value] = []
    types: list[TSDataType] = []
    while True:
        index = _field(items, index, keys, values, types)
        if index < count and items[index] == ",":
            index += 1
            continue
        break

    timestamp: int | None = None
    timestamp_column = 0
    if index < count:  # a space: the value scanners stop at nothing else
        index = _skip_spaces(items, index)
        if index < count:
            timestamp = _timestamp(items, index)
            token = items[index]
            index = _skip_spaces(items, index + 1) if index + 1 < count else count
            if index < count:
                raise _Bad(index, "expected the end of the line after the timestamp")
            # Only blanks follow the timestamp, so its column is known without counting pieces.
            timestamp_column = offset + len(body.rstrip(" ")) - len(token) + 1
    return ParsedLine(
        measurement, tuple(tags), tuple(keys), tuple(values), tuple(types), timestamp, timestamp_column
    )


def _name(items: list[str], index: int, stops: frozenset[str], escapes: frozenset[str]) -> tuple[str, int]:
    """Read an unquoted name starting at text piece ``index``; return it unescaped and its stop's index.

    The stop is the first unescaped delimiter in ``stops`` (or ``len(items)`` at the end of the line).
    A backslash escapes a delimiter in ``escapes`` that follows it directly; any other delimiter,
    and a backslash before anything else, is part of the name.
    """
    text = items[index]
    index += 1
    count = len(items)
    if index == count or items[index] in stops:
        return text, index
    parts = [text]
    while index < count:
        delimiter = items[index]
        if delimiter in stops:
            break
        if delimiter == "\\" and index + 2 < count and not items[index + 1] and items[index + 2] in escapes:
            parts.append(items[index + 2])
            index += 3
        else:
            parts.append(delimiter)
            index += 1
        parts.append(items[index])
        index += 1
    return "".join(parts), index


def _key(items: list[str], index: int, what: str, missing: str) -> tuple[str, int]:
    """Read a tag or field key starting at text piece ``index``; return it and the index of its ``=``."""
    count = len(items)
    key = items[index]
    equals = index + 1
    if equals >= count or items[equals] != "=":  # not the plain "key=" form: escapes, or an error
        key, equals = _name(items, index, _KEY_STOPS, _KEY_ESCAPES)
    if not key:
        raise _Bad(index, missing)
    if equals >= count or items[equals] != "=":
        raise _Bad(equals, f"expected '=' after {what} {key!r}")
    return key, equals


def _tag(items: list[str], index: int, tags: list[tuple[str, str]]) -> int:
    """Read ``key=value`` from text piece ``index`` (just after a comma) into ``tags``; return the stop's index."""
    count = len(items)
    key, equals = _key(items, index, "tag key", "expected a tag key after ','")
    value = items[equals + 1]
    stop = equals + 2
    if stop < count and items[stop] not in _KEY_STOPS:
        value, stop = _name(items, equals + 1, _KEY_STOPS, _KEY_ESCAPES)
    if not value:
        raise _Bad(equals + 1, f"expected a value for tag {key!r} (tag values cannot be empty)")
    if stop < count and items[stop] == "=":
        raise _Bad(stop, f"unescaped '=' in the value of tag {key!r} (write \\=)")
    for existing, _ in tags:
        if existing == key:
            raise _Bad(index, f"duplicate tag key {key!r}")
    tags.append((key, value))
    return stop


def _field(items: list[str], index: int, keys: list[str], values: list[Value], types: list[TSDataType]) -> int:
    """Read ``key=value`` from text piece ``index`` into the field lists; return the index after the value."""
    count = len(items)
    key, equals = _key(items, index, "field key", "expected a field key")
    if key in keys:
        raise _Bad(index, f"duplicate field key {key!r}")
    start = equals + 1
    token = items[start]
    after = start + 1
    if not token and after < count and items[after] == '"':
        text, after = _string(items, after, key)
        keys.append(key)
        values.append(text)
        types.append(TEXT)
        return after
    if after < count and items[after] not in _VALUE_ENDS:
        while after < count and items[after] not in _VALUE_ENDS:
            after += 1
        token = "".join(items[start:after])
        raise _Bad(start, f"invalid value {token!r} for field {key!r}: {_VALUE_FORMS}")
    if not token:
        raise _Bad(start, f"expected a value for field {key!r}")
    value, kind = _field_value(token, key, items, start)
    keys.append(key)
    values.append(value)
    types.append(kind)
    return after


def _string(items: list[str], quote: int, key: str) -> tuple[str, int]:
    """Read a double-quoted string whose opening quote is piece ``quote``; return its text and the next stop."""
    count = len(items)
    parts = []
    index = quote + 1
    while True:
        parts.append(items[index])
        index += 1
        if index >= count:
            raise _Bad(count, f"unterminated string value of field {key!r}", opened=quote)
        delimiter = items[index]
        if delimiter == '"':
            break
        if delimiter == "\\" and index + 2 < count and not items[index + 1] and items[index + 2] in _STRING_ESCAPES:
            parts.append(items[index + 2])
            index += 3
        else:
            parts.append(delimiter)
            index += 1
    index += 1
    if items[index]:
        raise _Bad(index, f"expected ',' or ' ' after the string value of field {key!r}")
    index += 1
    if index < count and items[index] not in _VALUE_ENDS:
        raise _Bad(index, f"expected ',' or ' ' after the string value of field {key!r}")
    return "".join(parts), index


def _field_value(token: str, key: str, items: list[str], index: int) -> tuple[Value, TSDataType]:
    """Convert an unquoted field value by its form: boolean, ``i``/``u``/``i32``/``f`` suffixed or plain number."""
    boolean = _BOOLEANS.get(token)
    if boolean is not None:
        return boolean, BOOLEAN
    last = token[-1]
    if last == "i":
        return _integer(token, token[:-1], key, items, index, kind=INT64, low=INT64_MIN, high=INT64_MAX), INT64
    if last == "u":
        if token[0] == "-":
            raise _Bad(index, f"unsigned integer {token} for field {key!r} cannot be negative")
        return _integer(token, token[:-1], key, items, index, kind=INT64, low=0, high=INT64_MAX), INT64
    if last == "2" and token.endswith("i32"):
        return _integer(token, token[:-3], key, items, index, kind=INT32, low=INT32_MIN, high=INT32_MAX), INT32
    if last == "f":
        number = _float(token, token[:-1], key, items, index)
        if abs(number) > FLOAT_MAX:
            raise _Bad(index, f"{token} for field {key!r} is out of the FLOAT range")
        return number, FLOAT
    return _float(token, token, key, items, index), DOUBLE


def _integer(
    token: str, body: str, key: str, items: list[str], index: int, *, kind: TSDataType, low: int, high: int
) -> int:
    if not _is_integer(body):
        raise _Bad(index, f"invalid value {token!r} for field {key!r}: {_VALUE_FORMS}")
    number = int(body)
    if not low <= number <= high:
        raise _Bad(index, f"{token} for field {key!r} is out of the {kind.value} range [{low}, {high}]")
    return number


def _float(token: str, body: str, key: str, items: list[str], index: int) -> float:
    if body and body[0] in _FLOAT_START and not body.strip(_FLOAT_CHARS):
        try:
            number = float(body)
        except ValueError:
            pass
        else:
            if number - number == 0.0:  # finite: 1e999 overflows to inf, which line protocol cannot carry
                return number
            raise _Bad(index, f"{token} for field {key!r} is out of the DOUBLE range")
    raise _Bad(index, f"invalid value {token!r} for field {key!r}: {_VALUE_FORMS}")


def _is_integer(text: str) -> bool:
    """True for an optional ``-`` followed by ASCII digits.

    ``int()`` alone would also accept ``+1``, ``1_0``, surrounding blanks and non-ASCII digits.
    """
    if text.isdigit():
        return text.isascii()
    return text[:1] == "-" and text[1:].isdigit() and text.isascii()


def _timestamp(items: list[str], index: int) -> int:
    token = items[index]
    if index + 1 < len(items) and items[index + 1] != " ":
        end = index + 1
        while end < len(items) and items[end] != " ":
            end += 1
        token = "".join(items[index:end])
    if not _is_integer(token):
        raise _Bad(index, f"expected an integer timestamp, got {token!r}")
    timestamp = int(token)
    if not INT64_MIN <= timestamp <= INT64_MAX:
        raise _Bad(index, f"timestamp {token} is out of the INT64 range")
    return timestamp


def _skip_spaces(items: list[str], index: int) -> int:
    """From a space delimiter at ``index``, skip further spaces; return the index of the next non-empty piece.

    Returns ``len(items)`` when only spaces follow.
    """
    count = len(items)
    index += 1
    while not items[index] and index + 1 < count and items[index + 1] == " ":
        index += 2
    if not items[index] and index + 1 == count:
        return count
    return index


def escape_measurement(name: str) -> str:
    """Write ``name`` as a line-protocol measurement (backslash, comma and space escaped)."""
    return name.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def escape_key(name: str) -> str:
    """Write ``name`` as a tag key, tag value or field key (backslash, comma, equals sign and space escaped)."""
    return name.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def escape_string(text: str) -> str:
    """Write ``text`` as a double-quoted string field value (backslash and double quote escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
