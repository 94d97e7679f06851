"""iotdb_core: a time-series database core in the model of Apache IoTDB.

The public surface for plugin authors: :data:`hookimpl` to implement hooks, :class:`PayloadFormatter`,
:class:`Row`, :class:`FormatContext` and :class:`FormatError` to write payload formatters, and
:class:`Option` to declare configuration keys.
"""

from iotdb_core.config import Option, Settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import ConfigError, FormatError, IoTDBError, PluginError
from iotdb_core.formatter import FormatContext, PayloadFormatter, Row
from iotdb_core.hookspecs import FlushInfo, hookimpl

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
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
    "__version__",
    "hookimpl",
]
