"""Finding payload formatters by name (stevedore) and dispatching them through the plugin manager.

Formatters are entry points in the group ``iotdb.payload_formatters``; the entry-point name is the
value operators write in ``mqtt_payload_formatter``. The loaded formatter is registered in the plugin
manager as the implementation of ``iotdb_format_payload``, so other plugins can wrap it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy
from stevedore import DriverManager
from stevedore.exception import MultipleMatches, NoMatches

from iotdb_core.config import Option, Settings
from iotdb_core.errors import ConfigError, PluginError
from iotdb_core.formatter import FormatContext, PayloadFormatter, Row
from iotdb_core.hookspecs import hookimpl

FORMATTER_GROUP = "iotdb.payload_formatters"
CONFIG_KEY = "mqtt_payload_formatter"


@dataclass(frozen=True)
class FormatterEntry:
    """An installed formatter as the entry-point metadata describes it."""

    name: str
    target: str
    distribution: str
    version: str


def installed_formatters() -> list[FormatterEntry]:
    """Every formatter entry point installed, sorted by name, without importing any of them."""
    entries = []
    for entry_point in metadata.entry_points(group=FORMATTER_GROUP):
        dist = entry_point.dist
        entries.append(FormatterEntry(
            entry_point.name, entry_point.value,
            dist.name if dist else "unknown", dist.version if dist else "unknown",
        ))
    return sorted(entries, key=lambda entry: entry.name)


def _distribution_of(name: str, target: str) -> str:
    for entry in installed_formatters():
        if entry.name == name and entry.target == target:
            return f"{entry.distribution} {entry.version}"
    return "an unknown distribution"


def _raise_load_failure(_manager: Any, entry_point: Any, error: BaseException) -> None:
    raise PluginError(
        f"payload formatter entry point '{entry_point.name} = {entry_point.value}' from "
        f"{_distribution_of(entry_point.name, entry_point.value)} failed to load: "
        f"{type(error).__name__}: {error}"
    )


def formatter_class(name: str) -> type[PayloadFormatter]:
    """Import and return the formatter class registered as ``name``."""
    try:
        driver = DriverManager(
            FORMATTER_GROUP, name, invoke_on_load=False,
            on_load_failure_callback=_raise_load_failure,
        )
    except NoMatches:
        installed = ", ".join(entry.name for entry in installed_formatters()) or "none"
        raise ConfigError(
            f"{CONFIG_KEY}={name}: no payload formatter named {name!r}; installed: {installed}"
        ) from None
    except MultipleMatches:
        sources = ", ".join(
            f"{entry.distribution} ({entry.target})" for entry in installed_formatters() if entry.name == name
        )
        raise ConfigError(
            f"{CONFIG_KEY}={name}: several distributions register a formatter named {name!r}: {sources}"
        ) from None
    cls = driver.driver
    if not (isinstance(cls, type) and issubclass(cls, PayloadFormatter)):
        raise PluginError(
            f"payload formatter entry point {name!r} ({_distribution_of(name, driver.extensions[0].entry_point.value)})"
            f" is {cls!r}, not a subclass of iotdb_core.PayloadFormatter"
        )
    return cls


def formatter_options(name: str) -> tuple[Option, ...]:
    """The configuration keys the formatter called ``name`` declares."""
    return tuple(formatter_class(name).options)


class FormatterHook:
    """Adapts a :class:`PayloadFormatter` to the ``iotdb_format_payload`` hook."""

    def __init__(self, formatter: PayloadFormatter) -> None:
        self.formatter = formatter

    @hookimpl
    def iotdb_format_payload(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        return self.formatter.format(topic, payload, context)


def load_formatter(settings: Settings, manager: pluggy.PluginManager) -> PayloadFormatter:
    """Instantiate the formatter named in ``settings`` and register it with ``manager``."""
    name = settings.mqtt_payload_formatter
    cls = formatter_class(name)
    try:
        formatter = cls(settings)
    except Exception as exc:
        raise PluginError(f"payload formatter {name!r} failed to start: {type(exc).__name__}: {exc}") from exc
    manager.register(FormatterHook(formatter), name=f"formatter:{name}")
    return formatter
