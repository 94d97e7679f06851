"""Rendering results for the query commands: IoTDB CLI tables, CSV, JSON, and times as ISO 8601 or epoch.

A result is the REST API v2 body (:class:`Result` wraps it): both backends of :mod:`iotdb_core.cli.connection`
produce that shape, so one renderer serves a server and a data directory alike.
"""

from __future__ import annotations

import csv
import datetime as _dt
import re
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import ujson

__all__ = [
    "PRECISION_UNITS",
    "Result",
    "TimeFormatter",
    "boxed_table",
    "display",
    "parse_time",
    "write_csv",
    "write_json",
]

#: Timestamp units per second, by ``timestamp_precision``.
PRECISION_UNITS = {"ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}
_FRACTION_DIGITS = {"ms": 3, "us": 6, "ns": 9}


class Result:
    """A query result as the REST API returns it: header, optional timestamps, column-major values."""

    def __init__(self, body: dict[str, Any]) -> None:
        names = body.get("expressions") or body.get("column_names") or []
        self.names: list[str] = list(names)
        self.timestamps: list[int] | None = body.get("timestamps")
        values = body.get("values") or []
        rows = len(self.timestamps) if self.timestamps is not None else (len(values[0]) if values else 0)
        self.columns: list[list[Any]] = list(values) if values else [[] for _ in self.names]
        if not values and rows:  # pragma: no cover - a server never sends timestamps without values
            self.columns = [[None] * rows for _ in self.names]
        self.size = rows

    @property
    def has_time(self) -> bool:
        return self.timestamps is not None

    @property
    def header(self) -> list[str]:
        return (["Time"] if self.timestamps is not None else []) + self.names

    def __len__(self) -> int:
        return self.size

    def rows(self, time_format: TimeFormatter | None = None) -> Iterator[list[Any]]:
        """Rows as lists (time first when there is a time column, formatted by ``time_format`` if given)."""
        columns = self.columns
        if self.timestamps is None:
            for index in range(self.size):
                yield [column[index] for column in columns]
            return
        stamps: Sequence[Any] = self.timestamps
        if time_format is not None:
            stamps = [time_format(stamp) for stamp in stamps]
        for index in range(self.size):
            yield [stamps[index], *(column[index] for column in columns)]


class TimeFormatter:
    """Formats timestamps of a precision as ISO 8601 in the local zone (IoTDB CLI's default) or as integers."""

    def __init__(self, precision: str = "ms", style: str = "iso") -> None:
        self.precision = precision
        self.style = style
        self.per_second = PRECISION_UNITS[precision]
        self.digits = _FRACTION_DIGITS[precision]
        self._second: int | None = None
        self._parts = ("", "")

    def __call__(self, stamp: int) -> str | int:
        if self.style != "iso":
            return stamp
        seconds, fraction = divmod(stamp, self.per_second)
        if seconds != self._second:
            try:
                moment = _dt.datetime.fromtimestamp(seconds).astimezone()
            except (OverflowError, OSError, ValueError):
                return stamp
            text = moment.isoformat(timespec="seconds")
            self._parts = (text[:19], text[19:])
            self._second = seconds
        return f"{self._parts[0]}.{fraction:0{self.digits}d}{self._parts[1]}"


_ISO = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_time(text: str, precision: str = "ms") -> int:
    """A time cell as a timestamp: an integer in ``precision`` units, or ISO 8601 (local zone when none is given).

    Raises ValueError naming the text when it is neither.
    """
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    match = _ISO.fullmatch(stripped)
    if match is None:
        raise ValueError(f"{text!r} is not a time (an integer or ISO 8601 like 2024-01-01T00:00:00.000+08:00)")
    zone = match.group("zone") or ""
    if zone == "Z":
        zone = "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(match.group("base").replace(" ", "T") + zone)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None
    seconds = int(moment.timestamp())  # a naive time is local, as IoTDB's CLI reads it
    per_second = PRECISION_UNITS[precision]
    fraction = (match.group("fraction") or "").ljust(9, "0")
    return seconds * per_second + int(fraction) * per_second // 1_000_000_000


def display(value: Any) -> str:
    """A value as IoTDB's CLI prints it (``null``, ``true``/``false``, numbers, text)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _cell(value: Any) -> str:
    """A value in a CSV cell: empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def boxed_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """IoTDB CLI's table: ``+---+`` borders and right-aligned cells."""
    cells = [[display(cell) for cell in row] for row in rows]
    widths = [len(name) for name in header]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(items: Sequence[str]) -> str:
        return "|" + "|".join(item.rjust(width) for item, width in zip(items, widths, strict=True)) + "|"

    border = "+" + "+".join("-" * width for width in widths) + "+"
    lines = [border, line(header), border]
    lines.extend(line(row) for row in cells)
    if cells:
        lines.append(border)
    return "\n".join(lines)


def write_csv(
    out: TextIO, header: Sequence[str] | None, rows: Iterator[Sequence[Any]] | Sequence[Sequence[Any]]
) -> int:
    """Write a header (unless None) and rows as CSV (null as an empty cell); returns the data rows written."""
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([_cell(value) for value in row])
        count += 1
    return count


def write_json(out: TextIO, header: Sequence[str], rows: Iterator[Sequence[Any]]) -> None:
    """Write rows as a JSON array of objects keyed by the header (one object per line)."""
    out.write("[")
    first = True
    for row in rows:
        out.write("\n" if first else ",\n")
        out.write(ujson.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False, escape_forward_slashes=False))
        first = False
    out.write("\n]\n" if not first else "]\n")
