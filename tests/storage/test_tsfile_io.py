"""TsFile writing and reading through iotdb_core.storage.tsfile_io, on real files."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import tsfile

from iotdb_core.datatypes import DEFAULT_ENCODING, Compressor, TSDataType, TSEncoding
from iotdb_core.storage.tsfile_io import (
    ROWS_PER_TABLET,
    SUPPORTED_ENCODINGS,
    SeriesData,
    TsFileError,
    TsFileSource,
    UnsupportedEncodingError,
    check_encoding,
    page_limits,
    set_page_limits,
    write_tsfile,
)

I32 = np.iinfo(np.int32)
I64 = np.iinfo(np.int64)
DEV = "root.sg.d1"

TEXT_VALUES = [
    "",
    "plain",
    "a,b,c",
    'say "hi"',
    "it's",
    "line\nbreak\r\n",
    "tab\tsep",
    "nul\x00inside",
    "ünïcødé 温度 🎉",
    "x" * 5000,
    " ",
    "\\backslash",
]


def sample_values(data_type: TSDataType, n: int, seed: int = 0) -> np.ndarray | list[str]:
    rng = np.random.default_rng(seed)
    if data_type is TSDataType.BOOLEAN:
        return rng.integers(0, 2, n).astype(bool)
    if data_type is TSDataType.INT32:
        return rng.integers(I32.min, I32.max, n, dtype=np.int32, endpoint=True)
    if data_type is TSDataType.INT64:
        return rng.integers(I64.min, I64.max, n, dtype=np.int64, endpoint=True)
    if data_type is TSDataType.FLOAT:
        return rng.normal(0, 1e4, n).astype(np.float32)
    if data_type is TSDataType.DOUBLE:
        return np.round(np.cumsum(rng.normal(0, 0.5, n)), 2) - rng.normal(0, 1e-9, n)
    return [TEXT_VALUES[i % len(TEXT_VALUES)] + str(i) for i in range(n)]


def assert_same(data_type: TSDataType, got: object, expected: object) -> None:
    if data_type is TSDataType.TEXT:
        assert isinstance(got, list)
        assert got == list(expected)  # type: ignore[call-overload]
        return
    assert isinstance(got, np.ndarray)
    exp = np.asarray(expected)
    assert got.dtype == exp.dtype
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE):
        bits = np.uint32 if data_type is TSDataType.FLOAT else np.uint64
        assert np.array_equal(got.view(bits), exp.view(bits))
    else:
        assert np.array_equal(got, exp)


def series(
    measurement: str,
    data_type: TSDataType,
    timestamps: object,
    values: object,
    *,
    device: str = DEV,
    encoding: TSEncoding | None = None,
    compressor: Compressor = Compressor.LZ4,
) -> SeriesData:
    return SeriesData(
        device,
        measurement,
        data_type,
        DEFAULT_ENCODING[data_type] if encoding is None else encoding,
        compressor,
        np.asarray(timestamps, dtype=np.int64),
        values,  # type: ignore[arg-type]
    )


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------

SUPPORTED = [(t, e) for t in TSDataType for e in sorted(SUPPORTED_ENCODINGS[t], key=lambda e: e.value)]


@pytest.mark.parametrize(
    ("data_type", "encoding"), SUPPORTED, ids=[f"{t.value}-{e.value}" for t, e in SUPPORTED]
)
def test_every_type_and_supported_encoding_round_trips(
    tmp_path: Path, data_type: TSDataType, encoding: TSEncoding
) -> None:
    n = 3000
    ts = np.arange(n, dtype=np.int64) * 7 - 5000
    values = sample_values(data_type, n)
    path = tmp_path / "f.tsfile"
    summary = write_tsfile(path, [series("m", data_type, ts, values, encoding=encoding)])
    assert summary.point_count == n
    assert summary.series[(DEV, "m")].min_time == -5000
    with TsFileSource(path) as src:
        info = src.info(DEV, "m")
        assert (info.data_type, info.encoding, info.compressor) == (data_type, encoding, Compressor.LZ4)
        got_ts, got = src.read(DEV, "m")
        assert got_ts.dtype == np.int64
        assert np.array_equal(got_ts, ts)
        assert_same(data_type, got, values)


@pytest.mark.parametrize("compressor", list(Compressor), ids=[c.value for c in Compressor])
def test_every_compressor_round_trips(tmp_path: Path, compressor: Compressor) -> None:
    ts = np.arange(2000, dtype=np.int64)
    doubles = sample_values(TSDataType.DOUBLE, 2000)
    texts = sample_values(TSDataType.TEXT, 2000)
    path = tmp_path / "f.tsfile"
    write_tsfile(
        path,
        [
            series("d", TSDataType.DOUBLE, ts, doubles, compressor=compressor),
            series("t", TSDataType.TEXT, ts, texts, compressor=compressor),
        ],
    )
    with TsFileSource(path) as src:
        assert src.info(DEV, "d").compressor is compressor
        assert_same(TSDataType.DOUBLE, src.read(DEV, "d")[1], doubles)
        assert_same(TSDataType.TEXT, src.read(DEV, "t")[1], texts)


def test_special_floating_values_round_trip_bit_for_bit(tmp_path: Path) -> None:
    specials = [0.0, -0.0, math.nan, math.inf, -math.inf, -1.5, 1e-300, -7.25, 123456.789, 5e-324, 1.7e308]
    doubles = np.array(specials, dtype=np.float64)
    floats = np.array([0.0, -0.0, math.nan, math.inf, -math.inf, -1.5, 1e-45, -3.4e38, 3.4e38], np.float32)
    written = []
    for encoding in sorted(SUPPORTED_ENCODINGS[TSDataType.DOUBLE], key=lambda e: e.value):
        written.append(
            series(f"d_{encoding.value}", TSDataType.DOUBLE, range(len(doubles)), doubles, encoding=encoding)
        )
        written.append(
            series(f"f_{encoding.value}", TSDataType.FLOAT, range(len(floats)), floats, encoding=encoding)
        )
    path = tmp_path / "f.tsfile"
    write_tsfile(path, written)
    with TsFileSource(path) as src:
        for item in written:
            expected = doubles if item.data_type is TSDataType.DOUBLE else floats
            assert_same(item.data_type, src.read(DEV, item.measurement)[1], expected)


def test_integer_extremes_and_negatives_round_trip(tmp_path: Path) -> None:
    i64 = np.array([0, -1, I64.min, I64.max, I64.min, I64.max, -(2**62), 2**62, I64.min + 1, -5], np.int64)
    i32 = np.array([0, -1, I32.min, I32.max, I32.min, I32.max, -(2**30), -5], np.int32)
    written = []
    for encoding in sorted(SUPPORTED_ENCODINGS[TSDataType.INT64], key=lambda e: e.value):
        written.append(
            series(f"l_{encoding.value}", TSDataType.INT64, range(len(i64)), i64, encoding=encoding)
        )
        written.append(
            series(f"i_{encoding.value}", TSDataType.INT32, range(len(i32)), i32, encoding=encoding)
        )
    path = tmp_path / "f.tsfile"
    write_tsfile(path, written)
    with TsFileSource(path) as src:
        for item in written:
            expected = i64 if item.data_type is TSDataType.INT64 else i32
            assert_same(item.data_type, src.read(DEV, item.measurement)[1], expected)
            info = src.info(DEV, item.measurement)
            assert (info.min_value, info.max_value) == (int(expected.min()), int(expected.max()))


def test_awkward_strings_round_trip(tmp_path: Path) -> None:
    values = TEXT_VALUES * 3
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [series("s", TSDataType.TEXT, range(len(values)), values)])
    with TsFileSource(path) as src:
        assert src.read(DEV, "s")[1] == values
        info = src.info(DEV, "s")
        assert (info.first_value, info.last_value) == (values[0], values[-1])


def test_text_statistics_end_at_nul_while_points_keep_it(tmp_path: Path) -> None:
    values = ["a\x00b", "c\x00d"]
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [series("s", TSDataType.TEXT, [1, 2], values)])
    with TsFileSource(path) as src:
        assert src.read(DEV, "s")[1] == values
        info = src.info(DEV, "s")
        assert (info.first_value, info.last_value) == ("a", "c")


def test_case_sensitive_measurements_round_trip(tmp_path: Path) -> None:
    ts = np.arange(100, dtype=np.int64)
    names = ["Temperature", "temperature", "TEMPERATURE", "tEmP"]
    written = [series(name, TSDataType.DOUBLE, ts, np.full(100, float(i))) for i, name in enumerate(names)]
    written.append(series("Status", TSDataType.TEXT, ts[:3], ["on", "off", "On"]))
    written.append(series("status", TSDataType.TEXT, ts[:2], ["x", "y"]))
    path = tmp_path / "f.tsfile"
    write_tsfile(path, written)
    with TsFileSource(path) as src:
        assert set(src.series()) == {(DEV, s.measurement) for s in written}
        for i, name in enumerate(names):
            got_ts, got = src.read(DEV, name)
            assert np.array_equal(got_ts, ts)
            assert np.array_equal(got, np.full(100, float(i)))
        assert src.read(DEV, "Status")[1] == ["on", "off", "On"]
        assert src.read(DEV, "status")[1] == ["x", "y"]


def test_device_and_measurement_names_round_trip(tmp_path: Path) -> None:
    devices = [
        "root.sg.d1",
        "root.SG.Dev1",
        "root.sg.`a-b`",
        "root.sg.`a.b`.c",
        "root.x",
        "root.sg.d1.sub.deep",
    ]
    devices.append("root.sg.温度")
    measurements = ["s", "Temperature", "`m-1`", "温度", "m.x"]
    written = [
        series(m, TSDataType.INT64, [1, 2, 3], np.array([d_i, m_i, -1]), device=d)
        for d_i, d in enumerate(devices)
        for m_i, m in enumerate(measurements)
    ]
    path = tmp_path / "f.tsfile"
    write_tsfile(path, written)
    with TsFileSource(path) as src:
        assert set(src.series()) == {(d, m) for d in devices for m in measurements}
        for d_i, d in enumerate(devices):
            for m_i, m in enumerate(measurements):
                assert src.read(d, m)[1].tolist() == [d_i, m_i, -1]


def test_many_devices_and_measurements_in_one_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    types = list(TSDataType)
    written = []
    for d in range(12):
        shared = np.cumsum(rng.integers(1, 5, 200)).astype(np.int64)
        for m in range(len(types) * 3):
            data_type = types[m % len(types)]
            ts = shared if m % 2 == 0 else np.cumsum(rng.integers(1, 9, 50 + m)).astype(np.int64)
            written.append(
                series(
                    f"m{m}", data_type, ts, sample_values(data_type, len(ts), seed=m), device=f"root.g.d{d}"
                )
            )
    path = tmp_path / "f.tsfile"
    summary = write_tsfile(path, written)
    assert len(summary.series) == len(written)
    assert summary.file_size == path.stat().st_size
    with TsFileSource(path) as src:
        assert len(src.series()) == len(written)
        for item in written:
            got_ts, got = src.read(item.device, item.measurement)
            assert np.array_equal(got_ts, item.timestamps)
            assert_same(item.data_type, got, item.values)


def test_series_longer_than_one_tablet_and_shared_timestamps(tmp_path: Path) -> None:
    n = ROWS_PER_TABLET * 2 + 123
    ts = np.arange(n, dtype=np.int64) * 3
    written = [
        series(name, TSDataType.INT64, ts, np.arange(n, dtype=np.int64) * (i + 1))
        for i, name in enumerate(["A", "a", "b", "B"])
    ]
    path = tmp_path / "f.tsfile"
    write_tsfile(path, written)
    with TsFileSource(path) as src:
        for i, name in enumerate(["A", "a", "b", "B"]):
            got_ts, got = src.read(DEV, name)
            assert np.array_equal(got_ts, ts)
            assert np.array_equal(got, np.arange(n, dtype=np.int64) * (i + 1))


def test_widening_and_value_conversions(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    write_tsfile(
        path,
        [
            series("d_from_int", TSDataType.DOUBLE, [1, 2], np.array([3, -4], np.int64)),
            series("d_from_float", TSDataType.DOUBLE, [1, 2], np.array([0.5, -0.25], np.float32)),
            series("f_from_int", TSDataType.FLOAT, [1, 2], np.array([7, -8], np.int32)),
            series("f_from_double", TSDataType.FLOAT, [1, 2], np.array([0.1, np.nan])),
            series("l_from_int", TSDataType.INT64, [1, 2], np.array([7, -8], np.int32)),
            series("i_from_list", TSDataType.INT32, [1, 2], [5, -6]),
            series("t_from_array", TSDataType.TEXT, [1, 2], np.array(["a", "b"])),
        ],
    )
    with TsFileSource(path) as src:
        assert_same(TSDataType.DOUBLE, src.read(DEV, "d_from_int")[1], np.array([3.0, -4.0]))
        assert_same(TSDataType.DOUBLE, src.read(DEV, "d_from_float")[1], np.array([0.5, -0.25]))
        assert_same(TSDataType.FLOAT, src.read(DEV, "f_from_int")[1], np.array([7, -8], np.float32))
        assert_same(TSDataType.FLOAT, src.read(DEV, "f_from_double")[1], np.array([0.1, np.nan], np.float32))
        assert_same(TSDataType.INT64, src.read(DEV, "l_from_int")[1], np.array([7, -8], np.int64))
        assert_same(TSDataType.INT32, src.read(DEV, "i_from_list")[1], np.array([5, -6], np.int32))
        assert src.read(DEV, "t_from_array")[1] == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# Time ranges
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranged_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, dict[str, object]]:
    n = 120_000
    ts = np.arange(n, dtype=np.int64) * 10 - 1000
    values: dict[str, object] = {
        "d": sample_values(TSDataType.DOUBLE, n),
        "t": sample_values(TSDataType.TEXT, n),
        "b": sample_values(TSDataType.BOOLEAN, n),
        "i": sample_values(TSDataType.INT32, n),
    }
    types = {"d": TSDataType.DOUBLE, "t": TSDataType.TEXT, "b": TSDataType.BOOLEAN, "i": TSDataType.INT32}
    path = tmp_path_factory.mktemp("ranged") / "f.tsfile"
    write_tsfile(path, [series(m, types[m], ts, v) for m, v in values.items()])
    return path, ts, values


RANGES = [
    (None, None),
    (-1000, -1000),
    (-1000, -990),
    (-995, -991),
    (0, 0),
    (5, 5),
    (-5, 5),
    (100_000, 99_990),
    (1_198_990, 1_198_990),
    (1_198_991, 10**15),
    (-(10**15), -1001),
    (None, -1000),
    (1_198_990, None),
    (99_990, 100_010),
    (12_345, 654_321),
    (-(2**63), 2**63 - 1),
]


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "query"])
def test_time_range_reads_are_inclusive(
    ranged_file: tuple[Path, np.ndarray, dict[str, object]], prepared: bool
) -> None:
    path, ts, values = ranged_file
    with TsFileSource(path, prepared_reads=prepared) as src:
        for start, end in RANGES:
            low = -(2**63) if start is None else start
            high = 2**63 - 1 if end is None else end
            mask = (ts >= low) & (ts <= high)
            for measurement, expected in values.items():
                if not prepared and (measurement == "t" or (measurement != "d" and mask.sum() > 20_000)):
                    continue
                got_ts, got = src.read(DEV, measurement, start, end)
                assert np.array_equal(got_ts, ts[mask]), (measurement, start, end)
                if isinstance(expected, list):
                    assert got == [v for v, k in zip(expected, mask.tolist(), strict=True) if k]
                else:
                    assert np.array_equal(got, np.asarray(expected)[mask])


def test_empty_range_results_have_the_series_dtype(
    ranged_file: tuple[Path, np.ndarray, dict[str, object]],
) -> None:
    path, _, _ = ranged_file
    with TsFileSource(path) as src:
        for measurement, dtype in [("d", np.float64), ("b", np.bool_), ("i", np.int32)]:
            got_ts, got = src.read(DEV, measurement, 10**12, 10**13)
            assert got_ts.dtype == np.int64 and len(got_ts) == 0
            assert isinstance(got, np.ndarray) and got.dtype == dtype and len(got) == 0
        text_ts, text = src.read(DEV, "t", 3, 4)
        assert text_ts.dtype == np.int64 and len(text_ts) == 0 and text == []


def test_read_many(ranged_file: tuple[Path, np.ndarray, dict[str, object]]) -> None:
    path, ts, values = ranged_file
    with TsFileSource(path) as src:
        got = src.read_many(DEV, ["d", "i", "t"], 0, 99)
        assert set(got) == {"d", "i", "t"}
        mask = (ts >= 0) & (ts <= 99)
        assert np.array_equal(got["d"][1], np.asarray(values["d"])[mask])
        assert np.array_equal(got["i"][0], ts[mask])


def test_small_pages_keep_range_reads_exact(tmp_path: Path) -> None:
    points, memory = page_limits()
    set_page_limits(max_points=100)
    try:
        assert page_limits()[0] == 100
        ts = np.arange(10_000, dtype=np.int64) * 2
        values = sample_values(TSDataType.DOUBLE, 10_000)
        path = tmp_path / "f.tsfile"
        write_tsfile(path, [series("d", TSDataType.DOUBLE, ts, values)])
    finally:
        set_page_limits(max_points=points, max_bytes=memory)
    assert page_limits() == (points, memory)
    with TsFileSource(path) as src:
        for start, end in [(199, 401), (200, 400), (0, 19_998), (19_999, 30_000), (5001, 5001)]:
            mask = (ts >= start) & (ts <= end)
            got_ts, got = src.read(DEV, "d", start, end)
            assert np.array_equal(got_ts, ts[mask])
            assert np.array_equal(got, values[mask])


# --------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------


def test_metadata_statistics_match_the_data(tmp_path: Path) -> None:
    n = 5000
    ts = np.cumsum(np.random.default_rng(3).integers(1, 100, n)).astype(np.int64) - 10_000
    data = {t: sample_values(t, n, seed=11) for t in TSDataType}
    data[TSDataType.TEXT] = [f'v{i}, "q"\n' for i in range(n)]
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [series(t.value, t, ts, v) for t, v in data.items()])
    with TsFileSource(path) as src:
        infos = src.series()
        for data_type, values in data.items():
            info = infos[(DEV, data_type.value)]
            assert (info.count, info.start_time, info.end_time) == (n, int(ts[0]), int(ts[-1]))
            assert info.first_value == values[0] and info.last_value == values[-1]
            if data_type is TSDataType.TEXT:
                assert info.min_value is None and info.sum_value is None
            elif data_type is TSDataType.BOOLEAN:
                assert info.sum_value == float(np.count_nonzero(values))
                assert info.min_value is None
            else:
                arr = np.asarray(values)
                assert info.min_value == arr.min() and info.max_value == arr.max()
                assert info.sum_value == pytest.approx(float(arr.astype(np.float64).sum()), rel=1e-9)


def test_nan_statistics_are_reported_as_unknown_or_nan_aware(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    write_tsfile(
        path,
        [
            series("nan_inside", TSDataType.DOUBLE, [1, 2, 3, 4], np.array([2.0, np.nan, -3.0, 9.0])),
            series("nan_first", TSDataType.DOUBLE, [1, 2, 3], np.array([np.nan, 1.0, 5.0])),
            series("infinite", TSDataType.FLOAT, [1, 2, 3], np.array([1.0, -np.inf, 0.5], np.float32)),
        ],
    )
    with TsFileSource(path) as src:
        inside = src.info(DEV, "nan_inside")
        assert (inside.min_value, inside.max_value) == (None, None)
        assert inside.sum_value is not None and math.isnan(inside.sum_value)
        assert (inside.first_value, inside.last_value) == (2.0, 9.0)
        first = src.info(DEV, "nan_first")
        assert first.min_value is None and first.max_value is None
        assert first.first_value is not None and math.isnan(first.first_value)
        assert first.last_value == 5.0
        infinite = src.info(DEV, "infinite")
        assert (infinite.min_value, infinite.max_value, infinite.sum_value) == (-math.inf, 1.0, -math.inf)


# --------------------------------------------------------------------------------------------------
# Interoperability with the tsfile package's own reader
# --------------------------------------------------------------------------------------------------


def test_files_are_readable_by_the_tsfile_package_reader(tmp_path: Path) -> None:
    ts = np.arange(25_000, dtype=np.int64) + 1_700_000_000_000
    doubles = sample_values(TSDataType.DOUBLE, len(ts))
    path = tmp_path / "f.tsfile"
    write_tsfile(
        path,
        [
            series("Temperature", TSDataType.DOUBLE, ts, doubles),
            series("temperature", TSDataType.INT64, ts[:3], np.array([1, 2, 3])),
            series("label", TSDataType.TEXT, ts[:3], ["a,b", "", "ü\n"], device="root.sg.`a-b`"),
        ],
    )
    reader = tsfile.TsFileReader(str(path))
    try:
        schemas = reader.get_all_timeseries_schemas()
        assert sorted(s.get_timeseries_name() for s in schemas[DEV].get_timeseries_list()) == [
            "Temperature",
            "temperature",
        ]
        assert schemas["root.sg.`a-b`"].get_timeseries_list()[0].get_data_type() == tsfile.TSDataType.TEXT
        with reader.query_timeseries(DEV, ["Temperature"], int(ts[0]), int(ts[-1])) as result:
            frame = result.read_data_frame(len(ts) + 1)
        assert np.array_equal(frame.iloc[:, 0].to_numpy(dtype=np.int64), ts)
        assert np.array_equal(frame.iloc[:, 1].to_numpy(dtype=np.float64), doubles)
        with reader.query_timeseries(DEV, ["temperature"], int(ts[0]), int(ts[2])) as result:
            assert result.next()
            assert result.get_value_by_index(2) == 1
        with reader.query_timeseries("root.sg.`a-b`", ["label"], int(ts[0]), int(ts[-1])) as result:
            assert result.read_data_frame(10).iloc[:, 1].tolist() == ["a,b", "", "ü\n"]
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------------
# Atomic, write-once files
# --------------------------------------------------------------------------------------------------


def test_successful_write_leaves_only_the_final_file(tmp_path: Path) -> None:
    path = tmp_path / "1-1.tsfile"
    (tmp_path / "1-1.tsfile.tmp").write_bytes(b"stale leftover of a crash")
    summary = write_tsfile(path, [series("s", TSDataType.INT32, [1, 2], np.array([1, 2], np.int32))])
    assert files_in(tmp_path) == ["1-1.tsfile"]
    assert summary.path == path and summary.file_size == path.stat().st_size
    assert (summary.min_time, summary.max_time) == (1, 2)


def test_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        write_tsfile(path, [series("s", TSDataType.INT32, [1], np.array([1], np.int32))])
    assert path.read_bytes() == b"keep me"
    assert files_in(tmp_path) == ["f.tsfile"]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (series("x", TSDataType.DOUBLE, [1, 2], ["1.0", "2.0"]), TypeError),
        (series("x", TSDataType.INT64, [1, 2], np.array([1.5, 2.0])), TypeError),
        (series("x", TSDataType.BOOLEAN, [1, 2], np.array([1, 0])), TypeError),
        (series("x", TSDataType.TEXT, [1, 2], ["a", 3]), TypeError),
        (series("x", TSDataType.TEXT, [1, 2], ["a", None]), TypeError),
        (series("x", TSDataType.INT32, [1, 2], np.array([1, 2**31])), ValueError),
        (series("x", TSDataType.FLOAT, [1, 2], np.array([1.0, 1e39])), ValueError),
        (series("x", TSDataType.INT64, [2, 1], np.array([1, 2])), ValueError),
        (series("x", TSDataType.INT64, [1, 1], np.array([1, 2])), ValueError),
        (series("x", TSDataType.INT64, [1, 2, 3], np.array([1, 2])), ValueError),
        (
            series("x", TSDataType.DOUBLE, [1], np.array([1.0]), encoding=TSEncoding.TS_2DIFF),
            UnsupportedEncodingError,
        ),
        (
            series("x", TSDataType.INT64, [1], np.array([1]), encoding=TSEncoding.SPRINTZ),
            UnsupportedEncodingError,
        ),
        (
            series("x", TSDataType.BOOLEAN, [1], np.array([True]), encoding=TSEncoding.RLE),
            UnsupportedEncodingError,
        ),
        (series("s", TSDataType.INT32, [5], np.array([1], np.int32)), ValueError),
    ],
    ids=[
        "text-into-double",
        "float-into-int64",
        "int-into-boolean",
        "int-into-text",
        "none-into-text",
        "int32-overflow",
        "float-overflow",
        "unsorted",
        "duplicate-timestamp",
        "length-mismatch",
        "lossy-encoding",
        "corrupting-encoding",
        "boolean-rle",
        "series-given-twice",
    ],
)
def test_invalid_series_leave_no_file(tmp_path: Path, bad: SeriesData, error: type[Exception]) -> None:
    good = series("s", TSDataType.INT32, [1, 2], np.array([1, 2], np.int32))
    with pytest.raises(error):
        write_tsfile(tmp_path / "f.tsfile", [good, bad])
    assert files_in(tmp_path) == []


def test_failure_inside_the_library_removes_the_temporary_file(tmp_path: Path) -> None:
    good = series("s", TSDataType.INT32, [1, 2], np.array([1, 2], np.int32))
    unencodable = series("t", TSDataType.TEXT, [1, 2], ["fine", "lone surrogate \ud800"])
    with pytest.raises(UnicodeEncodeError):
        write_tsfile(tmp_path / "f.tsfile", [good, unencodable])
    assert files_in(tmp_path) == []


def test_empty_series_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    summary = write_tsfile(
        path,
        [
            series("empty", TSDataType.DOUBLE, [], np.array([])),
            series("empty_text", TSDataType.TEXT, [], []),
            series("s", TSDataType.INT32, [4], np.array([9], np.int32)),
        ],
    )
    assert list(summary.series) == [(DEV, "s")]
    with TsFileSource(path) as src:
        assert list(src.series()) == [(DEV, "s")]
        assert (DEV, "empty") not in src


def test_file_with_only_empty_series_is_valid_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    summary = write_tsfile(path, [series("empty", TSDataType.DOUBLE, [], np.array([]))])
    assert summary.point_count == 0 and summary.min_time is None
    with TsFileSource(path) as src:
        assert src.series() == {}


def test_check_encoding_matches_the_supported_table() -> None:
    for data_type in TSDataType:
        for encoding in TSEncoding:
            if encoding in SUPPORTED_ENCODINGS[data_type]:
                check_encoding(data_type, encoding)
            else:
                with pytest.raises(UnsupportedEncodingError):
                    check_encoding(data_type, encoding)
        assert DEFAULT_ENCODING[data_type] in SUPPORTED_ENCODINGS[data_type]


# --------------------------------------------------------------------------------------------------
# Source lifecycle
# --------------------------------------------------------------------------------------------------


def test_source_lifecycle_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [series("s", TSDataType.INT64, [1, 2, 3], np.array([4, 5, 6]))])
    first = TsFileSource(path)
    second = TsFileSource(path)
    assert np.array_equal(first.read(DEV, "s")[1], second.read(DEV, "s")[1])
    with pytest.raises(KeyError):
        first.read(DEV, "S")
    with pytest.raises(KeyError):
        first.info("root.sg.d2", "s")
    first.close()
    first.close()
    assert first.closed
    with pytest.raises(ValueError, match="closed"):
        first.read(DEV, "s")
    assert second.read(DEV, "s", 2, 2)[1].tolist() == [5]
    second.close()


def test_source_is_shareable_between_threads(ranged_file: tuple[Path, np.ndarray, dict[str, object]]) -> None:
    path, ts, values = ranged_file
    failures: list[BaseException] = []
    with TsFileSource(path) as src:

        def work(offset: int) -> None:
            try:
                for k in range(20):
                    start = int(ts[(offset * 997 + k * 131) % len(ts)])
                    got_ts, got = src.read(DEV, "d", start, start + 5000)
                    mask = (ts >= start) & (ts <= start + 5000)
                    assert np.array_equal(got_ts, ts[mask])
                    assert np.array_equal(got, np.asarray(values["d"])[mask])
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


@pytest.mark.parametrize("content", [b"", b"not a tsfile at all", b"TsFile" + b"\x00" * 100])
def test_garbage_files_raise_tsfile_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f.tsfile"
    path.write_bytes(content)
    with pytest.raises(TsFileError):
        TsFileSource(path)


def test_truncated_file_raises_tsfile_error(tmp_path: Path) -> None:
    path = tmp_path / "f.tsfile"
    write_tsfile(path, [series("s", TSDataType.INT64, range(1000), np.arange(1000))])
    cut = tmp_path / "cut.tsfile"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(TsFileError):
        TsFileSource(cut)
