"""``iotdb sql``: an interactive SQL shell in the manner of IoTDB's CLI.

On a terminal the shell reads with prompt_toolkit: line editing, a history kept in ``~/.iotdb_history``, and
statements over several lines (Enter inserts a new line until the statement ends with ``;``). Each result is
printed as an aligned table followed by ``Total line number = N`` and ``It costs X s``; an error prints
``Msg: <code>: <message>`` and the shell goes on. ``exit`` or ``quit`` (or Ctrl-D) leaves; ``help`` lists the
shell's commands and statements.

On a terminal a large result is shown ``--max-display`` rows at a time (IoTDB CLI's ``max_display_num``, 1000 by
default): after each page the shell asks to press Enter for more or ``q`` to stop. ``-e "statement"`` runs the
statements given and exits, as IoTDB's CLI does.

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

from iotdb_core.cli.connection import Backend, StatementError, add_connection_arguments, add_help_argument, connect
from iotdb_core.cli.output import Result, TimeFormatter, boxed_table
from iotdb_core.cli.query_cmd import add_output_arguments, print_table, quiet_logging
from iotdb_core.errors import IoTDBError

PROMPT = "IoTDB> "
CONTINUATION = "   ...> "
HISTORY_FILE = ".iotdb_history"
EXIT_WORDS = ("exit", "quit")
HELP_WORDS = ("help", "?")
#: Rows shown at once on a terminal before the shell asks to go on (IoTDB CLI's ``max_display_num``).
MAX_DISPLAY = 1000
MORE_PROMPT = "Reach the max_display_num = {count}. Press ENTER to show more, input 'q' to quit."
HELP_TEXT = """\
Statements end with ';' and may span lines. Some of them (see docs/sql.md):
  SELECT s1, s2 FROM root.sg.d1 WHERE time >= 2024-01-01T00:00:00 LIMIT 10;
  SELECT count(s1), avg(s1) FROM root.sg.d1 GROUP BY ([0, 100), 10ms);
  SELECT LAST * FROM root.sg.**;
  SHOW DATABASES; SHOW DEVICES; SHOW TIMESERIES root.sg.**; COUNT TIMESERIES;
  INSERT INTO root.sg.d1(timestamp, s1) VALUES (1, 2.0);
  CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=DOUBLE, ENCODING=GORILLA;
  DELETE FROM root.sg.d1.s1 WHERE time < 100; SET TTL TO root.sg 3600000;
Shell commands:
  help            this text
  exit, quit      leave the shell (Ctrl-D too; Ctrl-C clears the input)
Large results are shown {count} rows at a time (--max-display): Enter shows more, q stops.
"""


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "sql", add_help=False, help="interactive SQL shell",
        description="An interactive shell: statements end with ';' and may span lines; results print as "
        "tables with the row count and the time taken; 'exit' or 'quit' leaves. Reads a pipe or file on "
        "standard input without prompts.",
    )
    add_output_arguments(parser)
    parser.add_argument("-e", "--execute", metavar="SQL", action="append",
                        help="run this statement (or ';'-separated statements) and exit; may be repeated")
    parser.add_argument("--max-display", "-maxPRC", type=int, default=MAX_DISPLAY, metavar="N",
                        help=f"rows shown at once on a terminal before asking for more (default {MAX_DISPLAY})")
    parser.add_argument("--history", metavar="FILE", help=f"history file (default ~/{HISTORY_FILE})")
    add_connection_arguments(parser)
    add_help_argument(parser)
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


def is_help(text: str) -> bool:
    return text.strip().rstrip(";").strip().lower() in HELP_WORDS


def is_complete(text: str) -> bool:
    """Whether Enter should submit ``text``: empty, an exit word, or ending with a statement's ``;``."""
    if not text.strip() or is_exit(text) or is_help(text):
        return True
    statements, rest = split_statements(text)
    return bool(statements) and not rest.strip()


class Shell:
    """Runs statements against a backend and prints their outcome."""

    def __init__(self, backend: Backend, args: argparse.Namespace, out: TextIO,
                 ask_more: Callable[[str], bool] | None = None) -> None:
        self.backend = backend
        self.time_style = args.time_format or "iso"
        self.max_rows = args.max_rows
        self.max_display = max(1, int(getattr(args, "max_display", MAX_DISPLAY) or MAX_DISPLAY))
        self.out = out
        self.failures = 0
        #: On a terminal: shows the question and returns whether to show the next page (None: show all rows).
        self.ask_more = ask_more

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
        elapsed = time.perf_counter() - started
        if result is None or self.ask_more is None or len(result) <= self.max_display:
            print_table(result, elapsed, formatter, self.out)
        else:
            self._paged(result, elapsed, formatter)
        self.out.flush()

    def _paged(self, result: Result, elapsed: float, formatter: TimeFormatter) -> None:
        """Print ``max_display`` rows at a time, asking before each further page."""
        assert self.ask_more is not None
        rows = result.rows(formatter)
        shown = 0
        while True:
            page = [row for _, row in zip(range(self.max_display), rows, strict=False)]
            if not page:
                break
            self.out.write(boxed_table(result.header, page) + "\n")
            shown += len(page)
            if shown >= len(result):
                break
            self.out.flush()
            if not self.ask_more(MORE_PROMPT.format(count=self.max_display)):
                break
        self.out.write(f"Total line number = {len(result)}" + (f" (shown {shown})" if shown < len(result) else "")
                       + f"\nIt costs {elapsed:.3f}s\n")

    def feed(self, text: str) -> tuple[str, bool]:
        """Run the complete statements of ``text``; returns the unfinished rest and whether to exit."""
        statements, rest = split_statements(text)
        for statement in statements:
            if is_exit(statement):
                return "", True
            if is_help(statement):
                self.out.write(HELP_TEXT.format(count=self.max_display))
                continue
            self.run_statement(statement)
        if is_exit(rest):
            return "", True
        if is_help(rest):
            self.out.write(HELP_TEXT.format(count=self.max_display))
            return "", False
        return rest, False


def _ask_more(question: str) -> bool:
    """Ask on the terminal whether to show the next page: Enter goes on, ``q`` (or end of input) stops."""
    try:
        answer = input(question + "\n")
    except EOFError:
        return False
    return answer.strip().lower() not in ("q", "quit")


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
    out.write(f"Connected to {shell.backend.description}; statements end with ';', 'help' lists commands, "
              "'exit' leaves.\n")
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
        terminal = sys.stdin.isatty() and sys.stdout.isatty()
        shell = Shell(backend, args, sys.stdout, _ask_more if terminal else None)
        if args.execute:
            _run_plain(shell, iter([statement + ";\n" for statement in args.execute]))
            return 2 if shell.failures else 0
        if terminal:
            history = Path(args.history) if args.history else Path.home() / HISTORY_FILE
            _run_interactive(shell, history, sys.stdout)
            return 0
        _run_plain(shell, _plain_lines(sys.stdin))
        return 2 if shell.failures else 0
