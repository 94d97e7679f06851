"""Hook specifications of the ``iotdb`` plugin project.

Plugins implement these with the :data:`iotdb_core.hookimpl` marker and are found through the
entry-point group ``iotdb`` (see ``docs/plugins.md``). Every hook name carries the ``iotdb_`` prefix.
Hooks are called with keyword arguments; an implementation may accept any subset of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from iotdb_core.backend import StorageBackend
from iotdb_core.config import Option, Settings
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import MetricFigure
from iotdb_core.model import FlushInfo, Row, Tablet

if TYPE_CHECKING:
    from iotdb_core.storage.engine import Engine
    from iotdb_core.storage.results import WriteResult

PROJECT_NAME = "iotdb"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def iotdb_config_options() -> Sequence[Option]:  # type: ignore[empty-body]
    """Declare configuration keys of this plugin, so they are validated and documented like the core's.

    :return: the options this plugin reads from :class:`~iotdb_core.config.Settings`.
    """


@hookspec
def iotdb_configure(settings: Settings, plugins: pluggy.PluginManager) -> None:
    """Called once the configuration is validated, before the engine opens.

    A plugin that configuration turns on registers its working parts in ``plugins`` here (``plugins.register``),
    so that while it is off it costs nothing on the write path (the engine skips hooks nobody implements).

    :param settings: the running configuration.
    :param plugins: the plugin manager.
    """


@hookspec(firstresult=True)
def iotdb_format_payload(topic: str, payload: bytes, context: FormatContext) -> list[Row] | None:
    """Turn one MQTT payload into rows.

    The formatter named by ``mqtt_payload_formatter`` implements this hook; the first non-``None``
    result wins. A plugin may wrap it (``@hookimpl(wrapper=True)``) to rewrite topics, enrich rows
    or audit payloads.

    :param topic: the PUBLISH topic name.
    :param payload: the raw payload bytes.
    :param context: client id, user name, QoS and protocol level of the publisher.
    :return: the rows, or ``None`` to leave the payload to another implementation.
    :raises iotdb_core.FormatError: the payload cannot be turned into rows.
    """


@hookspec
def iotdb_before_write(rows: list[Row], settings: Settings) -> None:
    """Inspect, transform or drop rows before they are written.

    Implementations change ``rows`` in place (``rows[:] = [...]``): what remains is written.
    Called once per write call with every row of that call.

    :param rows: the rows about to be written; mutable.
    :param settings: the running configuration.
    """


@hookspec
def iotdb_after_write(rows: Sequence[Row], result: WriteResult, tablets: Sequence[Tablet] | None) -> None:
    """Observe rows once they are durable (per ``wal_mode``).

    :param rows: the rows that were written (after :func:`iotdb_before_write`). For a tablet write they are
        made from the tablets on first use.
    :param result: counts of points written and the measurements that failed, with reasons.
    :param tablets: for a tablet write (``insert_tablet``, ``write_tablets``) that no ``iotdb_before_write``
        implementation changed, the tablets as written (types parsed, null masks as boolean arrays), the same
        points as ``rows``: an implementation that reads them column by column never needs the rows made;
        ``None`` for a write of rows.
    """


@hookspec
def iotdb_after_flush(info: FlushInfo) -> None:
    """Observe a memtable flushed into a new TsFile.

    :param info: the file's path, number of series and points, and size in bytes.
    """


@hookspec
def iotdb_startup(engine: Engine, settings: Settings) -> None:
    """Called once the storage engine is open and recovered, before any write is accepted.

    :param engine: the open engine.
    :param settings: the running configuration.
    """


@hookspec
def iotdb_shutdown(engine: Engine) -> None:
    """Called before the storage engine closes, after the last write.

    :param engine: the engine about to close.
    """


@hookspec(firstresult=True)
def iotdb_storage_backend(data_dir: Path, settings: Settings) -> StorageBackend | None:
    """Supply another storage backend in place of the built-in engine.

    The first non-``None`` result is used; it must implement :class:`iotdb_core.backend.StorageBackend`
    (and may implement the capability protocols of :mod:`iotdb_core.backend`).

    :param data_dir: the configured data directory.
    :param settings: the running configuration.
    :return: an open engine-like object, or ``None`` to use the built-in engine.
    """


@hookspec
def iotdb_metrics() -> Sequence[MetricFigure]:  # type: ignore[empty-body]
    """Report figures of this plugin for ``GET /metrics`` (and so ``iotdb status``); called at scrape time,
    from a thread of the REST service, so it must be quick and thread-safe.

    :return: the figures, each exposed as ``iotdb_<name>``.
    """
