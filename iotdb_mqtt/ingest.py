"""Turning a batch of publishes into durable rows, on an ingest thread.

A batch is every publish one connection delivered while its previous batch was being written, so
one WAL append and one durability wait serve many messages. Nothing valid is lost and nothing is
dropped silently: a payload the formatter rejects is kept in the dead-letter log with the reason,
and so is every value the engine rejects, while the payload's valid values are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pluggy

from iotdb_core.authz import Authorizer
from iotdb_core.backend import PendingWriteLike, StorageBackend, SupportsTabletWrites
from iotdb_core.deadletter import DeadLetter, DeadLetterLog
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, Formatted, Row, Tablet
from iotdb_core.formatter_loader import FormatterHook
from iotdb_core.metrics import ServiceCounters
from iotdb_core.paths import PathError
from iotdb_core.storage.results import WriteFailure
from iotdb_core.storage.schema import canonical_device
from iotdb_mqtt.codec.properties import EMPTY_PROPERTIES, Properties

log = logging.getLogger("iotdb.mqtt.ingest")

#: MQTT 5 reason code telling a publisher its payload was not (wholly) stored.
PAYLOAD_FORMAT_INVALID = 0x99
#: MQTT 5 reason code telling a publisher it may not write (some of) the payload's series.
NOT_AUTHORIZED = 0x87
_REASON_STRING_LIMIT = 200


@dataclass(slots=True)
class InboundPublish:
    """One publish waiting to be written and routed.

    ``write`` is False for a QoS 2 resend (its first receipt is written and routed); ``ingest`` is False for
    a topic outside ``mqtt_ingest_topics`` (routed only); a non-zero ``refusal`` is the reason code of a
    publish the topic ACL refused (neither written nor routed). ``rows`` are what the formatter read from the
    payload, rows or tablets (None until formatted; empty when it rejected the payload): subscribers need
    READ_DATA on their series.
    """

    topic: str
    payload: bytes
    qos: int
    packet_id: int | None
    write: bool = True
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES
    ingest: bool = True
    refusal: int = 0
    rows: Sequence[Formatted] | None = None


@dataclass(slots=True)
class PublishOutcome:
    """What to tell the publisher: reason code 0 (stored), or 0x99 (not stored) or 0x87 (not authorized) with a
    reason string."""

    reason_code: int = 0
    reason: str | None = None


STORED = PublishOutcome()


@dataclass(slots=True)
class IngestedBatch:
    """A batch's outcomes, and the engine write whose durability must be awaited before acknowledging."""

    outcomes: list[PublishOutcome]
    pending: Any

    def wait_durable(self) -> list[PublishOutcome]:
        """Block until the batch's rows are durable per ``wal_mode``; return the outcomes."""
        if self.pending is not None:
            self.pending.wait()
        return self.outcomes


class RateLimitedLog:
    """Logs at most one line per key per interval, counting what it held back."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, key: str, message: str) -> None:
        """Log ``message`` unless a line with ``key`` was logged within the interval."""
        now = time.monotonic()
        last, held = self._last.get(key, (0.0, 0))
        if now - last >= self.interval_s:
            suffix = f" ({held} similar messages suppressed)" if held else ""
            log.warning("%s%s", message, suffix)
            self._last[key] = (now, 0)
            if len(self._last) > 10000:
                self._last.clear()
        else:
            self._last[key] = (last, held + 1)


class Ingestor:
    """Formats and writes batches of publishes; safe to call from several threads."""

    def __init__(self, plugins: pluggy.PluginManager, engine: StorageBackend, dead_letters: DeadLetterLog,
                 counters: ServiceCounters, authorizer: Authorizer | None = None) -> None:
        self._format = _formatting_call(plugins)
        self._format_columns = _columns_call(plugins, engine)
        self._before_write = plugins.hook.iotdb_before_write
        self._authorizer = authorizer
        self._engine = engine
        self._dead_letters = dead_letters
        self._counters = counters
        self._warnings = RateLimitedLog()

    def ingest(self, context: FormatContext, publishes: Sequence[InboundPublish]) -> IngestedBatch:
        """Write the batch and return one outcome per publish, in order, with the pending durability.

        Returns once every rejected payload or value is in the dead-letter log and the stored rows
        are logged; :meth:`IngestedBatch.wait_durable` must return before anything is acknowledged.
        Raises if the engine refuses the write as a whole (for instance the memory budget stayed
        exhausted): then nothing may be acknowledged.
        """
        outcomes = [STORED] * len(publishes)
        letters: list[DeadLetter] = []
        rows: list[Formatted] = []
        #: (index of the first row, index of the publish) for each publish that produced rows, in order.
        owners: list[tuple[int, int]] = []
        format_payload: Callable[[str, bytes, FormatContext], Sequence[Formatted] | None] = self._format
        if self._format_columns is not None and self._tablets_pay():
            format_payload = self._format_columns
        authorizer = self._authorizer if context.username is not None else None
        for index, publish in enumerate(publishes):
            if not publish.write or not publish.ingest:
                continue
            if publish.refusal:
                outcomes[index] = PublishOutcome(publish.refusal, f"not authorized to publish to {publish.topic!r}")
                continue
            publish.rows = []  # a payload the formatter cannot read carries no series
            try:
                produced = format_payload(publish.topic, publish.payload, context)
            except FormatError as exc:
                outcomes[index] = self._reject(letters, context, publish, str(exc))
                continue
            except Exception as exc:  # a formatter bug must not lose the payload or kill the connection
                log.exception("payload formatter failed on topic %r", publish.topic)
                outcomes[index] = self._reject(letters, context, publish,
                                               f"formatter failed: {type(exc).__name__}: {exc}")
                continue
            if produced is None:
                outcomes[index] = self._reject(letters, context, publish, "no formatter produced rows")
                continue
            publish.rows = produced
            if authorizer is not None:
                produced, refused = _writable(authorizer, context.username, produced)
                if refused:
                    reason = _not_authorized(context, refused, written=bool(produced))
                    outcomes[index] = self._reject(letters, context, publish, reason, NOT_AUTHORIZED)
            owners.append((len(rows), index))
            rows.extend(produced)
        if rows:
            pending, written = self._write(rows)
            result = pending.result
            self._counters.add("rows_written", written)
            self._counters.add("points_written", result.points_written)
            if result.failures:
                self._attribute_failures(result.failures, rows, owners, publishes, context, letters, outcomes)
        if letters:
            self._dead_letters.append(letters)
        return IngestedBatch(outcomes, pending if rows else None)

    def _reject(self, letters: list[DeadLetter], context: FormatContext, publish: InboundPublish,
                reason: str, code: int = PAYLOAD_FORMAT_INVALID) -> PublishOutcome:
        letters.append(DeadLetter.of(client_id=context.client_id, username=context.username, topic=publish.topic,
                                     qos=publish.qos, reason=reason, payload=publish.payload))
        self._counters.add("mqtt_payloads_rejected")
        self._warnings.warning(f"{context.client_id}\0{publish.topic}",
                               f"payload from client {context.client_id!r} on topic {publish.topic!r} "
                               f"kept in the dead-letter log: {reason}")
        return PublishOutcome(code, _shorten(reason))

    def _tablets_pay(self) -> bool:
        """Whether to format into tablets: the backend takes them, and no ``iotdb_before_write`` hook is registered
        (the engine hands that hook every tablet as rows, which costs more than formatting rows in the first place;
        ``iotdb_after_write`` gets the tablets themselves and rows only if it reads them)."""
        return self._format_columns is not None and not self._before_write.get_hookimpls()

    def _write(self, items: list[Formatted]) -> tuple[PendingWriteLike, int]:
        """Write formatted rows and tablets in one engine call; return it and the number of rows.

        Rows alone take the row path. With tablets among them, every item is written as a tablet, in order
        (runs of one device's tablets merged, so a batch of one device's documents is one tablet), through
        ``write_tablets_deferred``; when a row cannot be a tablet, everything is written as rows.
        """
        if self._format_columns is None or not any(type(item) is Tablet for item in items):
            return self._engine.write_rows_deferred(by_device(items)), len(items)  # type: ignore[arg-type]
        written = sum(len(item.timestamps) if type(item) is Tablet else 1 for item in items)
        tablets = _as_tablets(items)
        assert isinstance(self._engine, SupportsTabletWrites)  # _columns_call checked it
        if tablets is None:
            return self._engine.write_rows_deferred(by_device(_as_rows(items))), written
        return self._engine.write_tablets_deferred(tablets), written

    def _attribute_failures(self, failures: Sequence[WriteFailure], rows: Sequence[Formatted],
                            owners: Sequence[tuple[int, int]],
                            publishes: Sequence[InboundPublish], context: FormatContext,
                            letters: list[DeadLetter], outcomes: list[PublishOutcome]) -> None:
        """Dead-letter each publish whose values the engine rejected, naming every rejected value."""
        owner_of: dict[tuple[str, object], int] = {}
        ends = [start for start, _ in owners[1:]] + [len(rows)]
        for (start, owner), end in zip(owners, ends, strict=True):
            for key in _keys(rows[start:end]):
                owner_of.setdefault(key, owner)
        by_publish: dict[int, list[WriteFailure]] = {}
        for failure in failures:
            owner = owner_of.get((failure.device, failure.timestamp), -1)
            by_publish.setdefault(owner, []).append(failure)
        self._counters.add("points_rejected", len(failures))
        for owner, rejected in by_publish.items():
            details = "; ".join(f"{f.device}.{f.measurement} at {f.timestamp} = {f.value!r}: {f.reason}"
                                for f in rejected)
            reason = f"{len(rejected)} value(s) rejected, the others written: {details}"
            if owner < 0:
                orphan = InboundPublish("", details.encode("utf-8"), 0, None)
                self._reject(letters, context, orphan, reason)
                continue
            outcomes[owner] = self._reject(letters, context, publishes[owner], reason)


def by_device(rows: list[Row]) -> list[Row]:
    """``rows`` grouped by device, each device's rows in their order.

    Publishes of many devices arrive interleaved on one connection (an upstream broker's, or a gateway's); the
    engine validates a run of one device's rows as a tablet, column by column, and interleaved rows one by
    one, point by point. Only the order within a device decides which write of a timestamp wins, so grouping
    changes nothing stored. Two spellings of one device (``d1`` and ```d1```) stay in their order: when
    spellings collide, the rows are returned as they are.
    """
    groups: dict[str, list[Row]] = {}
    try:
        for row in rows:
            group = groups.get(row.device)
            if group is None:
                groups[row.device] = [row]
            else:
                group.append(row)
    except (AttributeError, TypeError):  # not a row, or an unhashable device: the engine says what is wrong
        return rows
    if len(groups) == 1:
        return rows
    seen: set[str] = set()
    for device in groups:
        try:
            canonical = canonical_device(device)[0]
        except PathError:
            canonical = device  # an invalid device's rows are refused whatever their place
        if canonical in seen:
            return rows
        seen.add(canonical)
    return [row for group in groups.values() for row in group]


def _formatting_call(plugins: pluggy.PluginManager) -> Callable[[str, bytes, FormatContext], list[Row] | None]:
    """The callable that formats one payload.

    When the configured formatter is the hook's only implementation, its ``format`` is called
    directly: the result is the same and the hook dispatch would cost about a fifth of the
    per-message ingest time. Any other implementation (a wrapper, a second formatter) keeps the
    full hook call.
    """
    hook = plugins.hook.iotdb_format_payload
    implementations = hook.get_hookimpls()
    if len(implementations) == 1 and isinstance(implementations[0].plugin, FormatterHook):
        return implementations[0].plugin.formatter.format

    def through_hook(topic: str, payload: bytes, context: FormatContext) -> list[Row] | None:
        return hook(topic=topic, payload=payload, context=context)

    return through_hook


def _columns_call(
    plugins: pluggy.PluginManager, engine: StorageBackend
) -> Callable[[str, bytes, FormatContext], Sequence[Formatted]] | None:
    """The formatter's ``format_columns`` when tablets can be used: the formatter is called directly (see
    :func:`_formatting_call`) and the backend writes tablets. None otherwise: the hook returns rows."""
    implementations = plugins.hook.iotdb_format_payload.get_hookimpls()
    if len(implementations) != 1 or not isinstance(implementations[0].plugin, FormatterHook):
        return None
    if not isinstance(engine, SupportsTabletWrites):
        return None
    return implementations[0].plugin.formatter.format_columns


def _writable(authorizer: Authorizer, user: str | None,
              items: Sequence[Formatted]) -> tuple[list[Formatted], list[str]]:
    """:meth:`Authorizer.writable_rows` for rows and tablets: a tablet is trimmed to the measurements the user
    may write, and each of its rows names the refused series, as the tablet's rows would."""
    if not any(type(item) is Tablet for item in items):
        only_rows, denied = authorizer.writable_rows(user, items)  # type: ignore[arg-type]
        return list(only_rows), denied
    kept: list[Formatted] = []
    refused: list[str] = []
    for item in items:
        if type(item) is not Tablet:
            rows, denied = authorizer.writable_rows(user, [item])  # type: ignore[list-item]
            kept.extend(rows)
            refused.extend(denied)
            continue
        names = tuple(item.measurements)
        probe = Row(item.device, 0, names, (None,) * len(names))
        rows, denied = authorizer.writable_rows(user, [probe])
        if not denied:
            kept.append(item)
            continue
        refused.extend(denied * len(item.timestamps))
        if rows:
            allowed = set(rows[0].measurements)
            keep = [index for index, name in enumerate(names) if name in allowed]
            nulls = None if item.nulls is None else [item.nulls[index] for index in keep]
            kept.append(Tablet(item.device, item.timestamps, [names[index] for index in keep],
                               [item.columns[index] for index in keep], None, nulls))
    return kept, refused


def _keys(items: Sequence[Formatted]) -> Iterator[tuple[str, object]]:
    """(device, timestamp) of every row of the items, in order (what write failures name)."""
    for item in items:
        if type(item) is Tablet:
            stamps = item.timestamps
            device = item.device
            for stamp in stamps.tolist() if isinstance(stamps, np.ndarray) else stamps:
                yield device, stamp
        else:
            yield item.device, item.timestamp  # type: ignore[union-attr]


def _as_rows(items: Sequence[Formatted]) -> list[Row]:
    """The items as rows, tablets row by row (None where a null mask says so)."""
    rows: list[Row] = []
    for item in items:
        if type(item) is not Tablet:
            rows.append(item)  # type: ignore[arg-type]
            continue
        names = tuple(item.measurements)
        stamps = item.timestamps.tolist() if isinstance(item.timestamps, np.ndarray) else list(item.timestamps)
        columns = [_listed(column, None if item.nulls is None else item.nulls[index])
                   for index, column in enumerate(item.columns)]
        types = None if item.types is None else tuple(item.types)
        rows.extend(Row(item.device, stamp, names, values, types)  # type: ignore[arg-type]
                    for stamp, values in zip(stamps, zip(*columns, strict=True), strict=True))
    return rows


def _listed(column: Any, mask: Any) -> list[Any]:
    """A tablet column as a list of values, None where ``mask`` is true."""
    values = column.tolist() if isinstance(column, np.ndarray) else list(column)
    if mask is not None:
        for row in np.flatnonzero(np.asarray(mask, dtype=np.bool_)).tolist():
            values[row] = None
    return values


def _as_tablets(items: Sequence[Formatted]) -> list[Tablet] | None:
    """The items as tablets in order, each run of mergeable tablets of one device and measurements joined into
    one (the engine's cost is mostly per tablet and column); None when a row is not well formed (the row path
    reports its problem)."""
    tablets: list[Tablet] = []
    run: list[Tablet] = []
    for item in items:
        if type(item) is Tablet:
            if run and not (_mergeable(item) and item.device == run[0].device
                            and tuple(item.measurements) == tuple(run[0].measurements)):
                tablets.append(_merged(run))
                run = []
            if run or _mergeable(item):
                run.append(item)
            else:
                tablets.append(item)
            continue
        if run:
            tablets.append(_merged(run))
            run = []
        tablet = _row_tablet(item)  # type: ignore[arg-type]
        if tablet is None:
            return None
        tablets.append(tablet)
    if run:
        tablets.append(_merged(run))
    return tablets


def _row_tablet(row: Row) -> Tablet | None:
    """A well-formed row as a one-row tablet (list columns: the engine converts them as it converts rows)."""
    width = len(row.measurements)
    if (type(row.device) is not str or type(row.timestamp) is not int or len(row.values) != width
            or (row.types is not None and len(row.types) != width)):
        return None
    return Tablet(row.device, [row.timestamp], row.measurements, [[value] for value in row.values], row.types)


def _mergeable(tablet: Tablet) -> bool:
    """Whether a tablet can be joined with others: int64 timestamps, no declared types, numpy or list columns of
    one entry per row, null masks as boolean arrays."""
    stamps = tablet.timestamps
    if type(stamps) is not np.ndarray or stamps.dtype != np.int64 or tablet.types is not None:
        return False
    count = len(stamps)
    if any(type(column) not in (np.ndarray, list) or len(column) != count for column in tablet.columns):
        return False
    return tablet.nulls is None or all(
        mask is None or (type(mask) is np.ndarray and mask.dtype == np.bool_ and len(mask) == count)
        for mask in tablet.nulls
    )


def _merged(run: list[Tablet]) -> Tablet:
    """One device's tablets with the same measurements as one tablet, rows in order (the last write of a
    timestamp still wins). A column that is an array of one dtype in every tablet stays an array."""
    first = run[0]
    if len(run) == 1:
        return first
    columns: list[Any] = []
    nulls: list[np.ndarray | None] = []
    for index in range(len(first.columns)):
        parts = [tablet.columns[index] for tablet in run]
        masks = [None if tablet.nulls is None else tablet.nulls[index] for tablet in run]
        dtype = getattr(parts[0], "dtype", None)
        if dtype is not None and all(type(part) is np.ndarray and part.dtype == dtype for part in parts):
            columns.append(np.concatenate(parts))
            if any(mask is not None for mask in masks):
                nulls.append(np.concatenate([np.zeros(len(part), np.bool_) if mask is None else mask
                                             for part, mask in zip(parts, masks, strict=True)]))
            else:
                nulls.append(None)
        else:
            columns.append([value for part, mask in zip(parts, masks, strict=True) for value in _listed(part, mask)])
            nulls.append(None)
    stamps = np.concatenate([tablet.timestamps for tablet in run])
    has_nulls = any(mask is not None for mask in nulls)
    return Tablet(first.device, stamps, first.measurements, columns, None, nulls if has_nulls else None)


def _not_authorized(context: FormatContext, refused: list[str], *, written: bool) -> str:
    shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
    rest = "the payload's other series were written" if written else "nothing of it was written"
    return f"not authorized: user {context.username!r} lacks WRITE_DATA on {shown}; {rest}"


def _shorten(reason: str) -> str:
    return reason if len(reason) <= _REASON_STRING_LIMIT else reason[: _REASON_STRING_LIMIT - 3] + "..."
