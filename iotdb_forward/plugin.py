"""Forwarding to Apache IoTDB: the storage-hook plugin, on while ``forward_target_nodes`` is set.

The entry point (group ``iotdb``, name ``forward``) declares the ``forward_*`` keys; when the configuration
names target nodes it registers :class:`Forwarding`, whose hooks do the work:

- ``iotdb_after_write`` appends every durable write's stored points to the outbox (:mod:`iotdb_forward.outbox`),
  before the write returns to its caller, durable as the local write is (a tablet write column by column,
  from the hook's ``tablets``, without rows);
- a sending thread (:mod:`iotdb_forward.sender`) forwards the outbox in tablets and moves its cursor;
- ``iotdb_before_write`` (of :class:`BacklogGuard`, registered only while the backlog is full, so that a write
  is not turned into rows for the hook while there is room) refuses writes while the outbox holds
  ``forward_max_backlog_bytes`` not yet forwarded:
  the writer gets an error (MQTT: no acknowledgement, so the publisher or upstream broker keeps the message)
  instead of the backlog growing without bound; refusals are counted;
- ``iotdb_metrics`` reports backlog, lag, the last error and the counters for ``/metrics`` and ``iotdb status``.

Deletes and TTL stay local: they are not forwarded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pluggy

from iotdb_core import hookimpl
from iotdb_core.backend import StorageBackend
from iotdb_core.config import Option, Settings, integer, non_empty, text
from iotdb_core.metrics import MetricFigure
from iotdb_core.model import Row, Tablet
from iotdb_core.storage.errors import WriteRejectedError
from iotdb_core.storage.results import WriteResult
from iotdb_forward.outbox import Outbox
from iotdb_forward.sender import Sender, Target
from iotdb_forward.tablets import row_groups, tablet_groups

log = logging.getLogger("iotdb.forward")

_MIB = 1024 * 1024
#: The outbox directory under ``data_dir``.
FORWARD_DIR = "forward"
#: How often the outbox is fsynced with ``wal_mode=ASYNC``.
ASYNC_SYNC_INTERVAL_S = 1.0


def target_nodes(value: str) -> str:
    """A parser for comma-separated ``host:port`` (empty: forwarding off), returned without blanks."""
    nodes = _nodes(value)
    for node in nodes:
        host, sep, port = node.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"entry {node!r} is not host:port")
    return ",".join(nodes)


def _nodes(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


OPTIONS: tuple[Option, ...] = (
    Option("forward_target_nodes", "", target_nodes, "comma-separated host:port, or empty",
           "native RPC addresses of the Apache IoTDB nodes to forward every stored point to (empty: off)"),
    Option("forward_user", "root", non_empty, "a user name", "user at the forwarding target"),
    Option("forward_password", "root", text, "a password", "password of forward_user"),
    Option("forward_batch_size", 100000, integer(1), "points, at least 1", "most points sent in one request"),
    Option("forward_interval_in_ms", 200, integer(1), "milliseconds, at least 1",
           "how long a partial batch waits for more points before it is sent"),
    Option("forward_max_backlog_bytes", 1024 * _MIB, integer(_MIB), "bytes, at least 1048576",
           "outbox size not yet forwarded beyond which local writes are refused"),
    Option("forward_retry_max_interval_in_ms", 30000, integer(100), "milliseconds, at least 100",
           "longest delay between attempts while the target does not acknowledge"),
)


class ForwardEntry:
    """The registered entry point: declares the keys and switches :class:`Forwarding` on."""

    @hookimpl
    def iotdb_config_options(self) -> Sequence[Option]:
        return OPTIONS

    @hookimpl
    def iotdb_configure(self, settings: Settings, plugins: pluggy.PluginManager) -> None:
        if settings.get("forward_target_nodes") and not plugins.has_plugin("iotdb-forwarding"):
            plugins.register(Forwarding(settings, plugins), name="iotdb-forwarding")


class Forwarding:
    """The working part, registered only while forwarding is configured."""

    def __init__(self, settings: Settings, plugins: pluggy.PluginManager) -> None:
        self.settings = settings
        self.max_backlog = int(settings.forward_max_backlog_bytes)
        self.outbox: Outbox | None = None
        self.sender: Sender | None = None
        self.refused = 0
        self._plugins = plugins
        self._guard = BacklogGuard(self)
        self._guard_lock = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    @hookimpl
    def iotdb_startup(self, engine: StorageBackend, settings: Settings) -> None:
        self.outbox = outbox = Outbox(Path(settings.data_dir) / FORWARD_DIR, str(settings.wal_mode))
        target = Target(nodes=_nodes(settings.forward_target_nodes), user=str(settings.forward_user),
                        password=str(settings.forward_password), batch_points=int(settings.forward_batch_size),
                        interval_s=int(settings.forward_interval_in_ms) / 1000.0,
                        retry_max_s=int(settings.forward_retry_max_interval_in_ms) / 1000.0)
        self.sender = Sender(outbox, target, engine, acknowledged=self._guard_backlog)
        self._guard_backlog()
        self.sender.start()
        if outbox.fsync_mode == "ASYNC":
            self._syncer = threading.Thread(target=self._sync_periodically, name="iotdb-forward-sync", daemon=True)
            self._syncer.start()
        log.info("forwarding every stored point to %s (%d points waiting from before)", ", ".join(target.nodes),
                 outbox.backlog_points)

    def refuse_if_full(self) -> None:
        """Raise :class:`WriteRejectedError` while the outbox holds ``forward_max_backlog_bytes`` not yet forwarded."""
        outbox = self.outbox
        if outbox is not None and outbox.backlog_bytes >= self.max_backlog:
            self.refused += 1
            raise WriteRejectedError(
                f"write refused: the forwarding backlog is full ({outbox.backlog_bytes} bytes, "
                f"{outbox.backlog_points} points not yet forwarded; forward_max_backlog_bytes={self.max_backlog}); "
                f"the target has not acknowledged since {_since(self.sender)}")

    def _guard_backlog(self) -> None:
        """Register :class:`BacklogGuard` while the backlog is full, unregister it once there is room again
        (after an append that filled it and after each acknowledged batch)."""
        outbox = self.outbox
        if outbox is None:
            return
        with self._guard_lock:
            full = outbox.backlog_bytes >= self.max_backlog
            guarded = self._plugins.is_registered(self._guard)
            if full and not guarded:
                self._plugins.register(self._guard, name="iotdb-forwarding-backlog")
            elif guarded and not full:
                self._plugins.unregister(self._guard)

    @hookimpl
    def iotdb_after_write(self, rows: Sequence[Row], result: WriteResult, tablets: Sequence[Tablet] | None) -> None:
        outbox = self.outbox
        if outbox is None or not result.points_written:
            return
        if tablets is not None:
            groups = tablet_groups(tablets, result.failures)
        elif rows:
            groups = row_groups(rows, result.failures)
        else:
            return
        outbox.append(groups, result.points_written)
        if outbox.backlog_bytes >= self.max_backlog:
            self._guard_backlog()

    @hookimpl
    def iotdb_shutdown(self, engine: StorageBackend) -> None:
        self._stop.set()
        if self.sender is not None:
            self.sender.stop()
        if self._syncer is not None:
            self._syncer.join(5)
        if self.outbox is not None:
            self.outbox.close()
            waiting = self.outbox.backlog_points
            log.info("forwarding stopped" + (f": {waiting} points waiting, sent after the restart" if waiting else ""))

    @hookimpl
    def iotdb_metrics(self) -> Sequence[MetricFigure]:
        outbox, sender = self.outbox, self.sender
        if outbox is None or sender is None:
            return []
        oldest = outbox.oldest_unsent
        lag = max(0.0, time.time() - oldest) if oldest is not None and outbox.backlog_points else 0.0
        figures = [
            MetricFigure("forward_backlog_points", outbox.backlog_points, "points stored here and not yet forwarded"),
            MetricFigure("forward_backlog_bytes", outbox.backlog_bytes, "outbox bytes not yet forwarded"),
            MetricFigure("forward_backlog_max_bytes", self.max_backlog,
                         "outbox bytes beyond which local writes are refused (forward_max_backlog_bytes)"),
            MetricFigure("forward_lag_seconds", lag, "age of the oldest point not yet forwarded"),
            MetricFigure("forward_points_forwarded", outbox.forwarded_points,
                         "points the target acknowledged (across restarts)", "counter"),
            MetricFigure("forward_send_failures", sender.send_failures, "sends the target did not acknowledge",
                         "counter"),
            MetricFigure("forward_writes_refused", self.refused, "local writes refused: the backlog was full",
                         "counter"),
            MetricFigure("forward_target_up", 1 if sender.target_up else 0,
                         "1 while the target acknowledges, 0 after a failed send"),
        ]
        if sender.last_error is not None and sender.last_error_at is not None:
            figures.append(MetricFigure("forward_last_error_timestamp_seconds", sender.last_error_at,
                                        "when the last send failed (Unix time)", "gauge",
                                        (("error", sender.last_error),)))
        return figures

    def _sync_periodically(self) -> None:
        while not self._stop.wait(ASYNC_SYNC_INTERVAL_S):
            if self.outbox is not None:
                self.outbox.sync()


class BacklogGuard:
    """The ``iotdb_before_write`` of forwarding, registered only while the backlog is full.

    Kept out of :class:`Forwarding` because the engine turns a tablet write into rows for any
    ``iotdb_before_write`` implementation: registered all the time, it would cost every tablet write that
    conversion for a check that passes.
    """

    def __init__(self, forwarding: Forwarding) -> None:
        self.forwarding = forwarding

    @hookimpl
    def iotdb_before_write(self, rows: list[Row], settings: Settings) -> None:
        self.forwarding.refuse_if_full()


def _since(sender: Sender | None) -> str:
    if sender is None or sender.last_success_at is None:
        return "this start" if sender is None or sender.last_error is None else f"this start ({sender.last_error})"
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sender.last_success_at))
    return at + (f" (last error: {sender.last_error})" if sender.last_error else "")


#: What the entry point registers.
plugin: Any = ForwardEntry()
