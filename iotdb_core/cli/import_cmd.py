"""``iotdb import FILE.csv``: load a CSV in IoTDB's export-csv layout into a server or a data directory.

Two layouts are read, as IoTDB's ``import-csv`` reads them:

* aligned by time: ``Time,root.sg.d1.s1,root.sg.d1.s2(DOUBLE),...`` — one column per series;
* aligned by device: ``Time,Device,s1,s2(INT32),...`` — the device in the second column.

Times are integers (in the database's timestamp precision) or ISO 8601 (local zone when none is given).
A column's type is its header annotation (``(DOUBLE)``), else the type of the existing series, else inferred
from every value in the file: ``true``/``false`` BOOLEAN, integers INT64, other numbers (and NaN, Infinity)
DOUBLE, anything else TEXT. An empty cell is a null. Rows are written in batches (``--batch-size``), one
tablet per device per batch; a value that does not parse stops the import with its line and column.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from iotdb_core.cli.connection import (
    Backend,
    CliError,
    StatementError,
    add_connection_arguments,
    add_help_argument,
    connect,
)
from iotdb_core.cli.export_cmd import progress
from iotdb_core.cli.output import parse_time
from iotdb_core.cli.query_cmd import quiet_logging
from iotdb_core.datatypes import FLOAT_MAX, TSDataType
from iotdb_core.paths import PathError, canonical_node, split_path

DEFAULT_BATCH = 10_000
#: Up to this many devices, existing series are looked up device by device; beyond, all at once.
_DEVICE_LOOKUPS = 50
_ANNOTATION = re.compile(r"^(?P<name>.+?)\s*\((?P<type>[A-Za-z0-9]+)\)$")
#: Values above FLOAT_MAX but below this round to FLOAT_MAX in float32 (``3.4028235e+38`` is FLOAT's maximum).
_FLOAT_ROUNDING_LIMIT = 2.0**128 - 2.0**103
_INTEGER = re.compile(r"[+-]?\d+")
_TRUE_FALSE = {"true": True, "false": False}
_FLOAT_WORDS = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
                "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}


def register(subparsers: Any) -> None:
    """Add the subcommand."""
    parser = subparsers.add_parser(
        "import", add_help=False, help="import a CSV (IoTDB export-csv layout) into a server or data directory",
        description="Read FILE.csv with a header 'Time,root.sg.d1.s1[(TYPE)],...' (or 'Time,Device,s1,...') "
        "and write its values. Types come from the header annotations, the existing series, or inference.",
    )
    parser.add_argument("file", metavar="FILE.csv", help="the CSV file to import")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="ROWS",
                        help=f"rows written per request (default {DEFAULT_BATCH})")
    add_connection_arguments(parser)
    add_help_argument(parser)
    parser.set_defaults(handler=run)


@dataclass
class Column:
    """One value column of the file: where it goes and how its cells parse."""

    index: int
    label: str
    device: str | None
    measurement: str
    data_type: TSDataType | None


def _measurement(text: str, label: str) -> str:
    try:
        nodes = split_path("root." + text)
    except PathError as exc:
        raise CliError(f"header column {label!r}: {exc}") from None
    if len(nodes) != 2:
        raise CliError(f"header column {label!r}: a measurement is one node (quote dots with backquotes)")
    return canonical_node(nodes[1])


def _series(text: str, label: str) -> tuple[str, str]:
    try:
        nodes = split_path(text)
    except PathError as exc:
        raise CliError(f"header column {label!r}: {exc}") from None
    if len(nodes) < 3:
        raise CliError(f"header column {label!r}: a series path is root.<database>...<device>.<measurement>")
    device = ".".join(nodes[:-1])
    return device, nodes[-1]


def parse_header(header: list[str]) -> tuple[bool, list[Column]]:
    """``(by_device, value columns)`` of a header row."""
    if not header or header[0].strip().lower() not in ("time", "timestamp"):
        raise CliError("the first header column must be Time (IoTDB's export-csv layout)")
    by_device = len(header) > 1 and header[1].strip().lower() == "device"
    columns: list[Column] = []
    for index in range(2 if by_device else 1, len(header)):
        label = header[index].strip()
        if not label:
            raise CliError(f"header column {index + 1} is empty")
        name, data_type = label, None
        match = _ANNOTATION.match(label)
        if match:
            try:
                data_type = TSDataType.parse(match.group("type"))
                name = match.group("name")
            except ValueError:
                pass  # not an annotation: part of the name
        if by_device:
            columns.append(Column(index, label, None, _measurement(name, label), data_type))
        else:
            device, measurement = _series(name, label)
            columns.append(Column(index, label, device, measurement, data_type))
    return by_device, columns


def _kind(cell: str) -> TSDataType:
    lowered = cell.lower()
    if lowered in _TRUE_FALSE:
        return TSDataType.BOOLEAN
    if _INTEGER.fullmatch(cell):
        return TSDataType.INT64
    if lowered in _FLOAT_WORDS:
        return TSDataType.DOUBLE
    try:
        float(cell)
    except ValueError:
        return TSDataType.TEXT
    return TSDataType.DOUBLE


def _merge(current: TSDataType | None, seen: TSDataType) -> TSDataType:
    if current is None or current is seen:
        return seen
    numbers = {TSDataType.INT64, TSDataType.DOUBLE}
    if current in numbers and seen in numbers:
        return TSDataType.DOUBLE
    return TSDataType.TEXT


def infer_types(rows: Iterator[list[str]], columns: list[Column]) -> None:
    """Fill the type of every column without one from all its values (columns without values stay None)."""
    open_columns = [column for column in columns if column.data_type is None]
    inferred: dict[int, TSDataType | None] = {column.index: None for column in open_columns}
    for row in rows:
        for column in open_columns:
            if column.index < len(row):
                cell = row[column.index].strip()
                if cell and inferred[column.index] is not TSDataType.TEXT:
                    inferred[column.index] = _merge(inferred[column.index], _kind(cell))
    for column in open_columns:
        column.data_type = inferred[column.index]


def converter(data_type: TSDataType) -> Callable[[str], Any]:
    """Parser of a non-empty cell for ``data_type``; raises ValueError with the reason."""
    if data_type is TSDataType.TEXT:
        return lambda cell: cell
    if data_type is TSDataType.BOOLEAN:

        def boolean(cell: str) -> bool:
            try:
                return _TRUE_FALSE[cell.strip().lower()]
            except KeyError:
                raise ValueError(f"{cell!r} is not a BOOLEAN (true or false)") from None

        return boolean
    if data_type in (TSDataType.INT32, TSDataType.INT64):

        def integer(cell: str) -> int:
            try:
                return int(cell)
            except ValueError:
                raise ValueError(f"{cell!r} is not an integer for {data_type.value}") from None

        return integer

    def number(cell: str) -> float:
        special = _FLOAT_WORDS.get(cell.strip().lower())
        if special is not None:
            return special
        try:
            return float(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a number for {data_type.value}") from None

    def float32(cell: str) -> float:
        value = number(cell)  # FLOAT's maximum prints as 3.4028235e+38, a double just above FLOAT_MAX
        return math.copysign(FLOAT_MAX, value) if FLOAT_MAX < abs(value) < _FLOAT_ROUNDING_LIMIT else value

    return float32 if data_type is TSDataType.FLOAT else number


class Importer:
    """Batches rows into per-device tablets and writes them through a backend."""

    def __init__(self, backend: Backend, path: Path, by_device: bool, columns: list[Column]) -> None:
        self.backend = backend
        self.path = path
        self.by_device = by_device
        self.columns = [column for column in columns if column.data_type is not None]
        self.parsers = {column.index: converter(column.data_type) for column in self.columns if column.data_type}
        self.rows = 0
        self.points = 0
        self.series: set[tuple[str, str]] = set()

    def _fail(self, line: int, label: str, reason: str) -> CliError:
        return CliError(f"{self.path}, line {line}, column {label!r}: {reason} ({self.rows} rows before it were "
                        f"imported)")

    def write(self, batch: list[tuple[int, list[str]]]) -> None:
        """Parse and write one batch of ``(line number, cells)``: one tablet per device."""
        precision = self.backend.precision
        tablets: dict[str, _Tablet] = {}
        for line, row in batch:
            try:
                stamp = parse_time(row[0], precision)
            except ValueError as exc:
                raise self._fail(line, "Time", str(exc)) from None
            row_device = ""
            if self.by_device:
                row_device = row[1].strip() if len(row) > 1 else ""
                if not row_device:
                    raise self._fail(line, "Device", "the device is empty")
            for column in self.columns:
                cell = row[column.index] if column.index < len(row) else ""
                if column.data_type is not TSDataType.TEXT:
                    cell = cell.strip()
                if not cell:
                    continue
                try:
                    value = self.parsers[column.index](cell)
                except ValueError as exc:
                    raise self._fail(line, column.label, str(exc)) from None
                device = row_device or column.device or ""
                tablet = tablets.get(device)
                if tablet is None:
                    tablet = tablets[device] = _Tablet()
                tablet.put(line, stamp, column.index, value)
        for device, tablet in tablets.items():
            self._write_tablet(device, tablet)
        self.rows += len(batch)

    def _write_tablet(self, device: str, tablet: _Tablet) -> None:
        by_index = {column.index: column for column in self.columns}
        measurements, types, columns = [], [], []
        size = len(tablet.stamps)
        for index, cells in tablet.values.items():
            column = by_index[index]
            measurements.append(column.measurement)
            types.append(column.data_type)
            columns.append([cells.get(position) for position in range(size)])
            self.series.add((device, column.measurement))
        try:
            self.points += self.backend.insert_tablet(device, tablet.stamps, measurements, types, columns)  # type: ignore[arg-type]
        except StatementError as exc:
            raise CliError(f"writing {device} ({self.rows} rows before this batch were imported): {exc}") from None


class _Tablet:
    """One device's rows of a batch: timestamps and, per column, values by row position."""

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.lines: list[int] = []
        self.values: dict[int, dict[int, Any]] = {}

    def put(self, line: int, stamp: int, index: int, value: Any) -> None:
        if not self.lines or self.lines[-1] != line:
            self.stamps.append(stamp)
            self.lines.append(line)
        self.values.setdefault(index, {})[len(self.stamps) - 1] = value


def _rows(handle: TextIO, bar: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line number in the file, cells)`` of every non-empty row after the header (the header is line 1)."""

    def lines() -> Iterator[str]:
        for text in iter(handle.readline, ""):
            bar.update(len(text))
            yield text

    reader = csv.reader(lines())
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield reader.line_num + 1, row


def _existing_types(backend: Backend, columns: list[Column], by_device: bool, devices: set[str]) -> None:
    """Give unannotated columns the type of the series that already exists."""
    if all(column.data_type is not None for column in columns):
        return
    targets = sorted(devices) if by_device else sorted({column.device for column in columns if column.device})
    patterns = [f"{device}.*" for device in targets] if len(targets) <= _DEVICE_LOOKUPS else ["root.**"]
    known: dict[tuple[str, str], TSDataType] = {}
    for pattern in patterns:
        try:
            for info in backend.series([pattern]):
                known[(info.device, info.measurement)] = info.data_type
        except StatementError:
            continue
    for column in columns:
        if column.data_type is not None:
            continue
        if by_device:
            found = {known[key] for key in ((device, column.measurement) for device in devices) if key in known}
            if len(found) == 1:
                column.data_type = found.pop()
        elif (column.device, column.measurement) in known:
            column.data_type = known[(column.device, column.measurement)]  # type: ignore[index]


def run(args: argparse.Namespace) -> int:
    """Import the file."""
    quiet_logging(args)
    if args.batch_size <= 0:
        raise CliError("--batch-size must be positive")
    path = Path(args.file)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle, connect(args, create=True) as backend:
        backend.check()
        first = handle.readline()
        if not first.strip():
            raise CliError(f"{path} is empty; expected a header 'Time,root.sg.d1.s1,...'")
        try:
            header = next(csv.reader([first]))
        except csv.Error as exc:
            raise CliError(f"{path}, line 1: {exc}") from None
        by_device, columns = parse_header(header)
        start = handle.tell()
        devices: set[str] = set()
        if by_device:
            devices = {row[1].strip() for _, row in _rows(handle, _NoBar()) if len(row) > 1 and row[1].strip()}
            handle.seek(start)
        _existing_types(backend, columns, by_device, devices)
        if any(column.data_type is None for column in columns):
            infer_types((row for _, row in _rows(handle, _NoBar())), columns)
            handle.seek(start)
        importer = Importer(backend, path, by_device, columns)
        size = path.stat().st_size if path.is_file() else None
        batch: list[tuple[int, list[str]]] = []
        try:
            with progress("B", size) as bar:
                for item in _rows(handle, bar):
                    batch.append(item)
                    if len(batch) >= args.batch_size:
                        importer.write(batch)
                        batch = []
                if batch:
                    importer.write(batch)
        except csv.Error as exc:
            raise CliError(f"{path}: {exc} ({importer.rows} rows were imported)") from None
    print(f"imported {importer.rows} rows ({importer.points} points, {len(importer.series)} series) from {path}")
    return 0


class _NoBar:
    def update(self, _amount: int) -> None:
        pass
