"""pytest plugin shipped with the distribution (entry point ``pytest11: iotdb``).

Fixtures for plugin authors and for this project's own tests:

* ``iotdb_settings`` — embedded defaults with ``data_dir`` in a temporary directory;
* ``iotdb_engine`` — an open storage engine on that directory, closed after the test;
* ``iotdb_plugin_manager`` — a plugin manager with the hook specifications and no installed plugins,
  so a test registers exactly the plugins it means to test;
* ``iotdb_server`` — ``iotdb serve`` running as a subprocess on a free loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from iotdb_core.config import Settings, default_settings
from iotdb_core.plugin_manager import create_plugin_manager
from iotdb_core.storage.engine import Engine
from iotdb_core.testing.server import ServerProcess


@pytest.fixture
def iotdb_settings(tmp_path: Path) -> Settings:
    """Default settings with the data directory under the test's temporary directory."""
    return default_settings().replace(data_dir=str(tmp_path / "data"))


@pytest.fixture
def iotdb_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager holding only the hook specifications."""
    return create_plugin_manager(load_entry_points=False)


@pytest.fixture
def iotdb_engine(iotdb_settings: Settings, iotdb_plugin_manager: pluggy.PluginManager) -> Iterator[Engine]:
    """An open engine on a temporary data directory, closed when the test ends."""
    engine = Engine.open(Path(iotdb_settings.data_dir), iotdb_settings, iotdb_plugin_manager)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def iotdb_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running ``iotdb serve`` subprocess on a free loopback port (``.host``, ``.port``, ``.data_dir``).

    It is stopped with SIGTERM when the test ends. Tests that need other settings build a
    :class:`~iotdb_core.testing.server.ServerProcess` themselves.
    """
    with ServerProcess(tmp_path / "server") as server:
        yield server
