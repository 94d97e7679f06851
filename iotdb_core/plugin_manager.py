"""Building the plugin manager: the hookspecs, third-party plugins, and blocking by environment.

Third-party plugins register under the entry-point group ``iotdb``. ``IOTDB_DISABLE_PLUGINS``
(comma-separated entry-point names) blocks plugins before they load, so a misbehaving plugin can
be switched off without uninstalling it. After registration ``check_pending()`` runs, so an
implementation of a hook that does not exist (a misspelt name) fails at startup, not silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pluggy

from iotdb_core import hookspecs
from iotdb_core.errors import PluginError

ENTRY_POINT_GROUP = "iotdb"
DISABLE_ENV = "IOTDB_DISABLE_PLUGINS"


def disabled_plugin_names(environ: dict[str, str] | None = None) -> set[str]:
    """Names listed in ``IOTDB_DISABLE_PLUGINS``."""
    value = (os.environ if environ is None else environ).get(DISABLE_ENV, "")
    return {name.strip() for name in value.split(",") if name.strip()}


def create_plugin_manager(
    *, load_entry_points: bool = True, plugins: Iterable[object] = (), environ: dict[str, str] | None = None
) -> pluggy.PluginManager:
    """Return a plugin manager with the specs, the installed plugins and ``plugins`` registered."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for name in disabled_plugin_names(environ):
        manager.set_blocked(name)
    if load_entry_points:
        try:
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise PluginError(f"a plugin in entry-point group {ENTRY_POINT_GROUP!r} failed to load: "
                              f"{type(exc).__name__}: {exc}") from exc
    for plugin in plugins:
        manager.register(plugin)
    check(manager)
    return manager


def check(manager: pluggy.PluginManager) -> None:
    """Fail loudly when a registered plugin implements a hook that has no specification."""
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None


def hooks_of(manager: pluggy.PluginManager) -> dict[str, list[str]]:
    """Map each registered plugin's name to the hooks it implements."""
    table: dict[str, list[str]] = {}
    for plugin in manager.get_plugins():
        name = manager.get_name(plugin) or repr(plugin)
        table[name] = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
    return table
