"""``iotdb formatters``: the payload formatters installed, without importing them."""

from __future__ import annotations

import argparse
from typing import Any

from iotdb_core.cli.table import format_table
from iotdb_core.formatter_loader import installed_formatters


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "formatters", help="list installed payload formatters",
        description="List the payload formatters installed (entry-point group iotdb.payload_formatters). "
        "Choose one by name with mqtt_payload_formatter=NAME in the configuration file.",
    )
    parser.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    """Print name, distribution, version and object of each formatter."""
    rows = [[entry.name, entry.distribution, entry.version, entry.target] for entry in installed_formatters()]
    print(format_table(["NAME", "DISTRIBUTION", "VERSION", "OBJECT"], rows))
    return 0
