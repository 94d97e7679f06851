"""``iotdb export``: series to CSV in IoTDB's export-csv layout, or to new TsFiles.

CSV (IoTDB's ``export-csv`` layout, aligned by time)::

    Time,root.sg.d1.s1,root.sg.d1.s2
    2024-01-01T00:00:00.000+01:00,1.5,true

A PATTERN is a series pattern in both modes (``root.sg.*.temp`` is every ``temp`` one level below ``root.sg``,
``root.sg.d3.*`` every series of ``root.sg.d3``): the series are those SHOW TIMESERIES lists for it. Nothing
matched is an error. The output is written under a temporary name (``FILE.partial``, ``*.tsfile.tmp``) and
renamed when complete, so an interrupted export leaves no complete-looking file: Ctrl-C stops after the page
being read, reports exactly what was written and exits 130 (a second Ctrl-C stops at once).

Times are ISO 8601 in the local zone (``--time-format iso``, the default) or integers in the database's
timestamp precision (``--time-format epoch``); a null is an empty cell; ``--data-type`` annotates each column
with its type (``root.sg.d1.s1(DOUBLE)``), which ``iotdb import`` uses. Rows are read page by page
(``SELECT <last nodes> FROM <the rest> WHERE time > <last> LIMIT <page>``, keeping only the matched series),
so memory stays bounded.

``--tsfile DIR`` writes new TsFiles holding exactly the selected series (with their encodings and compressors
where the TsFile writer supports them), named like IoTDB's (``<ms>-<n>-0-0.tsfile``) so ``load`` accepts them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from iotdb_core.cli.connection import (
    MAX_ROW_LIMIT,
    Backend,
    CliError,
    SeriesInfo,
    add_connection_arguments,
    add_help_argument,
    connect,
)
from iotdb_core.cli.output import TimeFormatter, write_csv
from iotdb_core.cli.query_cmd import clean_statement, quiet_logging
from iotdb_core.datatypes import DEFAULT_COMPRESSOR, DEFAULT_ENCODING, Compressor, TSDataType, TSEncoding
from iotdb_core.paths import PathError, split_path

DEFAULT_PAGE = 100_000
DEFAULT_FILE_POINTS = 10_000_000
#: Suffix of files being written; renamed away once a file is complete.
PARTIAL = ".partial"


class ExportInterrupted(CliError):
    """Ctrl-C during an export; the message says what was written and where."""

    exit_code = 130


class StopRequest:
    """Ctrl-C while exporting: the first one stops the export after the page being read (so what was written
    is known exactly), a second one at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "export", add_help=False, help="export series to CSV (IoTDB export-csv layout) or to TsFiles",
        description="Export the series matching PATTERN (default root.**) as CSV aligned by time, with a "
        "header 'Time,root.sg.d1.s1,...', to --output or standard output; or, with --tsfile DIR, as new "
        "TsFiles holding exactly those series.",
    )
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="series path patterns (default root.**)")
    parser.add_argument("-o", "--output", metavar="FILE", help="CSV file to write (default: standard output)")
    parser.add_argument("--query", metavar="SQL", help="export the result of this SELECT instead of PATTERNs")
    parser.add_argument("--time-format", choices=("iso", "epoch"), default="iso",
                        help="ISO 8601 in the local zone (default) or integer timestamps")
    parser.add_argument("--data-type", action="store_true",
                        help="annotate header columns with their type: root.sg.d1.s1(DOUBLE)")
    parser.add_argument("--tsfile", metavar="DIR", help="write TsFiles of the selected series into DIR")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE, metavar="ROWS",
                        help=f"rows read per request (default {DEFAULT_PAGE})")
    parser.add_argument("--points-per-file", type=int, default=DEFAULT_FILE_POINTS, metavar="N",
                        help=f"with --tsfile: start a new file after about N points (default {DEFAULT_FILE_POINTS})")
    add_connection_arguments(parser)
    add_help_argument(parser)
    parser.set_defaults(handler=run)


def progress(unit: str, total: int | None = None) -> Any:
    """A tqdm bar on standard error, shown only on a terminal and only for runs longer than a second."""
    from tqdm import tqdm  # noqa: PLC0415 - only the long-running commands need it

    return tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty(),
                delay=1.0, leave=False)


def _annotated(names: list[str], types: dict[str, TSDataType]) -> list[str]:
    return [f"{name}({types[name].value})" if name in types else name for name in names]


def _select_of(patterns: list[str]) -> str:
    """``SELECT <last nodes> FROM <prefixes>`` covering every series the patterns match (and maybe more)."""
    suffixes: dict[str, None] = {}
    prefixes: dict[str, None] = {}
    for pattern in patterns:
        try:
            nodes = split_path(pattern, allow_wildcards=True)
        except PathError as exc:
            raise CliError(f"pattern {pattern!r}: {exc}") from None
        if len(nodes) < 2 or nodes[0] != "root":
            raise CliError(f"pattern {pattern!r}: expected a series pattern such as root.sg.d1.s1 or root.sg.**")
        suffixes[nodes[-1]] = None
        prefixes[".".join(nodes[:-1])] = None
    return f"SELECT {', '.join(suffixes)} FROM {', '.join(prefixes)}"


def _pages(backend: Backend, select: str, page: int) -> Iterator[Any]:
    """Results of ``select`` page by page, in time order."""
    after: int | None = None
    while True:
        where = "" if after is None else f" WHERE time > {after}"
        result = backend.query(f"{select}{where} LIMIT {page}", page)
        yield result
        if len(result) < page or not result.timestamps:
            return
        after = result.timestamps[-1]


def _keep(result: Any, names: list[str]) -> None:
    """Reduce a page to the columns ``names`` (None where it lacks one) and drop the rows left empty."""
    index = {name: position for position, name in enumerate(result.names)}
    columns = [result.columns[index[name]] if name in index else [None] * len(result) for name in names]
    keep = [row for row in range(len(result)) if any(column[row] is not None for column in columns)]
    if len(keep) != len(result):
        columns = [[column[row] for row in keep] for column in columns]
        result.timestamps = [result.timestamps[row] for row in keep]
        result.size = len(keep)
    result.columns = columns
    result.names = names


def export_csv(backend: Backend, args: argparse.Namespace, selected: list[SeriesInfo], patterns: list[str],
               out: TextIO, written: list[int], stop: StopRequest) -> tuple[int, int]:
    """Write the CSV of the ``selected`` series; returns (rows, columns). ``written[0]`` counts rows as they go."""
    formatter = TimeFormatter(backend.precision, args.time_format)
    if args.query:
        sql = clean_statement(args.query)
        result = backend.query(sql, MAX_ROW_LIMIT)
        types = {s.path: s.data_type for s in backend.series(["root.**"])} if args.data_type else {}
        formatter = TimeFormatter(backend.precision, args.time_format)  # the precision is known now
        names = _annotated(result.names, types)
        header: list[str] | None = (["Time"] if result.has_time else []) + names
        return write_csv(out, header, result.rows(formatter)), len(result.names)
    types = {s.path: s.data_type for s in selected} if args.data_type else {}
    names = [info.path for info in selected]
    write_csv(out, ["Time", *_annotated(names, types)], [])
    with progress(" rows") as bar:
        for result in _pages(backend, _select_of(patterns), args.page_size):
            formatter = TimeFormatter(backend.precision, args.time_format)
            _keep(result, names)  # the SELECT may reach series the patterns do not match
            count = write_csv(out, None, result.rows(formatter))
            written[0] += count
            bar.update(count)
            stop.check()
    return written[0], len(names)


def _encoding(info: SeriesInfo) -> tuple[TSEncoding, Compressor]:
    from iotdb_core.storage.tsfile_io import check_encoding  # noqa: PLC0415 - tsfile only for --tsfile

    try:
        encoding = TSEncoding(info.encoding)
        check_encoding(info.data_type, encoding)
    except ValueError:
        encoding = DEFAULT_ENCODING[info.data_type]
    try:
        compressor = Compressor(info.compressor)
    except ValueError:
        compressor = DEFAULT_COMPRESSOR
    return encoding, compressor


def export_tsfiles(backend: Backend, args: argparse.Namespace, selected: list[SeriesInfo],
                   done: list[int], stop: StopRequest) -> tuple[int, int, int]:
    """Write TsFiles of the ``selected`` series; returns (files, series, points). ``done`` is kept at (files,
    series, points) of the complete files so far, for the report of an interrupted run."""
    from iotdb_core.storage.tsfile_io import SeriesData, write_tsfile  # noqa: PLC0415

    directory = Path(args.tsfile)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time() * 1000)
    batch: list[Any] = []
    pending = 0
    files = points = exported = 0

    def flush() -> None:
        nonlocal batch, pending, files
        if not batch:
            return
        path = directory / f"{stamp}-{files + 1}-0-0.tsfile"
        try:
            write_tsfile(path, batch)  # written as <path>.tmp and renamed once complete
        except (OSError, ValueError, TypeError) as exc:
            raise CliError(f"writing {path}: {exc}") from None
        files += 1
        done[:] = [files, exported, points]
        batch, pending = [], 0

    page = backend.page_size and args.page_size
    with progress(" points") as bar:
        for info in selected:
            stamps_parts, value_parts = [], []
            after: int | None = None
            while True:
                stamps, values = backend.read_series(info, after, page)
                if len(stamps):
                    stamps_parts.append(stamps)
                    value_parts.append(values)
                    bar.update(len(stamps))
                stop.check()
                if page is None or len(stamps) < page:
                    break
                after = int(stamps[-1])
            if not stamps_parts:
                continue
            stamps, values = _concat(stamps_parts, value_parts)
            encoding, compressor = _encoding(info)
            batch.append(SeriesData(info.device, info.measurement, info.data_type, encoding, compressor,
                                    stamps, values))
            pending += len(stamps)
            points += len(stamps)
            exported += 1
            if pending >= args.points_per_file:
                flush()
        flush()
    return files, exported, points


def _concat(stamps_parts: list[Any], value_parts: list[Any]) -> tuple[Any, Any]:
    import numpy as np  # noqa: PLC0415

    if len(stamps_parts) == 1:
        return stamps_parts[0], value_parts[0]
    stamps = np.concatenate(stamps_parts)
    if isinstance(value_parts[0], list):
        return stamps, [value for part in value_parts for value in part]
    return stamps, np.concatenate(value_parts)


def run(args: argparse.Namespace) -> int:
    """Export."""
    quiet_logging(args)
    if args.page_size <= 0 or args.points_per_file <= 0:
        raise CliError("--page-size and --points-per-file must be positive")
    patterns = args.patterns or ["root.**"]
    if args.query and args.patterns:
        raise CliError("give either PATTERNs or --query, not both")
    if args.query and args.tsfile:
        raise CliError("--tsfile exports PATTERNs, not --query results")
    with connect(args) as backend:
        backend.check()
        selected: list[SeriesInfo] = []
        if not args.query:
            _select_of(patterns)  # each pattern checked before any lookup
            selected = backend.series(patterns)
            if not selected:
                raise CliError(f"no series matches {' '.join(patterns)} (see SHOW TIMESERIES); nothing exported")
        if args.tsfile:
            done = [0, 0, 0]
            try:
                with StopRequest() as stop:
                    files, series, points = export_tsfiles(backend, args, selected, done, stop)
            except KeyboardInterrupt:
                raise ExportInterrupted(
                    f"interrupted: {done[0]} complete TsFile(s) with {done[2]} points of {done[1]} series in "
                    f"{args.tsfile}; a file being written is left as *.tsfile.tmp"
                ) from None
            print(f"exported {points} points of {series} series into {files} TsFile(s) in {args.tsfile}",
                  file=sys.stderr)
        if args.tsfile and not args.output:
            return 0
        if not args.output or args.output == "-":
            written = [0]
            try:
                with StopRequest() as stop:
                    export_csv(backend, args, selected, patterns, sys.stdout, written, stop)
            except KeyboardInterrupt:
                raise ExportInterrupted(f"interrupted after {written[0]} rows") from None
            return 0
        rows, columns = _export_csv_file(backend, args, selected, patterns, Path(args.output))
        print(f"exported {rows} rows of {columns} column(s) to {args.output}", file=sys.stderr)
    return 0


def _export_csv_file(backend: Backend, args: argparse.Namespace, selected: list[SeriesInfo], patterns: list[str],
                     target: Path) -> tuple[int, int]:
    """Write the CSV to ``FILE.partial`` and rename it to ``FILE`` once complete."""
    partial = target.with_name(target.name + PARTIAL)
    written = [0]
    with contextlib.ExitStack() as stack:
        try:
            out: TextIO = stack.enter_context(open(partial, "w", encoding="utf-8", newline=""))
        except OSError as exc:
            raise CliError(f"cannot write {partial}: {exc.strerror or exc}") from None
        try:
            with StopRequest() as stop:
                rows, columns = export_csv(backend, args, selected, patterns, out, written, stop)
        except KeyboardInterrupt:
            raise ExportInterrupted(
                f"interrupted: {written[0]} rows written to {partial}; {target} was not written"
            ) from None
    partial.replace(target)
    return rows, columns
