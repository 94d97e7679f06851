"""``iotdb plugins``: the pluggy plugins installed and the hooks each implements."""

from __future__ import annotations

import argparse
from typing import Any

from iotdb_core.cli.table import format_table
from iotdb_core.plugin_manager import create_plugin_manager, hooks_of


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "plugins", help="list installed plugins and the hooks they implement",
        description="List the plugins installed in entry-point group 'iotdb' (except those blocked by "
        "IOTDB_DISABLE_PLUGINS=name,...) with the hooks each implements.",
    )
    parser.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    """Print each plugin's name, distribution and hooks."""
    manager = create_plugin_manager()
    distributions = {
        manager.get_name(plugin): f"{dist.project_name} {dist.version}"
        for plugin, dist in manager.list_plugin_distinfo()
    }
    rows = [[name, distributions.get(name, ""), ", ".join(hooks)] for name, hooks in sorted(hooks_of(manager).items())]
    if not rows:
        print("no plugins installed (entry-point group 'iotdb')")
        return 0
    print(format_table(["NAME", "DISTRIBUTION", "HOOKS"], rows))
    return 0
