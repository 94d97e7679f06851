"""The write path: rows and tablets through validation, the WAL and the memtable; deletions and TTL rules.

A write is validated (:mod:`~iotdb_core.storage.ingest`, creating new series), waits for memory if the
memtables are over budget, passes the gate shared, appends one WAL record, applies it to the mutable
memtable and the last-point cache, and leaves the gate; it is acknowledged once the record is durable per
``wal_mode`` (:class:`PendingWrite`). Deletions and TTL changes hold the gate exclusively, so no write is
between its WAL append and its memtable insert while they record a tombstone or a rule in the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from iotdb_core.datatypes import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.model import Row, Tablet
from iotdb_core.paths import PathError
from iotdb_core.patterns import Pattern, compile_pattern, matches, pattern_text, series_nodes
from iotdb_core.storage import codec
from iotdb_core.storage.codec import SeriesChunk
from iotdb_core.storage.columns import to_array
from iotdb_core.storage.errors import WriteRejectedError
from iotdb_core.storage.health import storage_failure
from iotdb_core.storage.ingest import CheckedTablet, PreparedRows, PreparedTablet, check_tablets, data_types
from iotdb_core.storage.memtable import (
    CHUNK_POINTS,
    LastCache,
    MemTable,
    SeriesKey,
    newest_index,
    strictly_increasing,
)
from iotdb_core.storage.results import WriteResult
from iotdb_core.storage.schema import canonical_device
from iotdb_core.storage.state import EngineState
from iotdb_core.storage.wal import WalError, WalMode

if TYPE_CHECKING:
    from iotdb_core.storage.background import Background
    from iotdb_core.storage.reads import ReadPath

__all__ = ["PendingWrite", "WritePath", "apply_chunks"]


class WritePath:
    """Writes, deletions and TTL changes of one engine's state."""

    def __init__(self, state: EngineState, reads: ReadPath, background: Background) -> None:
        self.state = state
        self.reads = reads
        self.background = background

    def insert_record(
        self,
        device: str,
        timestamp: int,
        measurements: Sequence[str],
        values: Sequence[Any],
        types: Sequence[TSDataType | None] | None = None,
    ) -> WriteResult:
        """Write one device's values at one timestamp (None values are skipped)."""
        if types is None:
            result = self._lean_record(device, timestamp, measurements, values)
            if result is not None:
                return result
        row = Row(device, timestamp, tuple(measurements), tuple(values), None if types is None else tuple(types))
        return self.write_rows([row])

    def _lean_record(
        self, device: str, timestamp: int, measurements: Sequence[str], values: Sequence[Any]
    ) -> WriteResult | None:
        """:meth:`insert_record` of the common case without building rows, chunks and groups; None (nothing
        written) when the case is not that one and the general path must decide.

        The common case: no ``iotdb_before_write`` hook, an integer timestamp, existing series named in their
        canonical form, and values that are already what their series stores (a float for DOUBLE, an int in
        range for INT32/INT64, a bool for BOOLEAN, an ASCII string for TEXT). The WAL record is the one the
        general path writes for the row, so recovery cannot tell them apart.
        """
        s = self.state
        if (
            type(timestamp) is not int
            or not INT64_MIN <= timestamp <= INT64_MAX
            or len(measurements) != len(values)
            or s.hook.iotdb_before_write.get_hookimpls()
        ):
            return None
        s.check_open()
        s.health.check()
        epoch = s.schema_epoch
        try:
            canonical, _ = canonical_device(device)
        except PathError:
            return None
        known = s.registry.device_series(canonical)
        points: list[tuple[str, TSDataType, Any]] = []
        for measurement, value in zip(measurements, values, strict=True):
            schema = known.get(measurement)
            if schema is None or not _stored_as_is(schema.data_type, value):
                return None
            points.append((measurement, schema.data_type, value))
        try:
            payload = codec.encode_row(canonical, timestamp, points) if s.wal_mode is not WalMode.DISABLE else b""
            reserved = self._reserve(len(points) * _LEAN_POINT_BYTES)
            try:
                with s.gate.shared():
                    s.check_open()
                    if s.schema_epoch != epoch:
                        return None  # series were deleted meanwhile: the general path re-creates them
                    ticket = s.wal.append_deferred(payload)
                    mutable = s.versions.current.mutable
                    with mutable.lock:
                        for measurement, data_type, value in points:
                            key = (canonical, measurement)
                            mutable.append(key, data_type, timestamp, value)
                            s.last.offer(key, timestamp, value)
            finally:
                if reserved:
                    with s.memory:
                        s.reserved -= reserved
            if mutable.size >= s.threshold:
                self.background.request_freeze()
            if ticket:
                s.wal.wait_durable(ticket)
        except (OSError, WalError) as exc:
            self._refused(exc)
            raise
        result = WriteResult(len(points), [])
        if s.hook.iotdb_after_write.get_hookimpls():
            s.hook.iotdb_after_write(rows=[Row(device, timestamp, tuple(measurements), tuple(values))], result=result)
        return result

    def insert_records(
        self,
        devices: Sequence[str],
        timestamps: Sequence[int],
        measurements_list: Sequence[Sequence[str]],
        values_list: Sequence[Sequence[Any]],
        types_list: Sequence[Sequence[TSDataType | None] | None] | None = None,
    ) -> WriteResult:
        """Write several rows with one WAL record and one durability wait."""
        count = len(devices)
        if not (len(timestamps) == len(measurements_list) == len(values_list) == count) or (
            types_list is not None and len(types_list) != count
        ):
            raise ValueError("insert_records: devices, timestamps, measurements, values (and types) differ in length")
        rows = [
            Row(
                devices[i],
                timestamps[i],
                tuple(measurements_list[i]),
                tuple(values_list[i]),
                None if types_list is None or types_list[i] is None else tuple(types_list[i]),  # type: ignore[arg-type]
            )
            for i in range(count)
        ]
        return self.write_rows(rows)

    def write_rows(self, rows: Sequence[Row]) -> WriteResult:
        """Write rows of any devices with one WAL record and one durability wait (the MQTT ingest path)."""
        return self.write_rows_deferred(rows).wait()

    def _refused(self, exc: BaseException) -> None:
        """Turn a full or unwritable disk met by this write into the read-only error (raised by the caller)."""
        cause = storage_failure(exc)
        if cause is not None:
            raise self.state.health.enter(cause) from exc

    def write_rows_deferred(self, rows: Sequence[Row]) -> PendingWrite:
        """Write rows like :meth:`write_rows` but return before the durability wait.

        The rows are logged (in SYNC mode queued for the next fsync, which writes them) and visible to reads; call
        :meth:`PendingWrite.wait` — from any thread — before acknowledging them. This lets the MQTT
        ingest thread go on formatting the next batch while an fsync covers this one.
        """
        s = self.state
        s.check_open()
        s.health.check()
        rows = list(rows)
        if s.hook.iotdb_before_write.get_hookimpls():
            s.hook.iotdb_before_write(rows=rows, settings=s.settings)
        try:
            return self._write_rows_deferred(rows)
        except (OSError, WalError) as exc:
            self._refused(exc)
            raise

    def _write_rows_deferred(self, rows: list[Row]) -> PendingWrite:
        """:meth:`write_rows_deferred` once the ``iotdb_before_write`` hooks ran."""
        s = self.state
        while True:
            epoch = s.schema_epoch
            prepared = s.ingest.rows(rows)
            result = WriteResult(prepared.points, prepared.failures)
            ticket = self._commit(prepared, epoch, wait=False) if prepared.points else 0
            if ticket is not None:
                return PendingWrite(self, rows, result, ticket)

    def wait_durable(self, pending: PendingWrite) -> None:
        s = self.state
        if pending.ticket:
            try:
                s.wal.wait_durable(pending.ticket)
            except WalError as exc:
                self._refused(exc)
                raise
        if s.hook.iotdb_after_write.get_hookimpls():
            rows = pending.rows
            tablets = rows.tablets if isinstance(rows, TabletRows) else None
            s.hook.iotdb_after_write(rows=rows, result=pending.result, tablets=tablets)

    def insert_tablet(
        self,
        device: str,
        timestamps: Sequence[int] | np.ndarray,
        measurements: Sequence[str],
        columns: Sequence[Sequence[Any] | np.ndarray],
        types: Sequence[TSDataType | str | None] | None = None,
    ) -> WriteResult:
        """Write one device's rows given column by column; refused while the storage is read-only."""
        self.state.health.check()
        try:
            return self._insert_tablet(device, timestamps, measurements, columns, types)
        except (OSError, WalError) as exc:
            self._refused(exc)
            raise

    def _insert_tablet(
        self,
        device: str,
        timestamps: Sequence[int] | np.ndarray,
        measurements: Sequence[str],
        columns: Sequence[Sequence[Any] | np.ndarray],
        types: Sequence[TSDataType | str | None] | None = None,
    ) -> WriteResult:
        """Write one device's rows given column by column (None entries are skipped).

        ``types`` may name IoTDB types (``"DOUBLE"``) as IoTDB's clients send them. Numpy columns of a
        matching dtype are validated and logged without per-point Python work.
        """
        s = self.state
        s.check_open()
        types = data_types(types, "insert_tablet: types", len(measurements))
        rows: list[Row] | None = None
        if s.hook.iotdb_before_write.get_hookimpls():
            # Hooks see the tablet as rows. When they leave every row as it was (the usual case for a
            # validating plugin), the tablet is still written column by column.
            rows = _tablet_rows(device, timestamps, measurements, columns, types)
            given = list(rows)
            s.hook.iotdb_before_write(rows=rows, settings=s.settings)
            if len(rows) != len(given) or any(row is not before for row, before in zip(rows, given, strict=True)):
                return self._write_rows_deferred(rows).wait()
        while True:
            epoch = s.schema_epoch
            prepared = s.ingest.tablet(device, timestamps, measurements, columns, types)
            result = WriteResult(prepared.points, prepared.failures)
            if not prepared.points or self._commit(prepared, epoch) is not None:
                break
        if s.hook.iotdb_after_write.get_hookimpls():
            written = TabletRows((Tablet(device, timestamps, measurements, columns, types),), rows)
            s.hook.iotdb_after_write(rows=written, result=result, tablets=written.tablets)
        return result

    def write_tablets(self, tablets: Sequence[Tablet]) -> WriteResult:
        """Write tablets of any devices with one WAL record and one durability wait."""
        return self.write_tablets_deferred(tablets).wait()

    def write_tablets_deferred(self, tablets: Sequence[Tablet]) -> PendingWrite:
        """Validate every tablet, then log them as one WAL record (``KIND_TABLETS``) in one gate pass; return
        before the durability wait.

        A tablet whose shape is wrong refuses the whole call (InvalidArgumentError naming its index and the
        field) before anything is written. Rejected values are failures of the result, as for a tablet.
        """
        s = self.state
        s.check_open()
        checked = check_tablets(tablets, "write_tablets")
        s.health.check()
        try:
            return self._write_tablets_deferred(checked)
        except (OSError, WalError) as exc:
            self._refused(exc)
            raise

    def _write_tablets_deferred(self, checked: list[CheckedTablet]) -> PendingWrite:
        s = self.state
        rows: list[Row] | None = None
        if s.hook.iotdb_before_write.get_hookimpls():
            # As for insert_tablet: hooks see rows, and when they change none the tablets stay columns.
            rows = [row for tablet in checked for row in _tablet_rows(*tablet)]
            given = list(rows)
            s.hook.iotdb_before_write(rows=rows, settings=s.settings)
            if len(rows) != len(given) or any(row is not before for row, before in zip(rows, given, strict=True)):
                return self._write_rows_deferred(rows)
        while True:
            epoch = s.schema_epoch
            prepared = [s.ingest.tablet(*tablet) for tablet in checked]
            result = WriteResult(sum(p.points for p in prepared), [f for p in prepared for f in p.failures])
            ticket = self._commit(prepared, epoch, wait=False) if result.points_written else 0
            if ticket is not None:
                break
        written: Sequence[Row] = rows or []
        if s.hook.iotdb_after_write.get_hookimpls():
            written = TabletRows(tuple(Tablet(*tablet) for tablet in checked), rows)
        return PendingWrite(self, written, result, ticket)

    def _commit(
        self, prepared: PreparedRows | PreparedTablet | list[PreparedTablet], epoch: int, *, wait: bool = True
    ) -> int | None:
        """Log and apply validated points: memory reservation, gate, WAL, memtable.

        Returns a WAL ticket; with ``wait=False`` the caller must wait for it to be durable. Returns None,
        writing nothing, when series were deleted since the points were validated against the schema of
        ``epoch``: the caller validates them again (re-creating the series).
        """
        s = self.state
        nbytes: int
        if isinstance(prepared, PreparedRows):
            encode: Callable[[], bytes] = lambda: codec.encode_series(prepared.chunks)  # noqa: E731
            apply: Callable[[MemTable], None] = lambda mem: apply_chunks(s.last, mem, prepared.chunks)  # noqa: E731
            nbytes = prepared.nbytes
        elif isinstance(prepared, PreparedTablet):
            encode = lambda: codec.encode_tablet(prepared.device, prepared.timestamps, prepared.columns)  # noqa: E731
            apply = lambda mem: apply_tablet(s.last, mem, prepared)  # noqa: E731
            nbytes = prepared.nbytes
        else:
            written = [tablet for tablet in prepared if tablet.columns]
            encode = lambda: codec.encode_tablets(  # noqa: E731
                [(tablet.device, tablet.timestamps, tablet.columns) for tablet in written]
            )

            def apply(mem: MemTable) -> None:
                for tablet in written:
                    apply_tablet(s.last, mem, tablet)

            nbytes = sum(tablet.nbytes for tablet in written)
        payload = encode() if s.wal_mode is not WalMode.DISABLE else b""
        reserved = self._reserve(nbytes)
        try:
            with s.gate.shared():
                s.check_open()
                if s.schema_epoch != epoch:
                    return None
                if wait:
                    s.wal.append(payload)
                    ticket = 0
                else:
                    ticket = s.wal.append_deferred(payload)
                mutable = s.versions.current.mutable
                with mutable.lock:
                    apply(mutable)
        finally:
            if reserved:
                with s.memory:
                    s.reserved -= reserved
        if mutable.size >= s.threshold:
            self.background.request_freeze()
        return ticket

    def _memory_used(self) -> int:
        s = self.state
        return sum(mem.size for mem in s.versions.current.memtables) + s.reserved

    def _reserve(self, nbytes: int) -> int:
        """Wait until the memtables have room for ``nbytes`` more, or reject the write; return the bytes reserved.

        A small write far below the budget reserves nothing and takes no lock: concurrent writers can then
        overshoot by at most a few small writes while staying under half the budget.
        """
        s = self.state
        if nbytes <= s.budget >> 6 and self._memory_used() + nbytes <= s.budget >> 1:
            return 0
        with s.memory:
            used = self._memory_used()
            if used + nbytes <= s.budget or used == 0:
                s.reserved += nbytes
                return nbytes
            deadline = time.monotonic() + s.stall_timeout
            while True:
                if len(s.versions.current.memtables) == 1 and not s.versions.current.mutable.empty:
                    self.background.request_freeze()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failing = s.background_error
                    raise WriteRejectedError(
                        f"write rejected: memory budget exceeded (memtable_memory_budget_in_byte={s.budget}): "
                        f"memtables hold {used} bytes and this write needs about {nbytes} more; waited "
                        f"{s.stall_timeout * 1000:.0f} ms (write_stall_timeout_in_ms) for flushes to free memory"
                        + ("" if failing is None else f"; flushes are failing: {failing}")
                    )
                s.memory.wait(min(remaining, 0.05))
                s.check_open()
                used = self._memory_used()
                if used + nbytes <= s.budget or used == 0:
                    s.reserved += nbytes
                    return nbytes

    def delete(self, path_pattern: str, start: int | None = None, end: int | None = None) -> int:
        """Delete the points with ``start <= time <= end`` (both inclusive; None = unbounded) of every series
        ``path_pattern`` matches (``*`` one level, ``**`` one or more); returns the number of series matched.

        The deletion is durable when the call returns (a tombstone in the manifest). It hides only points
        written before the call: points written afterwards, at any timestamp, stay visible.
        """
        s = self.state
        s.check_open()
        pattern = compile_pattern(path_pattern)
        low = INT64_MIN if start is None else int(start)
        high = INT64_MAX if end is None else int(end)
        with s.gate.exclusive():
            s.check_open()
            keys = self._matching_keys(pattern)
            if keys and low <= high:
                self._delete_locked(pattern, keys, low, high)
            return len(keys)

    def delete_timeseries(self, path_pattern: str) -> int:
        """Remove every series ``path_pattern`` matches from the schema and delete all its points.

        Returns the number of series removed. Writing to a removed series creates it anew (when schema
        auto-creation is on), possibly with another type; its old points never come back.
        """
        s = self.state
        s.check_open()
        pattern = compile_pattern(path_pattern)
        with s.gate.exclusive():
            s.check_open()
            keys = self._matching_keys(pattern)
            if not keys:
                return 0
            self._delete_locked(pattern, keys, INT64_MIN, INT64_MAX)
            s.registry.drop_series(keys)
            s.schema_epoch += 1  # writes validated against the old schema validate again
            for key in keys:
                s.last.set(key, None)
            return len(keys)

    def _matching_keys(self, pattern: Pattern) -> list[SeriesKey]:
        s = self.state
        return sorted(
            (schema.device, schema.measurement)
            for schema in s.registry.all_series()
            if matches(pattern, series_nodes(schema.device, schema.measurement))
        )

    def _delete_locked(self, pattern: Pattern, keys: list[SeriesKey], low: int, high: int) -> None:
        """Record a tombstone and correct the last-point cache (the caller holds the gate exclusively).

        When the mutable memtable holds points the deletion covers it is sealed first, so the tombstone
        gets the version of a memtable that has no point from before the call.
        """
        s = self.state
        mutable = s.versions.current.mutable
        present = mutable.keys()
        if any(
            mutable.read(key, low, high) is not None
            for key in present
            if matches(pattern, series_nodes(key[0], key[1]))
        ):
            self.background.freeze_locked()
            self.background.wake_flusher()
        version = s.versions.current.mutable.version
        with s.manifest_lock:
            state = s.manifest.with_tombstone(pattern_text(pattern), low, high, version, s.wal.next_seq)
            s.publish(state)
        with s.versions.pinned() as current:
            for key in keys:
                point = s.last.get(key)
                schema = s.registry.get(*key)
                if point is None or schema is None or not low <= point[0] <= high:
                    continue
                s.last.set(key, None if low == INT64_MIN else self.reads.tail(current, key, schema, low - 1))

    def set_ttl(self, path: str, ttl_ms: int | None) -> None:
        """Set (``None``: remove) the time to live of the points under ``path`` (``root.sg``, ``root.sg.d1``,
        ``root.**``...), in milliseconds; persisted. The most specific rule covering a series applies.

        Points older than ``now - ttl`` (in ``timestamp_precision`` units) are invisible at once and are
        reclaimed by compaction and by removing files whose points have all expired.
        """
        s = self.state
        s.check_open()
        with s.gate.exclusive():  # the last-point cache is corrected below without concurrent writes
            s.check_open()
            with s.manifest_lock:
                old = s.ttl
                rules = old.with_rule(path, ttl_ms)
                if rules == old:
                    return
                s.publish(s.manifest.with_ttl(rules.rules))
                s.ttl = rules
            # Points expired under the old rules may be gone from the files; where they become visible
            # again, the cached newest point is recomputed from what is left.
            now = rules.now()
            with s.versions.pinned() as version:
                for key, point in s.last.items():
                    schema = s.registry.get(*key)
                    if schema is not None and point[0] < old.cutoff(key, now) and point[0] >= rules.cutoff(key, now):
                        s.last.set(key, self.reads.tail(version, key, schema, INT64_MAX))
        s.wake_compaction.set()

    def list_ttl(self) -> dict[str, int]:
        """The TTL rules, path (``root.sg.**``) to milliseconds."""
        s = self.state
        return dict(s.ttl.rules)


#: Memory a point of :meth:`WritePath._lean_record` is reserved for (a TEXT value is estimated).
_LEAN_POINT_BYTES = 72


def _stored_as_is(data_type: TSDataType, value: Any) -> bool:
    """Whether the engine's coercion would store ``value`` in a ``data_type`` series unchanged."""
    kind = type(value)
    if data_type is TSDataType.DOUBLE:
        return kind is float
    if data_type is TSDataType.INT64:
        return kind is int and INT64_MIN <= value <= INT64_MAX
    if data_type is TSDataType.INT32:
        return kind is int and INT32_MIN <= value <= INT32_MAX
    if data_type is TSDataType.BOOLEAN:
        return kind is bool
    if data_type is TSDataType.TEXT:
        return kind is str and value.isascii()
    return False


def _tablet_rows(
    device: str,
    timestamps: Sequence[int] | np.ndarray,
    measurements: Sequence[str],
    columns: Sequence[Sequence[Any] | np.ndarray],
    types: Sequence[TSDataType | None] | None,
    nulls: Sequence[np.ndarray | None] | None = None,
) -> list[Row]:
    """A tablet as rows (None where a null mask says so), for hook implementations."""
    names = tuple(measurements)
    kinds = None if types is None else tuple(types)
    stamps = timestamps.tolist() if isinstance(timestamps, np.ndarray) else list(timestamps)
    lists = [column.tolist() if isinstance(column, np.ndarray) else list(column) for column in columns]
    for position, mask in enumerate(nulls or ()):
        if mask is not None and mask.any():
            for row in np.flatnonzero(mask).tolist():
                lists[position][row] = None
    values = zip(*lists, strict=True) if lists else [()] * len(stamps)
    return [Row(device, stamp, names, row, kinds) for stamp, row in zip(stamps, values, strict=True)]

class TabletRows(Sequence[Row]):
    """A tablet write's rows for ``iotdb_after_write``, made from ``tablets`` on first use (or given, when the
    ``iotdb_before_write`` hooks already saw them): an implementation reading ``tablets`` costs no rows. The
    tablets are the engine's checked ones: types parsed, null masks boolean arrays."""

    __slots__ = ("_rows", "tablets")

    def __init__(self, tablets: tuple[Tablet, ...], rows: list[Row] | None = None) -> None:
        self.tablets = tablets
        self._rows = rows

    def _made(self) -> list[Row]:
        if self._rows is None:
            self._rows = [row for t in self.tablets for row in _tablet_rows(
                t.device, t.timestamps, t.measurements, t.columns, t.types, t.nulls)]  # type: ignore[arg-type]
        return self._rows

    def __len__(self) -> int:
        return sum(len(tablet.timestamps) for tablet in self.tablets)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        return self._made()[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._made())


class PendingWrite:
    """A write whose rows are logged and applied but whose durability wait is still to come."""

    __slots__ = ("_done", "_writes", "result", "rows", "ticket")

    def __init__(self, writes: WritePath, rows: Sequence[Row], result: WriteResult, ticket: int) -> None:
        self._writes = writes
        self.rows = rows
        self.result = result
        self.ticket = ticket
        self._done = False

    def wait(self) -> WriteResult:
        """Return the result once the rows are durable per ``wal_mode`` (then ``iotdb_after_write`` runs)."""
        if not self._done:
            self._writes.wait_durable(self)
            self._done = True
        return self.result


def apply_chunks(last: LastCache, mem: MemTable, chunks: Iterable[SeriesChunk]) -> None:
    """Insert series chunks into ``mem`` and the last-point cache (the caller holds ``mem.lock``)."""
    for chunk in chunks:
        key = (chunk.device, chunk.measurement)
        timestamps, values = chunk.timestamps, chunk.values
        if len(timestamps) == 1:
            value = values[0]
            mem.append(key, chunk.data_type, timestamps[0], value)
            last.offer(key, int(timestamps[0]), value.item() if isinstance(value, np.generic) else value)
            continue
        if not isinstance(timestamps, np.ndarray):
            timestamps = np.array(timestamps, dtype=np.int64)
        if not isinstance(values, np.ndarray):
            values = to_array(values, chunk.data_type)
        mem.extend(key, chunk.data_type, timestamps, values)
        last.offer_many(key, timestamps, values)


def apply_tablet(last: LastCache, mem: MemTable, tablet: PreparedTablet) -> None:
    """Insert a validated tablet into ``mem`` and the last-point cache (the caller holds ``mem.lock``).

    The order facts of the shared timestamps are computed once for every column without a mask, and
    those columns keep one copy of them.
    """
    if not len(tablet.timestamps):
        return
    shared = np.array(tablet.timestamps, dtype=np.int64)  # one copy, kept by every column without a mask
    increasing = strictly_increasing(shared)
    newest = newest_index(shared)
    newest_ts = int(shared[newest])
    ends = (int(shared[0]), int(shared[-1]))
    device = tablet.device
    chunked = len(shared) >= CHUNK_POINTS  # then kept once by every column without a mask, and counted once
    if chunked and any(column.mask is None for column in tablet.columns):
        mem.size += shared.nbytes
    for column in tablet.columns:
        key = (device, column.measurement)
        values = column.values
        assert isinstance(values, np.ndarray)
        if column.mask is None:
            mem.extend(key, column.data_type, shared, values, increasing, ends, shared=chunked)
            value = values[newest]
            last.offer(key, newest_ts, value.item() if isinstance(value, np.generic) else value)
        else:
            timestamps = shared[column.mask]
            mem.extend(key, column.data_type, timestamps, values, owned=True)
            last.offer_many(key, timestamps, values)
