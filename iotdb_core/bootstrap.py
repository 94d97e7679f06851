"""Assembling a configured runtime: plugins, then settings (with plugin keys), then the formatter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pluggy

from iotdb_core.backend import StorageBackend
from iotdb_core.config import Option, Settings, load_settings, resolve_config_path
from iotdb_core.errors import PluginError
from iotdb_core.formatter import PayloadFormatter
from iotdb_core.formatter_loader import formatter_options, installed_formatters, load_formatter
from iotdb_core.plugin_manager import create_plugin_manager


@dataclass
class Runtime:
    """The validated settings, the plugin manager and the loaded payload formatter."""

    settings: Settings
    plugins: pluggy.PluginManager
    formatter: PayloadFormatter


def plugin_options(manager: pluggy.PluginManager) -> list[Option]:
    """Configuration keys declared by every registered plugin."""
    return [option for options in manager.hook.iotdb_config_options() for option in options]


def configure(
    config: str | Path | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
    plugins: Iterable[object] = (),
    environ: Mapping[str, str] | None = None,
    load_entry_points: bool = True,
) -> Runtime:
    """Load plugins and configuration and the configured formatter, validating everything.

    ``config`` is a properties file or a conf directory (``--config``); ``overrides`` are raw
    ``key=value`` strings applied last. Raises ``ConfigError`` or ``PluginError`` with a message
    fit to show a user.
    """
    manager = create_plugin_manager(
        load_entry_points=load_entry_points, plugins=plugins,
        environ=dict(environ) if environ is not None else None,
    )
    path = resolve_config_path(config)
    extra = plugin_options(manager)
    first_pass = load_settings(path, extra_options=extra, environ=environ, overrides=overrides, warn_unknown=False)
    chosen = formatter_options(first_pass.mqtt_payload_formatter)
    extra += chosen
    settings = load_settings(path, extra_options=extra, environ=environ, overrides=overrides,
                             unused_keys=_other_formatters_keys(first_pass.mqtt_payload_formatter))
    formatter = load_formatter(settings, manager)
    manager.hook.iotdb_configure(settings=settings, plugins=manager)
    return Runtime(settings, manager, formatter)


def _other_formatters_keys(chosen: str) -> set[str]:
    """Keys declared by the installed formatters other than ``chosen`` (the shipped configuration lists them)."""
    keys: set[str] = set()
    for entry in installed_formatters():
        if entry.name == chosen:
            continue
        try:
            keys.update(option.key for option in formatter_options(entry.name))
        except PluginError:  # a broken formatter that is not used: its keys stay unknown
            continue
    return keys


def open_engine(runtime: Runtime) -> StorageBackend:
    """Open the storage engine: a plugin's backend (``iotdb_storage_backend``) or the built-in one.

    Raises PluginError when the plugin's backend lacks a call of :class:`StorageBackend`, so a backend
    that misses one fails at startup rather than on the first write or query that needs it.
    """
    data_dir = Path(runtime.settings.data_dir)
    backend = runtime.plugins.hook.iotdb_storage_backend(data_dir=data_dir, settings=runtime.settings)
    if backend is not None:
        missing = missing_calls(backend)
        if missing:
            raise PluginError(
                f"the storage backend {type(backend).__qualname__} supplied by iotdb_storage_backend lacks "
                f"{', '.join(missing)} (see iotdb_core.backend.StorageBackend)"
            )
        return backend
    from iotdb_core.storage.engine import Engine  # noqa: PLC0415 - storage only once an engine is opened

    return Engine.open(data_dir, runtime.settings, runtime.plugins)


def missing_calls(backend: object) -> list[str]:
    """The members of :class:`StorageBackend` that ``backend`` does not have."""
    members = sorted(name for name in vars(StorageBackend) if not name.startswith("_"))
    return [name for name in members if not hasattr(backend, name)]
