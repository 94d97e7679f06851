"""``iotdb``: the command-line entry point; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata

from iotdb_core import __version__
from iotdb_core.cli import (
    config_cmd,
    deadletter_cmd,
    export_cmd,
    formatters_cmd,
    import_cmd,
    plugins_cmd,
    query_cmd,
    sql_cmd,
    status_cmd,
    user_cmd,
)
from iotdb_core.errors import IoTDBError

CORE_SUBCOMMANDS = (
    formatters_cmd, plugins_cmd, config_cmd, user_cmd, deadletter_cmd, query_cmd, sql_cmd, export_cmd, import_cmd,
    status_cmd,
)
#: Entry-point group through which other packages (the MQTT service's ``serve``) add subcommands:
#: each entry point is a module with ``register(subparsers)``.
COMMAND_GROUP = "iotdb.commands"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="iotdb",
        description="A time-series database in the model of Apache IoTDB, with a built-in MQTT service.",
    )
    parser.add_argument("--version", action="version", version=f"iotdb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="data directory, for the commands that use one (may also follow the command)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry_point in sorted(metadata.entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name):
        entry_point.load().register(subparsers)
    for module in CORE_SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code. Errors are one line, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "data_dir") and not getattr(args, "takes_data_dir", False):
        parser.error(f"--data-dir does not apply to `iotdb {args.command}`")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except IoTDBError as exc:
        print(f"iotdb {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """The reader of standard output went away (``iotdb query ... | head -1``): end quietly, as `cat` does.

    Standard output is pointed at /dev/null so the interpreter's final flush does not fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
