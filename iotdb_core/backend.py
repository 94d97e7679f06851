"""The storage contract: what MQTT, SQL, REST and the CLI call on a storage backend.

:class:`StorageBackend` names exactly the calls the services make on the engine; the built-in
:class:`iotdb_core.storage.Engine` implements it, and so must an object returned by the
``iotdb_storage_backend`` hook (see ``docs/plugins.md``). Calls only some backends offer are separate
capability protocols, checked with ``isinstance`` (they are ``runtime_checkable``): :class:`SupportsScan`
(statistics for aggregate pushdown), :class:`SupportsTabletWrites` (many devices' tablets in one durable
write), :class:`SupportsDelete`, :class:`SupportsTTL`,
:class:`SupportsHealth` (a read-only state that ``/ping`` reports) and :class:`SupportsStats` (the figures
``/metrics``, ``iotdb status`` and the console show). A service that finds a capability
missing answers "not supported" instead of failing.

This module imports no part of the engine, so plugin code can use it without loading storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from iotdb_core.config import Settings
    from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
    from iotdb_core.model import Health, Row, Tablet
    from iotdb_core.storage.results import Segment, SeriesResult, WriteResult
    from iotdb_core.storage.schema import SeriesSchema
    from iotdb_core.storage.stats import EngineStats

__all__ = [
    "DurableWrite",
    "PendingWriteLike",
    "StorageBackend",
    "SupportsDelete",
    "SupportsHealth",
    "SupportsScan",
    "SupportsStats",
    "SupportsTTL",
    "SupportsTabletWrites",
]


class PendingWriteLike(Protocol):
    """A write that is applied (``result`` is final) but may not be durable yet: :meth:`wait` makes sure."""

    @property
    def result(self) -> WriteResult: ...

    def wait(self) -> WriteResult:
        """Block until the write is durable; returns :attr:`result`. Raises StorageError if it cannot be."""
        ...


class DurableWrite:
    """A :class:`PendingWriteLike` for a backend whose writes are durable (or final) when they return."""

    __slots__ = ("result",)

    def __init__(self, result: WriteResult) -> None:
        self.result = result

    def wait(self) -> WriteResult:
        return self.result


@runtime_checkable
class StorageBackend(Protocol):
    """The calls every storage backend answers (the built-in :class:`~iotdb_core.storage.Engine` among them).

    Paths are IoTDB tree-model paths (``root.sg.d1.s1``); times are int64 integers in
    ``timestamp_precision`` units, ranges inclusive at both ends, None unbounded. Errors a client caused
    are :class:`~iotdb_core.storage.StorageError` subclasses (or failures inside a ``WriteResult``);
    services show their message, never a traceback.
    """

    @property
    def settings(self) -> Settings:
        """The running configuration (SQL reads ``timestamp_precision`` and the like from it)."""
        ...

    def write_rows_deferred(self, rows: Sequence[Row]) -> PendingWriteLike:
        """Write rows of any devices (the MQTT ingest path); the caller waits before acknowledging."""
        ...

    def insert_records(
        self,
        devices: Sequence[str],
        timestamps: Sequence[int],
        measurements_list: Sequence[Sequence[str]],
        values_list: Sequence[Sequence[Any]],
        types_list: Sequence[Sequence[TSDataType | None] | None] | None = None,
    ) -> WriteResult:
        """Write rows given as parallel lists (SQL ``INSERT``, REST ``insertRecords``); durable on return."""
        ...

    def insert_tablet(
        self,
        device: str,
        timestamps: Sequence[int] | np.ndarray,
        measurements: Sequence[str],
        columns: Sequence[Sequence[Any] | np.ndarray],
        types: Sequence[TSDataType | str | None] | None = None,
    ) -> WriteResult:
        """Write one device's rows column by column (REST ``insertTablet``, CLI import); durable on return."""
        ...

    def query(self, path: str, start: int | None = None, end: int | None = None) -> SeriesResult:
        """The points of one series in ``[start, end]``, in time order, one per timestamp."""
        ...

    def last(self, path: str) -> tuple[int, Any] | None:
        """The point with the largest timestamp of a series, or None."""
        ...

    def list_series(self, pattern: str | None = None) -> list[SeriesSchema]:
        """The series matching ``pattern`` (``*`` one level, ``**`` one or more; None: all), sorted by path."""
        ...

    def list_devices(self) -> list[str]:
        """Every device with at least one series, sorted."""
        ...

    def list_databases(self) -> list[str]:
        """Every database, sorted."""
        ...

    def create_database(self, path: str) -> str:
        """Create a database; returns its canonical path."""
        ...

    def create_timeseries(
        self,
        path: str,
        data_type: TSDataType | str,
        encoding: TSEncoding | str | None = None,
        compressor: Compressor | str | None = None,
    ) -> SeriesSchema:
        """Create one series explicitly."""
        ...

    def close(self) -> None:
        """Make everything durable and release the data directory; called once at shutdown."""
        ...


@runtime_checkable
class SupportsScan(Protocol):
    """Aggregate pushdown: a series' points as file statistics where they are exact, points elsewhere."""

    def scan(
        self, path: str, start: int | None = None, end: int | None = None, *, bounds: Any = None
    ) -> list[Segment]: ...


@runtime_checkable
class SupportsTabletWrites(Protocol):
    """Tablets of many devices written as one unit (the native RPC service's ``insertRecords`` and
    ``insertTablets``): one durability wait for the call. Without it the services write rows or one
    ``insert_tablet`` per device."""

    def write_tablets(self, tablets: Sequence[Tablet]) -> WriteResult:
        """Write the tablets; durable on return. A tablet whose lengths disagree refuses the whole call."""
        ...

    def write_tablets_deferred(self, tablets: Sequence[Tablet]) -> PendingWriteLike:
        """Write the tablets; the caller waits before acknowledging them."""
        ...


@runtime_checkable
class SupportsDelete(Protocol):
    """``DELETE FROM`` and ``DELETE TIMESERIES``."""

    def delete(self, path_pattern: str, start: int | None = None, end: int | None = None) -> int: ...

    def delete_timeseries(self, path_pattern: str) -> int: ...


@runtime_checkable
class SupportsTTL(Protocol):
    """``SET TTL``, ``UNSET TTL`` and the TTL column of ``SHOW DATABASES``."""

    def set_ttl(self, path: str, ttl_ms: int | None) -> None: ...

    def list_ttl(self) -> dict[str, int]: ...


@runtime_checkable
class SupportsHealth(Protocol):
    """Whether the backend accepts writes now (``/ping`` answers 503 while it does not)."""

    def health(self) -> Health: ...


@runtime_checkable
class SupportsStats(Protocol):
    """A cheap snapshot of the backend's memtables, WAL, files, background work, read-only state and disk.

    Called on every scrape of ``/metrics`` and every second by an open console overview, off the event loop;
    it must not wait for writes, flushes or compactions.
    """

    def stats(self) -> EngineStats: ...
