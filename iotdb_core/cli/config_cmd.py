"""``iotdb config``: the effective configuration, or every key with its default."""

from __future__ import annotations

import argparse
from typing import Any

from iotdb_core.bootstrap import configure, plugin_options
from iotdb_core.cli.arguments import add_location_arguments
from iotdb_core.cli.table import format_table
from iotdb_core.config import CORE_OPTIONS, render_properties
from iotdb_core.formatter_loader import formatter_options, installed_formatters
from iotdb_core.plugin_manager import create_plugin_manager


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "config", help="show the effective configuration or the defaults",
        description="Validate the configuration and show each key's value and where it came from. "
        "With --defaults, print a properties file listing every key with its default and meaning.",
    )
    add_location_arguments(parser, data_dir=False)
    parser.add_argument("--defaults", action="store_true", help="print every key with its default and meaning")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the effective settings, or the documented defaults."""
    if args.defaults:
        manager = create_plugin_manager()
        formatters = [option for entry in installed_formatters() for option in formatter_options(entry.name)]
        print(render_properties([*CORE_OPTIONS, *formatters, *plugin_options(manager)]))
        return 0
    runtime = configure(args.config)
    settings = runtime.settings
    rows = [[key, _render(value), settings.sources.get(key, "default")] for key, value in settings.values.items()]
    print(format_table(["KEY", "VALUE", "FROM"], rows))
    return 0


def _render(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
