"""``iotdb serve``: open the storage engine and run the MQTT service until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from iotdb_core.bootstrap import configure
from iotdb_core.cli.arguments import add_location_arguments, data_dir_override
from iotdb_mqtt import event_loop
from iotdb_mqtt.service import run_service


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "serve", help="run the database with its MQTT service",
        description="Open the data directory and run the MQTT service until SIGINT or SIGTERM, which finish "
        "in-flight publishes, flush and exit 0. Without --config the embedded defaults apply.",
    )
    add_location_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stopped."""
    runtime = configure(args.config, overrides=data_dir_override(args))
    event_loop.run(lambda: run_service(runtime), runtime.settings.mqtt_event_loop)
    return 0
