"""Helpers shared by the built-in formatters: describing values and turning low-level errors into messages."""

from __future__ import annotations

import re

from iotdb_core.paths import PathError

_COLUMN = re.compile(r"column (\d+)")
_SHOWN_TEXT = 40


def describe(value: object) -> str:
    """Render a decoded JSON value the way it was written, shortened, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_TEXT else value[: _SHOWN_TEXT - 3] + "..."
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {type(value).__name__}"


def path_problem(error: PathError, path: str, offset: int = 0) -> str:
    """The text of ``error`` without its leading ``path '...':`` and with columns shifted by ``-offset``.

    :func:`iotdb_core.paths.validate_measurement` checks ``root.<measurement>``, so its columns are
    five characters to the right of the measurement's own; ``offset`` moves them back.
    """
    text = str(error).removeprefix(f"path {path!r}: ")
    if offset:
        text = _COLUMN.sub(lambda match: f"column {max(1, int(match.group(1)) - offset)}", text)
    return text


def is_encodable(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (JSON ``"\\ud800"``), which no UTF-8 file can store."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_problem(payload: bytes) -> str | None:
    """Describe where ``payload`` stops being UTF-8 (byte offset, line and column), or None if it is UTF-8."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return utf8_error_text(payload, exc)
    return None


def utf8_error_text(payload: bytes, exc: UnicodeDecodeError) -> str:
    """Message for a payload that is not UTF-8: the offending byte, its offset, line and column."""
    start = exc.start
    line = payload.count(b"\n", 0, start) + 1
    line_start = payload.rfind(b"\n", 0, start) + 1
    column = len(payload[line_start:start].decode("utf-8", errors="replace")) + 1
    return (
        f"line {line}, column {column}: payload is not UTF-8 "
        f"(byte 0x{payload[start]:02x} at offset {start}: {exc.reason})"
    )
