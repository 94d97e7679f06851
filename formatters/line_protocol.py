"""The ``line`` payload formatter: InfluxDB line protocol mapped onto IoTDB's tree model.

A line ``weather,location=us-midwest,season=summer temperature=82 1465839830100400200`` published
on topic ``farm/sensors`` becomes one row of device ``root.farm.weather.`us-midwest`.summer`` — the
database from the topic's first level, then the measurement, then the tag values ordered by tag key —
with measurement ``temperature``. Every name that is not a plain IoTDB node is backquoted.

A payload is accepted or rejected as a whole: one bad line rejects every line of it, and the error
names the first bad line and column.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, ClassVar

from formatters._text import utf8_error_text
from formatters.line_tokenizer import LineSyntaxError, parse_line
from iotdb_core.config import Option, Settings, choice, text
from iotdb_core.datatypes import INT64_MAX, INT64_MIN
from iotdb_core.errors import ConfigError, FormatError
from iotdb_core.formatter import FormatContext, PayloadFormatter, Row
from iotdb_core.paths import quote_node

__all__ = ["DEFAULT_DATABASE_OPTION", "PRECISION_OPTION", "LineProtocolFormatter"]

#: Nanoseconds in one unit of each precision a line-protocol payload or the database may use.
NANOS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_CACHE_LIMIT = 65536


def _database_name(value: str) -> str:
    """Parse ``line_default_database``: empty, or a plain node name (``sg`` or ``root.sg``)."""
    name = text(value).removeprefix("root.")
    if name and not _is_plain_node(name):
        raise ValueError(value)
    return name


PRECISION_OPTION = Option(
    "line_timestamp_precision", "ns", choice("ns", "us", "ms", "s"), "ns, us, ms or s",
    "unit of line-protocol timestamps; converted to timestamp_precision, finer digits are dropped",
)
DEFAULT_DATABASE_OPTION = Option(
    "line_default_database", "", _database_name, "empty or a database name of letters, digits and '_'",
    "database for line-protocol topics whose first level is empty or not a plain node name",
)


@lru_cache(maxsize=_CACHE_LIMIT)
def _is_plain_node(name: str) -> bool:
    return bool(name) and "\x00" not in name and quote_node(name) == name


@lru_cache(maxsize=_CACHE_LIMIT)
def _node(name: str) -> str:
    """``quote_node`` with a cache: the same measurements, tags and fields arrive again and again."""
    return quote_node(name)


def _device_path(prefix: str, measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """``root.<database>.<measurement>`` then the tag values ordered by tag key, each node quoted as needed."""
    nodes = [_node(measurement)]
    nodes.extend(_node(value) for _, value in sorted(tags))
    return prefix + ".".join(nodes)


class LineProtocolFormatter(PayloadFormatter):
    """InfluxDB line protocol, one row per line; see ``docs/formatters.md`` for the mapping and typing."""

    name: ClassVar[str] = "line"
    options: ClassVar[tuple[Option, ...]] = (PRECISION_OPTION, DEFAULT_DATABASE_OPTION)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        values = settings.values
        source = values.get(PRECISION_OPTION.key, PRECISION_OPTION.default)
        default_database = values.get(DEFAULT_DATABASE_OPTION.key, DEFAULT_DATABASE_OPTION.default)
        target = values.get("timestamp_precision", "ms")
        if source not in NANOS_PER_UNIT or target not in NANOS_PER_UNIT:
            raise ConfigError(f"line formatter: unsupported timestamp precision {source!r} -> {target!r}")
        try:
            self.default_database = _database_name(default_database)
        except ValueError:
            raise ConfigError(
                f"{DEFAULT_DATABASE_OPTION.key}={default_database}: expected {DEFAULT_DATABASE_OPTION.expected}"
            ) from None
        self.source_precision: str = source
        self.target_precision: str = target
        self._nanos_per_target = NANOS_PER_UNIT[target]
        ratio_up = NANOS_PER_UNIT[source] // NANOS_PER_UNIT[target]
        self._multiply = max(ratio_up, 1)
        self._divide = max(NANOS_PER_UNIT[target] // NANOS_PER_UNIT[source], 1)
        # Written paths by what they are built from; several ingest threads share them (dict
        # operations are atomic, and a lost update only costs a recomputation).
        self._devices: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
        self._measurements: dict[tuple[str, ...], tuple[str, ...]] = {}

    @staticmethod
    def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
        """Store ``value`` in a bounded cache (emptied when full, so names a client invents cannot pile up)."""
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value
        return value

    def database_for(self, topic: str) -> str:
        """The database node a publish on ``topic`` writes to, or FormatError when there is none."""
        first = topic.partition("/")[0]
        if first and _is_plain_node(first):
            return first
        if self.default_database:
            return self.default_database
        if not first:
            raise FormatError(
                f"topic {topic!r}: its first level is empty, so it names no database, "
                f"and {DEFAULT_DATABASE_OPTION.key} is not set"
            )
        raise FormatError(
            f"topic {topic!r}: first level {first!r} cannot name a database (plain node names hold letters, "
            f"digits and '_', not digits only), and {DEFAULT_DATABASE_OPTION.key} is not set"
        )

    def convert_timestamp(self, timestamp: int) -> int:
        """Convert from ``line_timestamp_precision`` to the database's; coarser targets round down."""
        if self._divide > 1:
            return timestamp // self._divide
        return timestamp * self._multiply

    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        try:
            document = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(utf8_error_text(payload, exc)) from None
        if not document.strip():
            raise FormatError("empty payload")
        prefix = "root." + self.database_for(topic) + "."
        rows: list[Row] = []
        now: int | None = None
        for number, line in enumerate(document.split("\n"), 1):
            try:
                parsed = parse_line(line[:-1] if line.endswith("\r") else line)
            except LineSyntaxError as exc:
                raise FormatError(f"line {number}, column {exc.column}: {exc.message}") from None
            if parsed is None:
                continue
            device_key = (prefix, parsed.measurement, parsed.tags)
            device = self._devices.get(device_key)
            if device is None:
                path = _device_path(prefix, parsed.measurement, parsed.tags)
                device = self._remember(self._devices, device_key, path)
            if parsed.timestamp is None:
                if now is None:
                    now = time.time_ns() // self._nanos_per_target
                timestamp = now
            else:
                timestamp = self.convert_timestamp(parsed.timestamp)
                if not INT64_MIN <= timestamp <= INT64_MAX:
                    raise FormatError(
                        f"line {number}, column {parsed.timestamp_column}: timestamp {parsed.timestamp} "
                        f"({self.source_precision}) is out of the INT64 range in {self.target_precision}"
                    )
            measurements = self._measurements.get(parsed.field_keys)
            if measurements is None:
                measurements = self._remember(
                    self._measurements, parsed.field_keys, tuple([_node(key) for key in parsed.field_keys])
                )
            rows.append(Row(device, timestamp, measurements, parsed.field_values, parsed.field_types))
        return rows
