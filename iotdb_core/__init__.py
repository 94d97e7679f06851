"""iotdb_core: a time-series database core in the model of Apache IoTDB.

The public surface for plugin authors: :data:`hookimpl` to implement hooks, :class:`PayloadFormatter`,
:class:`Row`, :class:`FormatContext` and :class:`FormatError` to write payload formatters, and
:class:`Option` to declare configuration keys. ``from iotdb_core import Engine`` gives the storage engine;
it is imported on first use, so formatter authors do not pay for loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iotdb_core.config import Option, Settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import ConfigError, FormatError, IoTDBError, PluginError
from iotdb_core.formatter import FormatContext, PayloadFormatter
from iotdb_core.hookspecs import hookimpl
from iotdb_core.model import FlushInfo, Row, Tablet

if TYPE_CHECKING:
    from iotdb_core.storage.engine import Engine

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Engine",
    "FlushInfo",
    "FormatContext",
    "FormatError",
    "IoTDBError",
    "Option",
    "PayloadFormatter",
    "PluginError",
    "Row",
    "Settings",
    "TSDataType",
    "Tablet",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    """Import :class:`~iotdb_core.storage.Engine` on first use (see the module docstring)."""
    if name == "Engine":
        from iotdb_core.storage.engine import Engine  # noqa: PLC0415

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
