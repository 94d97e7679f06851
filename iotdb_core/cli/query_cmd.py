"""``iotdb query "SQL"``: run one statement against a server or a data directory and print its result."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any, TextIO

import ujson

from iotdb_core.cli.connection import Backend, add_connection_arguments, add_help_argument, connect
from iotdb_core.cli.output import Result, TimeFormatter, boxed_table, write_csv, write_json

FORMATS = ("table", "csv", "json")
SUCCESS_MESSAGE = "Msg: The statement is executed successfully."


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "query", add_help=False, help="run one SQL statement and print its result",
        description="Run one statement on a running server (its native RPC port, -h/-p, by default; its REST API "
        "with --url) or directly on a data directory no server holds (--data-dir), and print the result as an "
        "IoTDB CLI table, CSV or JSON. A statement error prints one line and exits 2.",
    )
    parser.add_argument("sql", metavar="SQL", nargs="?", help="the statement, e.g. \"SELECT * FROM root.sg.**\"")
    parser.add_argument("-e", "--execute", metavar="SQL", help="the statement (IoTDB CLI's spelling of SQL)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    add_output_arguments(parser)
    add_connection_arguments(parser)
    add_help_argument(parser)
    parser.set_defaults(handler=run)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--time-format`` and ``--max-rows``, shared with ``iotdb sql``."""
    parser.add_argument(
        "--time-format", choices=("iso", "epoch"),
        help="times as ISO 8601 in the local zone or as integers (default: iso, epoch for --format json)",
    )
    parser.add_argument(
        "--max-rows", type=int, metavar="N",
        help="refuse results of more rows (default: no limit; with --url the server's "
        "rest_query_default_row_size_limit)",
    )


def quiet_logging(args: argparse.Namespace) -> None:
    """Keep the engine's and plugins' INFO lines out of command output unless ``-v``."""
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(logging.WARNING)


def clean_statement(sql: str) -> str:
    """A statement without surrounding blanks and trailing semicolons."""
    return sql.strip().rstrip(";").strip()


def print_table(result: Result | None, elapsed: float, formatter: TimeFormatter, out: TextIO) -> None:
    """IoTDB CLI output: the table, ``Total line number = N`` and ``It costs X s``."""
    if result is None:
        out.write(SUCCESS_MESSAGE + "\n")
    elif len(result) == 0:
        out.write(boxed_table(result.header, []) + "\nEmpty set.\n")
    else:
        out.write(boxed_table(result.header, list(result.rows(formatter))) + "\n")
        out.write(f"Total line number = {len(result)}\n")
    out.write(f"It costs {elapsed:.3f}s\n")


def print_result(result: Result | None, fmt: str, formatter: TimeFormatter, out: TextIO, elapsed: float) -> None:
    """Print a statement's outcome in ``fmt``."""
    if fmt == "table":
        print_table(result, elapsed, formatter, out)
    elif result is None:
        if fmt == "json":
            out.write(ujson.dumps({"code": 200, "message": "SUCCESS_STATUS"}) + "\n")
    elif fmt == "csv":
        write_csv(out, result.header, result.rows(formatter))
    else:
        write_json(out, result.header, result.rows(formatter))


def time_formatter(args: argparse.Namespace, backend: Backend, fmt: str) -> TimeFormatter:
    style = args.time_format or ("epoch" if fmt == "json" else "iso")
    return TimeFormatter(backend.precision, style)


def run(args: argparse.Namespace) -> int:
    """Run the statement and print its result."""
    quiet_logging(args)
    if args.sql is not None and args.execute is not None:
        print("iotdb query: error: give the statement once: as SQL or as -e SQL", file=sys.stderr)
        return 2
    sql = clean_statement(args.sql if args.sql is not None else args.execute or "")
    if not sql:
        print("iotdb query: error: the statement is empty", file=sys.stderr)
        return 2
    with connect(args) as backend:
        started = time.perf_counter()
        result = backend.execute(sql, args.max_rows)
        elapsed = time.perf_counter() - started
        print_result(result, args.format, time_formatter(args, backend, args.format), sys.stdout, elapsed)
    return 0
