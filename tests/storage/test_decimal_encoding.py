"""Scaled-integer TS_2DIFF for decimal DOUBLE series, and the native tablet writer.

Files are read back with the ``tsfile`` package's own reader as well as the engine's source, so a
chunk the library could not decode exactly would show here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tsfile

from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
from iotdb_core.storage import Engine
from iotdb_core.storage.tsfile_io import (
    SeriesData,
    TsFileSource,
    UnsupportedEncodingError,
    decimal_exact,
    with_decimal_encoding,
    write_tsfile,
)

DEV = "root.sg.d1"


def walk(n: int, seed: int = 3) -> np.ndarray:
    """A random walk of whole hundredths around zero (negative values included), as doubles."""
    steps = np.rint(np.random.default_rng(seed).normal(0.0, 70.0, n)).astype(np.int64)
    return np.cumsum(steps) / 100.0


def series(name: str, values: np.ndarray, encoding: TSEncoding = TSEncoding.CHIMP) -> SeriesData:
    stamps = np.arange(len(values), dtype=np.int64) * 1000
    return SeriesData(DEV, name, TSDataType.DOUBLE, encoding, Compressor.LZ4, stamps, values)


def read_with_library(path: Path, measurement: str, count: int) -> np.ndarray:
    reader = tsfile.TsFileReader(str(path))
    try:
        with reader.query_timeseries(DEV, [measurement], 0, 2**62) as result:
            frame = result.read_data_frame(count + 1)
        return frame.iloc[:, 1].to_numpy(dtype=np.float64)
    finally:
        reader.close()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@pytest.mark.parametrize(
    "values",
    [
        walk(50_000),
        np.array([0.0, 0.01, -0.01, 0.1, 1.5, -2.25, 123456.78, -99999999.99, 1e10, 42.0]),
        np.arange(-500, 500, dtype=np.float64),  # integers stored as doubles
        np.array([2**53 / 100 - 1, -(2**53 / 100 - 1)]).round(),
    ],
    ids=["random-walk", "edge-decimals", "integers", "near-the-bound"],
)
def test_decimal_doubles_round_trip_exactly_through_the_tsfile_reader(tmp_path: Path, values: np.ndarray) -> None:
    assert decimal_exact(values)
    chosen = with_decimal_encoding(series("v", values))
    path = tmp_path / "decimal.tsfile"
    write_tsfile(path, [chosen])
    assert same_bits(read_with_library(path, "v", len(values)), values)
    with TsFileSource(path) as source:
        assert source.info(DEV, "v").encoding is TSEncoding.TS_2DIFF
        stamps, read = source.read(DEV, "v")
        assert same_bits(read, values)
        assert np.array_equal(stamps, chosen.timestamps)


def test_decimal_encoding_is_smaller_than_the_declared_one(tmp_path: Path) -> None:
    values = walk(200_000)
    write_tsfile(tmp_path / "declared.tsfile", [series("v", values)])
    write_tsfile(tmp_path / "decimal.tsfile", [with_decimal_encoding(series("v", values))])
    declared = (tmp_path / "declared.tsfile").stat().st_size
    decimal = (tmp_path / "decimal.tsfile").stat().st_size
    assert decimal < 0.6 * declared


@pytest.mark.parametrize(
    "odd",
    [-0.0, float("nan"), float("inf"), -float("inf"), 0.001, 1.005, 2**53 / 100 * 4, 0.1 + 0.2],
    ids=["minus-zero", "nan", "inf", "minus-inf", "three-decimals", "1.005", "beyond-the-bound", "0.1+0.2"],
)
def test_values_the_scaled_encoding_would_change_keep_the_declared_encoding(tmp_path: Path, odd: float) -> None:
    values = walk(1_000)
    values[500] = odd
    assert not decimal_exact(values)
    kept = with_decimal_encoding(series("v", values))
    path = tmp_path / "fallback.tsfile"
    write_tsfile(path, [kept])
    assert same_bits(read_with_library(path, "v", len(values)), values)
    with TsFileSource(path) as source:
        assert source.info(DEV, "v").encoding is TSEncoding.CHIMP
        assert same_bits(source.read(DEV, "v")[1], values)


def test_a_series_marked_scaled_keeps_its_encoding_when_its_values_are_not_decimals(tmp_path: Path) -> None:
    values = walk(100)
    values[7] = 0.125
    marked = SeriesData(DEV, "v", TSDataType.DOUBLE, TSEncoding.GORILLA, Compressor.LZ4,
                        np.arange(100, dtype=np.int64), values, scaled_decimal=True)
    path = tmp_path / "kept.tsfile"
    write_tsfile(path, [marked])
    with TsFileSource(path) as source:
        assert source.info(DEV, "v").encoding is TSEncoding.GORILLA
        assert same_bits(source.read(DEV, "v")[1], values)


def test_only_double_series_become_scaled_decimals(tmp_path: Path) -> None:
    stamps = np.arange(10, dtype=np.int64)
    floats = SeriesData(DEV, "f", TSDataType.FLOAT, TSEncoding.CHIMP, Compressor.LZ4, stamps,
                        np.arange(10, dtype=np.float32))
    assert with_decimal_encoding(floats) is floats
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [SeriesData(**{**floats.__dict__, "scaled_decimal": True})])
    with TsFileSource(path) as source:
        assert source.info(DEV, "f").encoding is TSEncoding.CHIMP


def test_declaring_ts_2diff_for_a_double_series_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedEncodingError, match="TS_2DIFF cannot store DOUBLE"):
        write_tsfile(tmp_path / "x.tsfile", [series("v", walk(10), TSEncoding.TS_2DIFF)])
    assert list(tmp_path.iterdir()) == []


def test_native_writer_writes_the_bytes_of_the_package_writer(tmp_path: Path) -> None:
    n = 70_000  # more than one tablet of tsfile_io.ROWS_PER_TABLET
    stamps = np.arange(n, dtype=np.int64) * 10
    doubles = walk(n)
    ints = np.arange(n, dtype=np.int64) % 1000
    written = [
        SeriesData(DEV, "a", TSDataType.DOUBLE, TSEncoding.CHIMP, Compressor.LZ4, stamps, doubles),
        SeriesData(DEV, "b", TSDataType.INT64, TSEncoding.TS_2DIFF, Compressor.ZSTD, stamps, ints),
    ]
    write_tsfile(tmp_path / "native.tsfile", written)

    writer = tsfile.TsFileWriter(str(tmp_path / "package.tsfile"))
    writer.register_timeseries(DEV, tsfile.TimeseriesSchema("a", tsfile.TSDataType.DOUBLE, tsfile.TSEncoding.CHIMP,
                                                            tsfile.Compressor.LZ4))
    writer.register_timeseries(DEV, tsfile.TimeseriesSchema("b", tsfile.TSDataType.INT64,
                                                            tsfile.TSEncoding.TS_2DIFF, tsfile.Compressor.ZSTD))
    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        tablet = tsfile.Tablet(["a", "b"], [tsfile.TSDataType.DOUBLE, tsfile.TSDataType.INT64], stop - start)
        tablet.set_table_name(DEV)
        for row in range(stop - start):
            tablet.add_timestamp(row, int(stamps[start + row]))
            tablet.add_value_by_index(0, row, float(doubles[start + row]))
            tablet.add_value_by_index(1, row, int(ints[start + row]))
        writer.write_tablet(tablet)
    writer.close()
    assert (tmp_path / "native.tsfile").read_bytes() == (tmp_path / "package.tsfile").read_bytes()


def test_the_engine_flushes_decimal_series_scaled_and_others_as_declared(iotdb_engine: Engine) -> None:
    decimals = walk(20_000)
    other = decimals.copy()
    other[123] = -0.0
    stamps = np.arange(len(decimals), dtype=np.int64)
    iotdb_engine.insert_tablet("root.db.dev", stamps, ["decimal", "other"], [decimals, other])
    iotdb_engine.flush()
    files = list((iotdb_engine.data_dir / "sequence").glob("*.tsfile"))
    assert len(files) == 1
    with TsFileSource(files[0]) as source:
        assert source.info("root.db.dev", "decimal").encoding is TSEncoding.TS_2DIFF
        assert source.info("root.db.dev", "other").encoding is TSEncoding.CHIMP
    assert iotdb_engine.registry.get("root.db.dev", "decimal").encoding is TSEncoding.CHIMP  # the schema's stays
    assert same_bits(iotdb_engine.query("root.db.dev.decimal").values, decimals)
    assert same_bits(iotdb_engine.query("root.db.dev.other").values, other)
