"""The dead-letter page's work: listing and filtering kept payloads, re-ingesting a fixed one, discarding one.

A re-ingested payload goes through the configured formatter (the ``iotdb_format_payload`` hook, so plugins
that wrap it run too) and :meth:`Engine.write_rows`, as an MQTT publish does, with the original client's
context. Only a payload stored in full leaves the log; one the formatter or the engine still rejects stays,
with the answer saying why (valid values of a partly rejected payload are written, as on MQTT).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Any

import pluggy

from iotdb_core.deadletter import DeadLetterLog
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext

__all__ = ["ReingestRejected", "list_letters", "reingest"]

_FILTERS = ("client_id", "topic", "reason")


class ReingestRejected(ValueError):
    """The fixed payload was not stored in full; ``written`` points were."""

    def __init__(self, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.written = written


def list_letters(log: DeadLetterLog, filters: dict[str, str], limit: int) -> dict[str, Any]:
    """The newest ``limit`` records whose client, topic and reason contain the given texts (case-insensitive);
    ``text`` matches any of them or the payload."""
    wanted = {key: value.lower() for key, value in filters.items() if value}
    matched = []
    total = 0
    for letter_id, letter in log.entries():
        total += 1
        fields = asdict(letter)
        if any(value not in str(fields.get(key) or "").lower() for key, value in wanted.items() if key in _FILTERS):
            continue
        text = wanted.get("text")
        if text and not any(text in str(fields.get(key) or "").lower() for key in (*_FILTERS, "payload")):
            continue
        matched.append({"id": letter_id, **fields})
    return {"total": total, "matched": len(matched), "letters": matched[::-1][:limit]}


def reingest(log: DeadLetterLog, plugins: pluggy.PluginManager, engine: Any, letter_id: str, payload: str,
             encoding: str, topic: str | None) -> dict[str, Any]:
    """Format and write the fixed ``payload``; on full success discard the record and return what was written."""
    letter = log.get(letter_id)
    if encoding == "base64":
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ReingestRejected("the payload is not valid base64") from None
    elif encoding == "utf-8":
        data = payload.encode("utf-8")
    else:
        raise ReingestRejected(f"payload_encoding must be utf-8 or base64, got {encoding!r}")
    target = topic or letter.topic
    context = FormatContext(client_id=letter.client_id, username=letter.username, qos=letter.qos)
    try:
        rows = plugins.hook.iotdb_format_payload(topic=target, payload=data, context=context)
    except FormatError as exc:
        raise ReingestRejected(f"the formatter still rejects the payload: {exc}") from None
    except Exception as exc:  # a formatter bug: the record stays, the operator is told
        raise ReingestRejected(f"the formatter failed: {type(exc).__name__}: {exc}") from None
    if rows is None:
        raise ReingestRejected("no formatter produced rows for the payload")
    result = engine.write_rows(rows)
    if result.failures:
        first = result.failures[0]
        raise ReingestRejected(
            f"{len(result.failures)} value(s) rejected ({result.points_written} written); first: "
            f"{first.device}.{first.measurement} at {first.timestamp}: {first.reason}", result.points_written)
    log.discard(letter_id)
    return {"rows": len(rows), "points": result.points_written, "topic": target}
