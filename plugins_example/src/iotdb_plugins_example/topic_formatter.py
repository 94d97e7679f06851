"""The ``topic`` payload formatter: the MQTT topic names the series, the payload carries one value.

Topic to series
    By default each topic level is one path node and the last level is the measurement:
    ``root/sg/d1/temperature`` is measurement ``temperature`` of device ``root.sg.d1``. A topic whose
    first level is not ``root`` is placed under ``topic_formatter_prefix`` (default ``root.mqtt``):
    ``plant/d1/temperature`` becomes ``root.mqtt.plant.d1.temperature``.

    ``topic_formatter_template`` replaces that mapping with a series path in which ``{i}`` stands for
    topic level ``i``, counted from 0, negative from the end: with ``root.factory.{0}.{-1}`` the topic
    ``plant7/line2/temp`` becomes ``root.factory.plant7.temp``. The template's last node is the
    measurement. A topic level that is not a plain node name is backquoted (``d-1`` becomes ```d-1```).

Payload
    * a bare value: ``21.5``, ``42``, ``true``/``false`` (any case), a JSON string ``"text"``,
      ``NaN``/``Infinity``;
    * or a JSON object ``{"value": ..., "ts": ...}``; ``ts`` is optional and is either an integer in
      the unit of ``timestamp_precision`` or an ISO-8601 text with a UTC offset;
    * anything else that is not JSON (``on``, ``12 V``) is stored as TEXT, without surrounding blanks,
      unless ``topic_formatter_plain_text=false``, which rejects it. Text that starts like JSON
      (``{``, ``[``, ``"``) but does not parse is always rejected.

    Without ``ts`` the row gets the server's time. Types are left to the engine, which infers them
    with the ``*_string_infer_type`` settings or uses the series' schema.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from iotdb_core import FormatContext, FormatError, Option, PayloadFormatter, Row, Settings
from iotdb_core.config import parse_bool
from iotdb_core.datatypes import INT64_MAX, INT64_MIN
from iotdb_core.formatter import Value
from iotdb_core.paths import PathError, join_path, quote_node, split_path, unquote_node
from iotdb_plugins_example._syntax import split_unquoted

TEMPLATE_KEY = "topic_formatter_template"
PREFIX_KEY = "topic_formatter_prefix"
PLAIN_TEXT_KEY = "topic_formatter_plain_text"
DEFAULT_PREFIX = "root.mqtt"

_UNITS_PER_SECOND = {"ms": 10**3, "us": 10**6, "ns": 10**9}
_PLACEHOLDER = re.compile(r"\{(-?[0-9]+)\}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OBJECT_KEYS = frozenset({"ts", "value"})

#: One template node: a written path node, or the parts of a node name (text and topic level indexes).
TemplateNode = str | tuple[str | int, ...]


@dataclass(frozen=True)
class TopicTemplate:
    """A validated ``topic_formatter_template``."""

    text: str
    nodes: tuple[TemplateNode, ...]

    @classmethod
    def parse(cls, text: str) -> TopicTemplate:
        """Parse and validate a template; raises ``ValueError`` saying what is wrong and where."""
        # Each placeholder is replaced by plain characters of the same length, so the core's path
        # validation checks the literal nodes and its column numbers still point into ``text``.
        stand_in = _PLACEHOLDER.sub(lambda match: "x" * len(match.group(0)), text)
        for column, char in enumerate(stand_in, start=1):
            if char in "{}":
                raise ValueError(
                    f"template {text!r}: {char!r} at column {column} is not part of a placeholder "
                    f"{{i}} (i: a topic level index such as 0 or -1)"
                )
        try:
            split_path(stand_in)
        except PathError as exc:
            raise ValueError(str(exc).replace(f"path {stand_in!r}", f"template {text!r}")) from None
        written = split_unquoted(text, ".")
        if len(written) < 3:
            raise ValueError(f"template {text!r}: needs root, at least one device node and a measurement")
        nodes: list[TemplateNode] = []
        for node in written:
            if _PLACEHOLDER.search(node) is None:
                nodes.append(node)
                continue
            pieces = _PLACEHOLDER.split(unquote_node(node))
            nodes.append(tuple(int(piece) if odd else piece for odd, piece in _alternating(pieces) if piece))
        return cls(text, tuple(nodes))

    def nodes_for(self, topic: str, levels: list[str]) -> list[str]:
        """Return the written series path nodes for a topic split into ``levels``."""
        return [node if isinstance(node, str) else self._node(topic, levels, node) for node in self.nodes]

    def _node(self, topic: str, levels: list[str], parts: tuple[str | int, ...]) -> str:
        pieces = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            if not -len(levels) <= part < len(levels):
                raise FormatError(
                    f"topic {topic!r} has {len(levels)} level(s) but {TEMPLATE_KEY}={self.text} uses level {{{part}}}"
                )
            if not levels[part]:
                raise FormatError(f"topic {topic!r}: level {part % len(levels)} is empty")
            pieces.append(levels[part])
        try:
            return quote_node("".join(pieces))
        except PathError as exc:
            raise FormatError(f"topic {topic!r}: {exc}") from None


def _alternating(pieces: list[str]) -> list[tuple[bool, str]]:
    """Pair the pieces of ``re.split`` with one group with whether each is a captured group."""
    return [(index % 2 == 1, piece) for index, piece in enumerate(pieces)]


def _template_option(value: str) -> str:
    stripped = value.strip()
    if stripped:
        TopicTemplate.parse(stripped)
    return stripped


def _prefix_option(value: str) -> str:
    stripped = value.strip()
    split_path(stripped)
    return stripped


class TopicFormatter(PayloadFormatter):
    """Formatter ``topic``: one value per publish, the series named by the topic (see the module doc)."""

    name = "topic"
    options: ClassVar[Sequence[Option]] = (
        Option(TEMPLATE_KEY, "", _template_option,
               "empty, or a series path with {i} topic levels, e.g. root.factory.{0}.{-1}",
               "topic formatter: series path built from topic levels (empty: one node per level)"),
        Option(PREFIX_KEY, DEFAULT_PREFIX, _prefix_option, "a path starting with root",
               "topic formatter: path put before topics whose first level is not 'root'"),
        Option(PLAIN_TEXT_KEY, True, parse_bool, "true or false",
               "topic formatter: store a payload that is not JSON as TEXT (false: reject it)"),
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # Settings built without this formatter's options (default_settings()) get the defaults.
        values = settings.values
        template = values.get(TEMPLATE_KEY, "")
        self.template = TopicTemplate.parse(template) if template else None
        self.prefix = split_path(values.get(PREFIX_KEY, DEFAULT_PREFIX))
        self.plain_text: bool = values.get(PLAIN_TEXT_KEY, True)
        self.precision: str = settings.timestamp_precision
        self._units = _UNITS_PER_SECOND[self.precision]

    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        device, measurement = self.series_of(topic)
        value, timestamp = self.parse_payload(payload)
        if timestamp is None:
            timestamp = time.time_ns() * self._units // 10**9
        return [Row(device, timestamp, (measurement,), (value,))]

    # Topic

    def series_of(self, topic: str) -> tuple[str, str]:
        """Return the ``(device, measurement)`` that ``topic`` names, both in written path form."""
        if not topic:
            raise FormatError("topic is empty")
        try:
            topic.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FormatError(f"topic {topic!r}: holds a lone surrogate at index {exc.start}") from None
        levels = topic.split("/")
        if self.template is not None:
            nodes = self.template.nodes_for(topic, levels)
        elif levels[0] == "root":
            nodes = ["root"] + [_quoted_level(topic, levels, index) for index in range(1, len(levels))]
            if len(nodes) < 3:
                raise FormatError(f"topic {topic!r}: expected root/<device levels>/<measurement>")
        else:
            nodes = list(self.prefix) + [_quoted_level(topic, levels, index) for index in range(len(levels))]
            if len(nodes) < 3:
                raise FormatError(
                    f"topic {topic!r}: under {PREFIX_KEY}={join_path(*self.prefix)} it names no device; "
                    f"expected <device levels>/<measurement>"
                )
        return join_path(*nodes[:-1]), nodes[-1]

    # Payload

    def parse_payload(self, payload: bytes) -> tuple[Value, int | None]:
        """Return the value and the timestamp (``None``: use the server's time) carried by ``payload``."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"payload: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        stripped = text.strip()
        if not stripped:
            raise FormatError('payload is empty; expected a value or {"value": ..., "ts": ...}')
        lowered = stripped.lower()
        if lowered in ("true", "false"):
            return lowered == "true", None
        try:
            decoded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            if stripped[0] in '{["' or not self.plain_text:
                where = f"line {exc.lineno}, column {exc.colno}"
                raise FormatError(f"payload: not valid JSON ({where}: {exc.msg})") from None
            return stripped, None
        except RecursionError:
            raise FormatError("payload: JSON nested too deeply") from None
        except ValueError as exc:  # the only other one: an integer with more digits than Python converts
            raise FormatError(f"payload: cannot be decoded ({str(exc).split(';')[0]})") from None
        if isinstance(decoded, dict):
            return self._parse_object(decoded)
        return _checked_value("payload", decoded), None

    def _parse_object(self, document: dict[str, object]) -> tuple[Value, int | None]:
        unknown = sorted(set(document) - _OBJECT_KEYS)
        if unknown:
            raise FormatError(f'payload: unknown key {unknown[0]!r}; expected "value" and optionally "ts"')
        if "value" not in document:
            raise FormatError('payload: the object has no "value" key')
        value = _checked_value('payload "value"', document["value"])
        if "ts" not in document:
            return value, None
        return value, self._timestamp(document["ts"])

    def _timestamp(self, ts: object) -> int:
        if isinstance(ts, int) and not isinstance(ts, bool):
            if not INT64_MIN <= ts <= INT64_MAX:
                raise FormatError(f'payload "ts": {ts} is outside the INT64 range')
            return ts
        if isinstance(ts, str):
            return self._iso_timestamp(ts)
        raise FormatError(
            f'payload "ts": expected an integer in {self.precision} or an ISO-8601 text, got {_kind(ts)}'
        )

    def _iso_timestamp(self, ts: str) -> int:
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            raise FormatError(f'payload "ts": {ts!r} is not an ISO-8601 date and time') from None
        if moment.tzinfo is None:
            raise FormatError(f'payload "ts": {ts!r} has no UTC offset (add Z or +hh:mm)')
        delta = moment - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return micros * self._units // 1_000_000


def _quoted_level(topic: str, levels: list[str], index: int) -> str:
    if not levels[index]:
        raise FormatError(f"topic {topic!r}: level {index} is empty")
    try:
        return quote_node(levels[index])
    except PathError as exc:
        raise FormatError(f"topic {topic!r}: level {index}: {exc}") from None


def _checked_value(where: str, value: object) -> Value:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FormatError(f"{where}: the string holds a lone surrogate (\\u{ord(value[exc.start]):04x}), "
                              "which is not Unicode text") from None
        return value
    if isinstance(value, bool | int | float):
        return value
    raise FormatError(f"{where}: expected a number, boolean or string, got {_kind(value)}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a floating-point number"
    return type(value).__name__
