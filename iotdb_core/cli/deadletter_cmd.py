"""``iotdb deadletter``: show the payloads that could not be stored, and why."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from iotdb_core.cli.arguments import add_location_arguments, settings_from
from iotdb_core.cli.table import format_table
from iotdb_core.deadletter import DeadLetterLog


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "deadletter", help="show rejected payloads kept in the dead-letter log",
        description="Show the payloads the service could not store (bad format, bad path, value of the wrong "
        "type), with time, client, topic and reason, oldest first.",
    )
    add_location_arguments(parser)
    parser.add_argument("--tail", type=int, metavar="N", help="show only the newest N records")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, payload included")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the kept records."""
    settings = settings_from(args)
    log = DeadLetterLog(Path(settings.data_dir), settings.mqtt_dead_letter_max_bytes)
    letters = list(log.read())
    if args.tail is not None:
        letters = letters[-args.tail:] if args.tail > 0 else []
    if args.json:
        for letter in letters:
            print(json.dumps(asdict(letter), ensure_ascii=False))
        return 0
    if not letters:
        print("the dead-letter log is empty")
        return 0
    rows = [[letter.time, letter.client_id, letter.topic, letter.reason, _preview(letter.payload)]
            for letter in letters]
    print(format_table(["TIME", "CLIENT", "TOPIC", "REASON", "PAYLOAD"], rows))
    return 0


def _preview(payload: str, width: int = 40) -> str:
    flat = payload.replace("\n", "\\n")
    return flat if len(flat) <= width else flat[: width - 3] + "..."
