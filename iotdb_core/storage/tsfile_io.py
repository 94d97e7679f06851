"""Reading and writing Apache TsFile files (tree model) through the ``tsfile`` package.

This is the only module of the project that talks to ``tsfile``; the rest of the engine sees
:class:`SeriesData` going in, :class:`TsFileSummary` / :class:`SeriesInfo` metadata and numpy arrays
coming out, and :class:`TsFileError` for anything the library rejects.

Writing
    :func:`write_tsfile` writes every non-empty series to ``<path>.tmp``, closes the writer, fsyncs
    the file, renames it to ``path`` and fsyncs the directory, so ``path`` either does not exist or is
    a complete, closed file. Files are write-once: an existing ``path`` is never replaced. Each series
    is registered as a non-aligned tree-model timeseries and written in tablets. The package's
    ``Tablet`` lower-cases column names (a series registered as ``Temperature`` and written through a
    plain ``Tablet`` silently receives no rows), so tablets are built by :class:`_NamedTablet`, which
    keeps names exactly as given; measurement and device names are therefore case-sensitive.

Reading
    :class:`TsFileSource` opens one closed file. Its :meth:`~TsFileSource.series` come from the file's
    timeseries metadata without touching data pages. :meth:`~TsFileSource.read` prepares the series
    from the offset of its metadata entry and drains the result as Arrow batches (tens of millions of
    points per second, time range pushed into the query, no duplicated rows). Series whose metadata
    is not that of a non-aligned series (files from other writers) are read with
    ``query_timeseries`` and de-duplicated ``read_data_frame`` batches instead.

Encodings
    Not every encoding IoTDB accepts is lossless in tsfile 2.5.0: SPRINTZ corrupts numeric data,
    TS_2DIFF rounds FLOAT/DOUBLE values to two decimals and drops the sign of ``-0.0``, DICTIONARY
    rejects numbers and cuts TEXT values at the first NUL character, BOOLEAN only works with PLAIN,
    RLE and ZIGZAG reject floating-point series. :data:`SUPPORTED_ENCODINGS` lists the combinations
    that round-trip every value (NaN payloads, ``±inf``, ``-0.0``, integer extremes, any string) and
    :func:`write_tsfile` refuses the others with :class:`UnsupportedEncodingError` before creating any
    file. All compressors IoTDB accepts work.

Decimal doubles
    TS_2DIFF stores a DOUBLE as the integer ``floor(v * 100 + 0.5)`` (Java's ``Math.round``, IoTDB's
    ``float_precision`` of 2) and reads back that integer divided by 100, so it is exact for a series whose
    every value ``v`` is such a quotient: no more than two decimals, ``|v| < 2**53 / 100``, no NaN, no
    ``±inf`` and no ``-0.0`` (read back as ``0.0``). :func:`decimal_exact` checks exactly that, with
    the decoder's own arithmetic. A DOUBLE series marked ``scaled_decimal`` (:func:`with_decimal_encoding`)
    is stored by :func:`write_tsfile` with TS_2DIFF instead of its declared encoding when
    :func:`decimal_exact` holds for its values, and with the declared one otherwise. Random walks with
    2 decimals take about 1.2 bytes per point with LZ4 instead of 2.8 with CHIMP, and encode about ten
    times faster. TS_2DIFF as a DOUBLE series' declared encoding stays refused (it would be lossy for
    other values). The file's metadata names TS_2DIFF, and Apache IoTDB reads such chunks with the same
    decoder.

Native writing
    Where the library offers it, :func:`write_tsfile` writes through
    :class:`~iotdb_core.storage.tsfile_native.NativeWriter` (whole numpy columns, the GIL released while
    the library encodes) and otherwise through the package's ``TsFileWriter``; both write the same bytes.

Statistics
    The library computes ``min``/``max`` of FLOAT/DOUBLE series with ordered comparisons, which NaN
    points derail (the result may be NaN or a wrong number). A NaN point also makes ``sum`` NaN, so
    :class:`SeriesInfo` reports ``min_value``/``max_value`` as ``None`` (unknown) whenever ``sum`` is
    NaN; a non-None bound is exact. TEXT ``first``/``last`` statistics are C strings in the library
    and end at the first NUL character; the points themselves keep it.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tsfile
from tsfile.exceptions import LibraryError

from iotdb_core.datatypes import (
    DEFAULT_COMPRESSOR,
    DEFAULT_ENCODING,
    FLOAT_MAX,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    Compressor,
    TSDataType,
    TSEncoding,
)
from iotdb_core.durable import fsync_dir, fsync_file
from iotdb_core.storage import tsfile_native

__all__ = [
    "SUPPORTED_ENCODINGS",
    "SeriesData",
    "SeriesInfo",
    "SeriesSummary",
    "TsFileError",
    "TsFileSource",
    "TsFileSummary",
    "UnsupportedEncodingError",
    "check_encoding",
    "decimal_exact",
    "page_limits",
    "set_page_limits",
    "with_decimal_encoding",
    "write_tsfile",
]

TMP_SUFFIX = ".tmp"
#: Rows per tablet handed to the library; bounds the transient native copy of a large series.
ROWS_PER_TABLET = 65536

_TIME_MIN = -(2**63)
_TIME_MAX = 2**63 - 1

_INTEGER_ENCODINGS = frozenset(
    {
        TSEncoding.PLAIN,
        TSEncoding.TS_2DIFF,
        TSEncoding.GORILLA,
        TSEncoding.RLE,
        TSEncoding.ZIGZAG,
        TSEncoding.CHIMP,
        TSEncoding.RLBE,
    }
)
_FLOATING_ENCODINGS = frozenset({TSEncoding.PLAIN, TSEncoding.GORILLA, TSEncoding.CHIMP, TSEncoding.RLBE})

#: Encodings that store every value of the type unchanged with tsfile 2.5.0.
SUPPORTED_ENCODINGS: dict[TSDataType, frozenset[TSEncoding]] = {
    TSDataType.BOOLEAN: frozenset({TSEncoding.PLAIN}),
    TSDataType.INT32: _INTEGER_ENCODINGS,
    TSDataType.INT64: _INTEGER_ENCODINGS,
    TSDataType.FLOAT: _FLOATING_ENCODINGS,
    TSDataType.DOUBLE: _FLOATING_ENCODINGS,
    TSDataType.TEXT: frozenset({TSEncoding.PLAIN}),
}

_TS_TYPE = {t: tsfile.TSDataType[t.value] for t in TSDataType}
_TS_ENCODING = {e: tsfile.TSEncoding[e.value] for e in TSEncoding}
_TS_COMPRESSOR = {c: tsfile.Compressor[c.value] for c in Compressor}
_FROM_TS_TYPE = {v: k for k, v in _TS_TYPE.items()}
_FROM_TS_TYPE[tsfile.TSDataType.STRING] = TSDataType.TEXT
_FROM_TS_ENCODING = {v: k for k, v in _TS_ENCODING.items()}
_FROM_TS_COMPRESSOR = {v: k for k, v in _TS_COMPRESSOR.items()}

_NUMPY_DTYPE: dict[TSDataType, np.dtype[Any]] = {
    TSDataType.BOOLEAN: np.dtype(np.bool_),
    TSDataType.INT32: np.dtype(np.int32),
    TSDataType.INT64: np.dtype(np.int64),
    TSDataType.FLOAT: np.dtype(np.float32),
    TSDataType.DOUBLE: np.dtype(np.float64),
}

Values = np.ndarray | list[str]
Scalar = bool | int | float | str


class TsFileError(Exception):
    """The tsfile library rejected an operation; the message carries the library's error."""


class UnsupportedEncodingError(ValueError):
    """A series declares an encoding that tsfile cannot store losslessly for its type."""


def check_encoding(data_type: TSDataType, encoding: TSEncoding) -> None:
    """Raise :class:`UnsupportedEncodingError` unless ``encoding`` round-trips ``data_type`` values."""
    supported = SUPPORTED_ENCODINGS[data_type]
    if encoding not in supported:
        names = ", ".join(sorted(e.value for e in supported))
        raise UnsupportedEncodingError(
            f"encoding {encoding.value} cannot store {data_type.value} values losslessly; use one of {names}"
        )


#: Decimals TS_2DIFF keeps of a FLOAT/DOUBLE value (the library's fixed ``max_point_number``).
DECIMAL_DIGITS = 2
_DECIMAL_SCALE = 10.0**DECIMAL_DIGITS
#: Bound on ``|v|`` that keeps ``v * 100`` an integer doubles represent exactly.
_DECIMAL_LIMIT = 2.0**53 / _DECIMAL_SCALE
_CHECK_CHUNK = 1 << 15  # points per step of decimal_exact: its temporaries stay in the CPU cache


def decimal_exact(values: np.ndarray) -> bool:
    """Whether TS_2DIFF stores every one of these float64 values unchanged (see *Decimal doubles*)."""
    if values.dtype != np.float64 or values.ndim != 1:
        return False
    if values.size == 0:
        return True
    if not float(np.max(np.abs(values))) < _DECIMAL_LIMIT:  # false for NaN and ±inf too
        return False
    scratch = np.empty(min(len(values), _CHECK_CHUNK))
    for start in range(0, len(values), _CHECK_CHUNK):
        part = values[start : start + _CHECK_CHUNK]
        back = scratch[: len(part)]
        np.multiply(part, _DECIMAL_SCALE, out=back)
        np.add(back, 0.5, out=back)
        np.floor(back, out=back)
        np.divide(back, _DECIMAL_SCALE, out=back)  # what the decoder computes from the stored integer
        if not bool(np.array_equal(back, part)):
            return False
    zeros = values == 0.0
    return not bool(np.any(np.signbit(values[zeros]))) if bool(np.any(zeros)) else True


@dataclass(frozen=True)
class SeriesData:
    """The points of one series to write: timestamps strictly increasing, one value per timestamp.

    ``timestamps`` is an int64 array (anything numpy converts to integers is accepted). ``values``
    is a numpy array for numeric and BOOLEAN series and a sequence of ``str`` for TEXT. Numeric
    values follow IoTDB's widening rules: DOUBLE accepts integers and FLOAT, FLOAT accepts
    integers in the INT32 range, INT64 accepts INT32.
    """

    device: str
    measurement: str
    data_type: TSDataType
    encoding: TSEncoding
    compressor: Compressor
    timestamps: np.ndarray
    values: Values
    #: Store this DOUBLE series with TS_2DIFF where :func:`decimal_exact` holds (see *Decimal doubles*).
    scaled_decimal: bool = False

    @classmethod
    def of(
        cls,
        device: str,
        measurement: str,
        data_type: TSDataType,
        timestamps: Any,
        values: Any,
        encoding: TSEncoding | None = None,
        compressor: Compressor | None = None,
    ) -> SeriesData:
        """A series with IoTDB's default encoding and compressor unless given."""
        return cls(
            device,
            measurement,
            data_type,
            DEFAULT_ENCODING[data_type] if encoding is None else encoding,
            DEFAULT_COMPRESSOR if compressor is None else compressor,
            timestamps,
            values,
        )

    def __len__(self) -> int:
        return len(self.timestamps)


def with_decimal_encoding(series: SeriesData) -> SeriesData:
    """``series`` marked ``scaled_decimal`` when it is a DOUBLE series (:func:`write_tsfile` checks the values)."""
    if series.data_type is not TSDataType.DOUBLE or series.scaled_decimal:
        return series
    return replace(series, scaled_decimal=True)


@dataclass(frozen=True)
class SeriesSummary:
    """What :func:`write_tsfile` stored for one series."""

    device: str
    measurement: str
    data_type: TSDataType
    count: int
    min_time: int
    max_time: int


@dataclass(frozen=True)
class TsFileSummary:
    """The result of :func:`write_tsfile`: the final path, its size and the series it holds."""

    path: Path
    file_size: int
    series: dict[tuple[str, str], SeriesSummary]

    @property
    def point_count(self) -> int:
        return sum(s.count for s in self.series.values())

    @property
    def min_time(self) -> int | None:
        return min((s.min_time for s in self.series.values()), default=None)

    @property
    def max_time(self) -> int | None:
        return max((s.max_time for s in self.series.values()), default=None)


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a file as its metadata describes it; no data page is read to build it.

    ``min_value``/``max_value`` exist for numeric series, ``sum_value`` for numeric and BOOLEAN
    series (the number of ``True`` points), ``first_value``/``last_value`` for every type. A field the
    type lacks is ``None``, and so are the bounds of a FLOAT/DOUBLE series whose ``sum_value`` is NaN
    (it holds NaN points, which the library's min/max do not handle). TEXT ``first_value`` and
    ``last_value`` end at the first NUL character of the stored string.
    """

    device: str
    measurement: str
    data_type: TSDataType
    encoding: TSEncoding | None
    compressor: Compressor | None
    count: int
    start_time: int
    end_time: int
    min_value: int | float | None = None
    max_value: int | float | None = None
    sum_value: float | None = None
    first_value: Scalar | None = None
    last_value: Scalar | None = None


# --------------------------------------------------------------------------------------------------
# Library configuration
# --------------------------------------------------------------------------------------------------

_config_lock = threading.Lock()


def _library_config() -> dict[str, Any]:
    config = tsfile.get_tsfile_config()
    if config["page_writer_max_point_num_"] == 0:
        # The library loads its defaults when the first reader or writer is created, even one that
        # fails to open; until then the configuration is all zeros and cannot be changed.
        with tempfile.TemporaryDirectory() as scratch, contextlib.suppress(LibraryError):
            tsfile.TsFileReader(os.path.join(scratch, "absent.tsfile"))
        config = tsfile.get_tsfile_config()
    return config


def page_limits() -> tuple[int, int]:
    """The writer's page limits: (points per page, bytes per page). Library defaults: 10,000 and 128 KiB."""
    with _config_lock:
        config = _library_config()
    return int(config["page_writer_max_point_num_"]), int(config["page_writer_max_memory_bytes_"])


def set_page_limits(max_points: int | None = None, max_bytes: int | None = None) -> None:
    """Change the page limits of every writer created afterwards in this process.

    A page is the unit of time-range pruning inside a chunk; larger pages compress slightly better
    with the general-purpose compressors and make range reads coarser.
    """
    changes: dict[str, int] = {}
    if max_points is not None:
        if max_points <= 0:
            raise ValueError("max_points must be positive")
        changes["page_writer_max_point_num_"] = int(max_points)
    if max_bytes is not None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        changes["page_writer_max_memory_bytes_"] = int(max_bytes)
    if not changes:
        return
    with _config_lock:
        _library_config()
        try:
            tsfile.set_tsfile_config(changes)
        except LibraryError as exc:
            raise TsFileError(f"cannot set page limits {changes}: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


class _NamedTablet(tsfile.Tablet):
    """A tablet over prepared columns that keeps measurement names exactly as given.

    ``tsfile.Tablet.__init__`` lower-cases column names and pre-allocates Python lists of ``None``;
    the writer only reads the tablet through its accessors, so this subclass fills the attributes
    those accessors return directly.
    """

    def __init__(
        self,
        device: str,
        names: list[str],
        types: list[Any],
        timestamps: list[int],
        columns: list[list[Any]],
    ) -> None:
        self.target_name = device
        self.column_name_list = names
        self.type_list = types
        self.timestamp_list = timestamps
        self.data_list = columns
        self.max_row_num = len(timestamps)


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def _prepare_timestamps(label: str, timestamps: Any) -> np.ndarray:
    ts = np.asarray(timestamps)
    if ts.ndim != 1:
        raise ValueError(f"{label}: timestamps must be one-dimensional")
    if ts.size and ts.dtype.kind not in "iu":
        raise TypeError(f"{label}: timestamps must be integers, got {ts.dtype}")
    if ts.dtype.kind == "u" and ts.size and int(ts.max()) > INT64_MAX:
        raise ValueError(f"{label}: timestamp out of the INT64 range")
    ts = ts.astype(np.int64, copy=False)
    if ts.size > 1 and bool(np.any(ts[1:] <= ts[:-1])):
        at = int(np.flatnonzero(ts[1:] <= ts[:-1])[0])
        raise ValueError(
            f"{label}: timestamps must be strictly increasing "
            f"(position {at + 1}: {int(ts[at + 1])} after {int(ts[at])})"
        )
    return ts


def _prepare_text(label: str, values: Any) -> list[str]:
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "UO":
            raise TypeError(f"{label}: TEXT values must be strings, got an array of {values.dtype}")
        out = values.tolist()
    elif isinstance(values, str | bytes):
        raise TypeError(f"{label}: TEXT values must be a sequence of strings, not a single string")
    else:
        out = list(values)
    for index, value in enumerate(out):
        if not isinstance(value, str):
            raise TypeError(f"{label}: TEXT value at position {index} is {type(value).__name__}, not str")
    return out


def _prepare_numeric(label: str, data_type: TSDataType, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{label}: values must be one-dimensional")
    kind = arr.dtype.kind
    if arr.size == 0:
        return arr.astype(_NUMPY_DTYPE[data_type])
    if data_type is TSDataType.BOOLEAN:
        if kind != "b":
            raise TypeError(f"{label}: BOOLEAN values must be booleans, got {arr.dtype}")
        return arr
    if kind not in "iuf":
        raise TypeError(f"{label}: {data_type.value} values must be numbers, got {arr.dtype}")
    if data_type is TSDataType.DOUBLE:
        return arr.astype(np.float64, copy=False)
    if data_type is TSDataType.FLOAT:
        if kind == "f":
            if arr.dtype.itemsize > 4:
                finite = arr[np.isfinite(arr)]
                if finite.size and float(np.abs(finite).max()) > FLOAT_MAX:
                    raise ValueError(f"{label}: value out of the FLOAT range")
            return arr.astype(np.float32, copy=False)
        _check_integer_range(label, arr, INT32_MIN, INT32_MAX, "FLOAT (INT32 values only)")
        return arr.astype(np.float32)
    if kind == "f":
        raise TypeError(f"{label}: {data_type.value} values must be integers, got {arr.dtype}")
    if data_type is TSDataType.INT32:
        _check_integer_range(label, arr, INT32_MIN, INT32_MAX, "INT32")
        return arr.astype(np.int32, copy=False)
    _check_integer_range(label, arr, -(2**63), INT64_MAX, "INT64")
    return arr.astype(np.int64, copy=False)


def _check_integer_range(label: str, arr: np.ndarray, low: int, high: int, what: str) -> None:
    if int(arr.min()) < low or int(arr.max()) > high:
        raise ValueError(f"{label}: value out of the {what} range [{low}, {high}]")


def _prepare(series: SeriesData) -> SeriesData:
    """Validate ``series`` and return it with its timestamps and values in the writer's array types."""
    label = f"{series.device}.{series.measurement}"
    if not isinstance(series.device, str) or not series.device:
        raise ValueError(f"device must be a non-empty string, got {series.device!r}")
    if not isinstance(series.measurement, str) or not series.measurement:
        raise ValueError(f"{series.device}: measurement must be a non-empty string")
    encoding = series.encoding
    try:
        check_encoding(series.data_type, encoding)
    except UnsupportedEncodingError as exc:
        raise UnsupportedEncodingError(f"{label}: {exc}") from None
    timestamps = _prepare_timestamps(label, series.timestamps)
    if series.data_type is TSDataType.TEXT:
        values: Values = _prepare_text(label, series.values)
    else:
        values = _prepare_numeric(label, series.data_type, series.values)
    if len(values) != len(timestamps):
        raise ValueError(f"{label}: {len(timestamps)} timestamps but {len(values)} values")
    scaled = (
        series.scaled_decimal
        and series.data_type is TSDataType.DOUBLE
        and decimal_exact(values)  # type: ignore[arg-type]  # a numeric series' values are an ndarray
    )
    return replace(series, timestamps=timestamps, values=values, scaled_decimal=scaled)


def _tablet_groups(prepared: Sequence[SeriesData]) -> Iterator[list[SeriesData]]:
    """Consecutive series of one device sharing their timestamps, written as one multi-column tablet.

    The library requires the column names of one tablet to differ case-insensitively, so names that
    differ only by case go to separate tablets.
    """
    group: list[SeriesData] = []
    lowered: set[str] = set()
    for item in prepared:
        if group:
            head = group[0]
            same_time = head.timestamps is item.timestamps or (
                len(head.timestamps) == len(item.timestamps)
                and head.timestamps[0] == item.timestamps[0]
                and head.timestamps[-1] == item.timestamps[-1]
                and np.array_equal(head.timestamps, item.timestamps)
            )
            if head.device == item.device and same_time and item.measurement.lower() not in lowered:
                group.append(item)
                lowered.add(item.measurement.lower())
                continue
            yield group
        group = [item]
        lowered = {item.measurement.lower()}
    if group:
        yield group


def _column_slice(values: Values, start: int, stop: int) -> list[Any]:
    if isinstance(values, np.ndarray):
        return values[start:stop].tolist()
    return values[start:stop]


def _stored_encoding(series: SeriesData) -> TSEncoding:
    return TSEncoding.TS_2DIFF if series.scaled_decimal else series.encoding


def _write_group_native(writer: tsfile_native.NativeWriter, group: list[SeriesData]) -> None:
    head = group[0]
    names = [item.measurement for item in group]
    types = [int(_TS_TYPE[item.data_type].value) for item in group]
    total = len(head.timestamps)
    for start in range(0, total, ROWS_PER_TABLET):
        stop = min(start + ROWS_PER_TABLET, total)
        columns = [item.values[start:stop] for item in group]
        writer.write(head.device, names, types, head.timestamps[start:stop], columns)


def _write_native(tmp: Path, prepared: Sequence[SeriesData]) -> None:
    writer = tsfile_native.NativeWriter(str(tmp))
    try:
        for item in prepared:
            writer.register(
                item.device,
                item.measurement,
                int(_TS_TYPE[item.data_type].value),
                int(_TS_ENCODING[_stored_encoding(item)].value),
                int(_TS_COMPRESSOR[item.compressor].value),
            )
        for group in _tablet_groups(prepared):
            _write_group_native(writer, group)
    finally:
        writer.close()


def _write_python(tmp: Path, prepared: Sequence[SeriesData]) -> None:
    writer = None
    try:
        writer = tsfile.TsFileWriter(str(tmp))
        for item in prepared:
            schema = tsfile.TimeseriesSchema(
                item.measurement,
                _TS_TYPE[item.data_type],
                _TS_ENCODING[_stored_encoding(item)],
                _TS_COMPRESSOR[item.compressor],
            )
            writer.register_timeseries(item.device, schema)
        for group in _tablet_groups(prepared):
            _write_group(writer, group)
        closing, writer = writer, None
        closing.close()
    finally:
        if writer is not None:
            with contextlib.suppress(LibraryError, OSError):
                writer.close()


def _write_group(writer: Any, group: list[SeriesData]) -> None:
    head = group[0]
    names = [item.measurement for item in group]
    types = [_TS_TYPE[item.data_type] for item in group]
    total = len(head.timestamps)
    for start in range(0, total, ROWS_PER_TABLET):
        stop = min(start + ROWS_PER_TABLET, total)
        columns = [_column_slice(item.values, start, stop) for item in group]
        tablet = _NamedTablet(head.device, names, types, head.timestamps[start:stop].tolist(), columns)
        writer.write_tablet(tablet)


def write_tsfile(path: str | os.PathLike[str], series: Iterable[SeriesData]) -> TsFileSummary:
    """Write ``series`` into a new TsFile at ``path`` and return what was stored.

    Every series is validated before any file is created: timestamps strictly increasing, values
    of the declared type, an encoding from :data:`SUPPORTED_ENCODINGS`, no (device, measurement)
    twice. Empty series are skipped. A DOUBLE series marked ``scaled_decimal`` is stored with TS_2DIFF
    when :func:`decimal_exact` holds for its values (see *Decimal doubles*). The data goes to
    ``<path>.tmp`` (a stale one is removed first), which is closed, fsynced and renamed to ``path``;
    the directory is fsynced last. On any error the temporary file is removed and ``path`` is not
    created.

    Raises FileExistsError if ``path`` exists, TypeError/ValueError for invalid series,
    :class:`UnsupportedEncodingError` for a lossy or unsupported encoding and :class:`TsFileError`
    when the library fails.
    """
    final = Path(path)
    if final.exists():
        raise FileExistsError(f"{final} already exists; TsFiles are write-once")
    prepared: list[SeriesData] = []
    seen: set[tuple[str, str]] = set()
    for item in series:
        ready = _prepare(item)
        key = (ready.device, ready.measurement)
        if key in seen:
            raise ValueError(f"series {ready.device}.{ready.measurement} is given twice")
        seen.add(key)
        if len(ready.timestamps):
            prepared.append(ready)

    tmp = _tmp_path(final)
    tmp.unlink(missing_ok=True)
    try:
        try:
            if tsfile_native.available():
                try:
                    _write_native(tmp, prepared)
                except tsfile_native.NativeWriterError:
                    # The C library reports only its own error code; the package writer raises the OSError
                    # (a full or unwritable disk is then recognised as such), or writes the file after all.
                    tmp.unlink(missing_ok=True)
                    _write_python(tmp, prepared)
            else:
                _write_python(tmp, prepared)
        except (LibraryError, tsfile_native.NativeWriterError) as exc:
            raise TsFileError(f"writing {final}: {exc}") from exc
        fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)

    summaries = {
        (item.device, item.measurement): SeriesSummary(
            item.device,
            item.measurement,
            item.data_type,
            len(item.timestamps),
            int(item.timestamps[0]),
            int(item.timestamps[-1]),
        )
        for item in prepared
    }
    return TsFileSummary(final, final.stat().st_size, summaries)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _statistics(stat: Any) -> dict[str, Any]:
    if not getattr(stat, "has_statistic", False):
        return {}
    if hasattr(stat, "min_int64"):
        return {
            "min_value": int(stat.min_int64),
            "max_value": int(stat.max_int64),
            "sum_value": float(stat.sum),
            "first_value": int(stat.first_int64),
            "last_value": int(stat.last_int64),
        }
    if hasattr(stat, "min_float64"):
        total = float(stat.sum)
        bounded = not math.isnan(total)
        return {
            "min_value": _float_or_none(stat.min_float64) if bounded else None,
            "max_value": _float_or_none(stat.max_float64) if bounded else None,
            "sum_value": total,
            "first_value": float(stat.first_float64),
            "last_value": float(stat.last_float64),
        }
    if hasattr(stat, "first_bool"):
        return {
            "sum_value": float(stat.sum),
            "first_value": bool(stat.first_bool),
            "last_value": bool(stat.last_bool),
        }
    if hasattr(stat, "str_first"):
        return {"first_value": stat.str_first, "last_value": stat.str_last}
    return {}


def _empty(data_type: TSDataType) -> tuple[np.ndarray, Values]:
    empty_times = np.empty(0, dtype=np.int64)
    if data_type is TSDataType.TEXT:
        return empty_times, []
    return empty_times, np.empty(0, dtype=_NUMPY_DTYPE[data_type])


@dataclass
class _Entry:
    info: SeriesInfo
    locator: tuple[int, ...] | None


#: Most native readers one source opens on its file: concurrent reads of one file decode in parallel.
MAX_NATIVE_READERS = max(2, min(4, os.cpu_count() or 1))


class _Native:
    """One native reader of a file and the series prepared on it; used by one read at a time (``lock``)."""

    __slots__ = ("lock", "prepared", "reader")

    def __init__(self, reader: Any) -> None:
        self.lock = threading.Lock()
        self.reader = reader
        self.prepared: dict[tuple[str, str], Any] = {}

    def close(self) -> None:
        for handle in self.prepared.values():
            handle.close()
        self.prepared.clear()
        self.reader.close()


class TsFileSource:
    """A reader over one closed TsFile.

    Opening reads only the file's metadata. Several sources may be open on the same file at once
    (each holds its own native readers); one source may be shared between threads: a read that finds
    the native reader busy opens another (up to :data:`MAX_NATIVE_READERS`, then waits), so concurrent
    reads of one file decode in parallel (the library releases the GIL). Close it (or use it as a context
    manager) to release the native readers.

    Reads go through prepared series and Arrow batches. Series that are not non-aligned (files from
    other writers), and every series when ``prepared_reads=False``, are read with
    ``query_timeseries`` and ``read_data_frame``, which is about 50 times slower, cannot see
    measurement names containing an unquoted ``.``, and ends TEXT values at the first NUL character.
    """

    def __init__(self, path: str | os.PathLike[str], *, prepared_reads: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # guards _natives and _closed
        self._prepared_reads = prepared_reads
        try:
            self.file_size = self.path.stat().st_size
            first = _Native(tsfile.TsFileReader(str(self.path)))
        except LibraryError as exc:
            raise TsFileError(f"cannot open {self.path}: {exc}") from exc
        self._natives = [first]
        self._closed = False
        try:
            self._entries = self._load_entries(first.reader)
        except BaseException:
            first.close()
            self._closed = True
            raise

    @contextlib.contextmanager
    def _native(self) -> Iterator[_Native]:
        """A native reader for one read: a free one, a new one while fewer than the limit are open, else the
        first once it is free."""
        with self._lock:
            if self._closed:
                raise ValueError(f"{self.path.name}: source is closed")
            natives = list(self._natives)
        native = next((n for n in natives if n.lock.acquire(blocking=False)), None)
        if native is None:
            native = self._open_native(len(natives))
        if native is None:
            native = natives[0]
            native.lock.acquire()
        try:
            if self._closed:  # close() takes each native's lock after setting it
                raise ValueError(f"{self.path.name}: source is closed")
            yield native
        finally:
            native.lock.release()

    def _open_native(self, seen: int) -> _Native | None:
        """Another native reader, held, if the limit allows one (None otherwise, or if the file cannot be
        opened again)."""
        with self._lock:
            if self._closed or len(self._natives) != seen or seen >= MAX_NATIVE_READERS:
                return None
            try:
                native = _Native(tsfile.TsFileReader(str(self.path)))
            except (LibraryError, OSError):
                return None
            native.lock.acquire()
            self._natives.append(native)
            return native

    def _load_entries(self, reader: Any) -> dict[tuple[str, str], _Entry]:
        try:
            devices = {d.segments: d.path for d in reader.get_all_devices()}
            schemas = reader.get_all_timeseries_schemas()
            metadata = reader.get_timeseries_metadata()
        except LibraryError as exc:
            raise TsFileError(f"cannot read the metadata of {self.path}: {exc}") from exc
        entries: dict[tuple[str, str], _Entry] = {}
        for segments, group in metadata.items():
            device = devices.get(segments) or ".".join(s for s in segments if s is not None)
            declared = {}
            device_schema = schemas.get(device)
            if device_schema is not None:
                declared = {s.get_timeseries_name(): s for s in device_schema.get_timeseries_list()}
            for meta in group.timeseries:
                data_type = _FROM_TS_TYPE.get(meta.data_type)
                if data_type is None:
                    continue
                schema = declared.get(meta.measurement_name)
                stat = meta.statistic if meta.statistic.has_statistic else meta.timeline_statistic
                info = SeriesInfo(
                    device=device,
                    measurement=meta.measurement_name,
                    data_type=data_type,
                    encoding=None if schema is None else _FROM_TS_ENCODING.get(schema.get_encoding_type()),
                    compressor=(
                        None if schema is None else _FROM_TS_COMPRESSOR.get(schema.get_compression_type())
                    ),
                    count=int(stat.row_count),
                    start_time=int(stat.start_time),
                    end_time=int(stat.end_time),
                    **_statistics(meta.statistic),
                )
                locator = None
                if meta.layout == 0 and meta.value_metadata_length > 0:
                    locator = (
                        0,
                        0,
                        self.file_size,
                        0,
                        0,
                        meta.layout,
                        meta.locator_flags,
                        meta.value_metadata_offset,
                        meta.value_metadata_length,
                        meta.time_metadata_offset,
                        meta.time_metadata_length,
                    )
                entries[(device, meta.measurement_name)] = _Entry(info, locator)
        return entries

    # ----------------------------------------------------------------------------------------------

    def __enter__(self) -> TsFileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the prepared series and the native readers (after the reads under way); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            natives, self._natives = self._natives, []
        for native in natives:
            with native.lock:
                native.close()

    def series(self) -> dict[tuple[str, str], SeriesInfo]:
        """Every series of the file keyed by (device, measurement)."""
        return {key: entry.info for key, entry in self._entries.items()}

    def info(self, device: str, measurement: str) -> SeriesInfo:
        """The metadata of one series; KeyError if the file does not hold it."""
        return self._entry(device, measurement).info

    def _entry(self, device: str, measurement: str) -> _Entry:
        try:
            return self._entries[(device, measurement)]
        except KeyError:
            raise KeyError(f"{self.path.name} holds no series {device}.{measurement}") from None

    def read(
        self, device: str, measurement: str, start: int | None = None, end: int | None = None
    ) -> tuple[np.ndarray, Values]:
        """Points of one series with ``start <= time <= end`` (``None`` leaves that side open).

        Returns int64 timestamps (strictly increasing) and the values: a numpy array of the type's
        dtype (bool, int32, int64, float32, float64) or a list of str for TEXT. KeyError if the file
        does not hold the series.
        """
        info = self._entry(device, measurement).info
        parts = self.read_parts(device, measurement, start, end)
        if not parts:
            return _empty(info.data_type)
        timestamps = np.concatenate([part[0] for part in parts])
        if info.data_type is TSDataType.TEXT:
            return timestamps, [v for part in parts for v in part[1]]
        return timestamps, np.concatenate([part[1] for part in parts])

    def read_parts(
        self, device: str, measurement: str, start: int | None = None, end: int | None = None
    ) -> list[tuple[np.ndarray, Values]]:
        """:meth:`read` as the batches the library decodes (in time order, none empty), not joined: a caller
        joining the points of several files copies each point once instead of once per file and again."""
        entry = self._entry(device, measurement)
        info = entry.info
        low = _TIME_MIN if start is None else int(start)
        high = _TIME_MAX if end is None else int(end)
        if low > high or high < info.start_time or low > info.end_time or info.count == 0:
            return []
        with self._native() as native:
            try:
                if self._prepared_reads and entry.locator is not None:
                    return self._read_prepared(native, (device, measurement), entry, low, high)
                found = self._read_query(native, info, low, high)
            except LibraryError as exc:
                raise TsFileError(f"reading {device}.{measurement} from {self.path}: {exc}") from exc
        return [found] if len(found[0]) else []

    def read_many(
        self, device: str, measurements: Iterable[str], start: int | None = None, end: int | None = None
    ) -> dict[str, tuple[np.ndarray, Values]]:
        """:meth:`read` for several measurements of one device (each keeps its own timestamps)."""
        return {m: self.read(device, m, start, end) for m in measurements}

    def _read_prepared(
        self, native: _Native, key: tuple[str, str], entry: _Entry, low: int, high: int
    ) -> list[tuple[np.ndarray, Values]]:
        prepared = native.prepared.get(key)
        if prepared is None:
            prepared = native.prepared[key] = native.reader.prepare_series(entry.locator, trust_index=True)
        data_type = entry.info.data_type
        dtype = None if data_type is TSDataType.TEXT else _NUMPY_DTYPE[data_type]
        parts: list[tuple[np.ndarray, Values]] = []
        with native.reader.query_prepared(prepared, start_time=low, end_time=high) as result:
            while (batch := result.read_arrow_record_batch()) is not None:
                if batch.num_rows == 0:
                    continue
                timestamps = batch.column(0).to_numpy().astype(np.int64, copy=False)
                column = batch.column(1)
                if dtype is None:
                    parts.append((timestamps, column.to_pylist()))
                else:
                    parts.append((timestamps, column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)))
        return parts

    def _read_query(self, native: _Native, info: SeriesInfo, low: int, high: int) -> tuple[np.ndarray, Values]:
        batch_rows = min(info.count + 1, 1 << 20)
        time_parts: list[np.ndarray] = []
        value_parts: list[Any] = []
        with native.reader.query_timeseries(info.device, [info.measurement], low, high) as result:
            while True:
                frame = result.read_data_frame(batch_rows)
                if frame is None or len(frame) == 0 or frame.shape[1] < 2:
                    break
                time_parts.append(frame.iloc[:, 0].to_numpy(dtype=np.int64))
                column = frame.iloc[:, 1]
                if info.data_type is TSDataType.TEXT:
                    value_parts.append(column.tolist())
                else:
                    value_parts.append(column.to_numpy(dtype=_NUMPY_DTYPE[info.data_type]))
        if not time_parts:
            return _empty(info.data_type)
        timestamps = np.concatenate(time_parts)
        keep = np.ones(len(timestamps), dtype=bool)
        keep[1:] = timestamps[1:] != timestamps[:-1]
        keep &= (timestamps >= low) & (timestamps <= high)
        if info.data_type is TSDataType.TEXT:
            flat = [v for part in value_parts for v in part]
            return timestamps[keep], [v for v, k in zip(flat, keep.tolist(), strict=True) if k]
        return timestamps[keep], np.concatenate(value_parts)[keep]
