"""``iotdb sql``: an interactive SQL shell in the manner of IoTDB's CLI.

On a terminal the shell reads with prompt_toolkit: line editing, a history kept in ``~/.iotdb_history``, and
statements over several lines (Enter inserts a new line until the statement ends with ``;``). Each result is
printed as an aligned table followed by ``Total line number = N`` and ``It costs X s``; an error prints
``Msg: <code>: <message>`` and the shell goes on. ``exit`` or ``quit`` (or Ctrl-D) leaves.

When standard input is not a terminal (a pipe or a file) the shell reads plain lines without prompts, runs
each ``;``-terminated statement (and a last one without ``;``), and exits 2 if any statement failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from iotdb_core.cli.connection import Backend, StatementError, add_connection_arguments, connect
from iotdb_core.cli.output import TimeFormatter
from iotdb_core.cli.query_cmd import add_output_arguments, print_table, quiet_logging
from iotdb_core.errors import IoTDBError

PROMPT = "IoTDB> "
CONTINUATION = "   ...> "
HISTORY_FILE = ".iotdb_history"
EXIT_WORDS = ("exit", "quit")


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "sql", help="interactive SQL shell",
        description="An interactive shell: statements end with ';' and may span lines; results print as "
        "tables with the row count and the time taken; 'exit' or 'quit' leaves. Reads a pipe or file on "
        "standard input without prompts.",
    )
    add_output_arguments(parser)
    parser.add_argument("--history", metavar="FILE", help=f"history file (default ~/{HISTORY_FILE})")
    add_connection_arguments(parser)
    parser.set_defaults(handler=run)


def split_statements(text: str) -> tuple[list[str], str]:
    """Complete statements (ending with ``;`` outside quotes) and the unfinished rest."""
    statements: list[str] = []
    quote: str | None = None
    start = 0
    for index, char in enumerate(text):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
        elif char == ";":
            statement = text[start:index].strip()
            if statement:
                statements.append(statement)
            start = index + 1
    return statements, text[start:]


def is_exit(text: str) -> bool:
    return text.strip().rstrip(";").strip().lower() in EXIT_WORDS


def is_complete(text: str) -> bool:
    """Whether Enter should submit ``text``: empty, an exit word, or ending with a statement's ``;``."""
    if not text.strip() or is_exit(text):
        return True
    statements, rest = split_statements(text)
    return bool(statements) and not rest.strip()


class Shell:
    """Runs statements against a backend and prints their outcome."""

    def __init__(self, backend: Backend, args: argparse.Namespace, out: TextIO) -> None:
        self.backend = backend
        self.time_style = args.time_format or "iso"
        self.max_rows = args.max_rows
        self.out = out
        self.failures = 0

    def run_statement(self, sql: str) -> None:
        started = time.perf_counter()
        try:
            result = self.backend.execute(sql, self.max_rows)
        except StatementError as exc:
            self.failures += 1
            self.out.write(f"Msg: {exc.code}: {exc.message}\n")
            return
        except IoTDBError as exc:
            self.failures += 1
            self.out.write(f"Msg: {exc}\n")
            return
        formatter = TimeFormatter(self.backend.precision, self.time_style)
        print_table(result, time.perf_counter() - started, formatter, self.out)
        self.out.flush()

    def feed(self, text: str) -> tuple[str, bool]:
        """Run the complete statements of ``text``; returns the unfinished rest and whether to exit."""
        statements, rest = split_statements(text)
        for statement in statements:
            if is_exit(statement):
                return "", True
            self.run_statement(statement)
        if is_exit(rest):
            return "", True
        return rest, False


def _plain_lines(stream: TextIO) -> Iterator[str]:
    yield from stream


def _run_plain(shell: Shell, lines: Iterator[str]) -> None:
    pending = ""
    for line in lines:
        pending, leave = shell.feed(pending + line)
        if leave:
            return
    if pending.strip() and not is_exit(pending):
        shell.run_statement(pending.strip())


def _run_interactive(shell: Shell, history: Path, out: TextIO) -> None:
    from prompt_toolkit import PromptSession  # noqa: PLC0415 - only on a terminal
    from prompt_toolkit.history import FileHistory  # noqa: PLC0415
    from prompt_toolkit.key_binding import KeyBindings  # noqa: PLC0415

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    history.parent.mkdir(parents=True, exist_ok=True)
    session: Any = PromptSession(
        history=FileHistory(str(history)), multiline=True, key_bindings=bindings,
        prompt_continuation=lambda *_args: CONTINUATION,
    )
    prompt: Callable[[], str] = lambda: session.prompt(PROMPT)  # noqa: E731
    out.write(f"Connected to {shell.backend.description}; statements end with ';', 'exit' leaves.\n")
    while True:
        try:
            text = prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        rest, leave = shell.feed(text)
        if leave:
            return
        if rest.strip():  # Enter on an unfinished statement is only possible via paste; run it as is
            shell.run_statement(rest.strip())


def run(args: argparse.Namespace) -> int:
    """Run the shell until exit or end of input."""
    quiet_logging(args)
    with connect(args) as backend:
        backend.check()
        shell = Shell(backend, args, sys.stdout)
        if sys.stdin.isatty() and sys.stdout.isatty():
            history = Path(args.history) if args.history else Path.home() / HISTORY_FILE
            _run_interactive(shell, history, sys.stdout)
            return 0
        _run_plain(shell, _plain_lines(sys.stdin))
        return 2 if shell.failures else 0
