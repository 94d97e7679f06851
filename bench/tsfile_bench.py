"""Throughput and size of the TsFile layer (iotdb_core.storage.tsfile_io).

Scenarios:

1. one DOUBLE series, a random walk with two decimals (steps of at most ±0.50), timestamps 1 ms
   apart, written as ``--files`` files (10 x 1M points by default) for each encoding/compressor
   pair; reports write points/s and µs/point (validation, tablets, encoding, close, fsync, rename),
   bytes/point on disk, and full-range read points/s through ``TsFileSource.read`` (open included);
2. one device with ``--measurements`` DOUBLE measurements of ``--device-points`` points each in one
   file, once with shared timestamps (multi-column tablets) and once with per-series timestamps;
3. the same single-series file with larger pages (``set_page_limits``).

Targets: full-range read >= 2,000,000 points/s, <= 3 bytes/point for the random walk, write path
>= 1,000,000 points/s.

    python bench/tsfile_bench.py               # full run (10M points per encoding)
    python bench/tsfile_bench.py --quick       # 1M points, for a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
from iotdb_core.storage.tsfile_io import (
    SeriesData,
    TsFileSource,
    page_limits,
    set_page_limits,
    write_tsfile,
)

READ_TARGET = 2_000_000
SIZE_TARGET = 3.0
WRITE_TARGET = 1_000_000
DEVICE = "root.bench.d1"
START_MS = 1_700_000_000_000

CONFIGS: list[tuple[TSEncoding, Compressor]] = [
    (TSEncoding.GORILLA, Compressor.LZ4),
    (TSEncoding.GORILLA, Compressor.ZSTD),
    (TSEncoding.CHIMP, Compressor.LZ4),
    (TSEncoding.CHIMP, Compressor.ZSTD),
    (TSEncoding.PLAIN, Compressor.LZ4),
    (TSEncoding.PLAIN, Compressor.ZSTD),
    (TSEncoding.RLBE, Compressor.ZSTD),
]

DEVICE_CONFIGS: list[tuple[TSEncoding, Compressor]] = [
    (TSEncoding.GORILLA, Compressor.LZ4),
    (TSEncoding.CHIMP, Compressor.LZ4),
    (TSEncoding.PLAIN, Compressor.ZSTD),
]


@dataclass
class Result:
    label: str
    points: int
    write_s: float
    read_s: float
    size: int

    @property
    def write_rate(self) -> float:
        return self.points / self.write_s

    @property
    def read_rate(self) -> float:
        return self.points / self.read_s

    @property
    def bytes_per_point(self) -> float:
        return self.size / self.points

    def line(self) -> str:
        verdict = "ok " if self.meets_targets() else "MISS"
        return (
            f"{verdict} {self.label:<34} write {self.write_rate / 1e6:6.2f} M pts/s "
            f"({1e6 * self.write_s / self.points:5.3f} µs/pt)  {self.bytes_per_point:5.2f} B/pt  "
            f"read {self.read_rate / 1e6:6.2f} M pts/s"
        )

    def meets_targets(self) -> bool:
        return (
            self.read_rate >= READ_TARGET
            and self.bytes_per_point <= SIZE_TARGET
            and self.write_rate >= WRITE_TARGET
        )


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cents = 2000 + np.cumsum(rng.integers(-50, 51, n))
    return cents / 100.0


def single_series(
    workdir: Path, total: int, files: int, encoding: TSEncoding, compressor: Compressor
) -> Result:
    per_file = total // files
    values = random_walk(total, seed=1)
    timestamps = START_MS + np.arange(total, dtype=np.int64)
    paths = [workdir / f"single-{encoding.value}-{compressor.value}-{i}.tsfile" for i in range(files)]
    write_s = 0.0
    size = 0
    for i, path in enumerate(paths):
        part = slice(i * per_file, (i + 1) * per_file)
        item = SeriesData(
            DEVICE, "s", TSDataType.DOUBLE, encoding, compressor, timestamps[part], values[part]
        )
        began = time.perf_counter()
        summary = write_tsfile(path, [item])
        write_s += time.perf_counter() - began
        size += summary.file_size
    began = time.perf_counter()
    read_points = 0
    for i, path in enumerate(paths):
        with TsFileSource(path) as src:
            got_ts, got = src.read(DEVICE, "s")
        read_points += len(got_ts)
        if i == 0:
            if not np.array_equal(got, values[:per_file]):
                raise AssertionError("read values differ from written values")
            if not np.array_equal(got_ts, timestamps[:per_file]):
                raise AssertionError("read timestamps differ from written timestamps")
    read_s = time.perf_counter() - began
    if read_points != per_file * files:
        raise AssertionError(f"read {read_points} points, wrote {per_file * files}")
    for path in paths:
        path.unlink()
    label = f"{files}x{per_file:,} {encoding.value}+{compressor.value}"
    return Result(label, per_file * files, write_s, read_s, size)


def one_device(
    workdir: Path,
    points: int,
    measurements: int,
    *,
    shared: bool,
    encoding: TSEncoding,
    compressor: Compressor,
) -> Result:
    names = [f"m{i}" for i in range(measurements)]
    base = START_MS + np.arange(points, dtype=np.int64)
    series = []
    for i, name in enumerate(names):
        timestamps = base if shared else base + i
        series.append(
            SeriesData(
                DEVICE, name, TSDataType.DOUBLE, encoding, compressor, timestamps, random_walk(points, i)
            )
        )
    path = workdir / f"device-{shared}.tsfile"
    began = time.perf_counter()
    summary = write_tsfile(path, series)
    write_s = time.perf_counter() - began
    began = time.perf_counter()
    with TsFileSource(path) as src:
        columns = src.read_many(DEVICE, names)
    read_s = time.perf_counter() - began
    read_points = sum(len(ts) for ts, _ in columns.values())
    if read_points != points * measurements:
        raise AssertionError(f"read {read_points} points, wrote {points * measurements}")
    path.unlink()
    how = "shared ts" if shared else "own ts"
    label = f"{measurements}x{points:,} {how} {encoding.value}+{compressor.value}"
    return Result(label, points * measurements, write_s, read_s, summary.file_size)


def parse_config(text: str) -> tuple[TSEncoding, Compressor]:
    encoding, _, compressor = text.partition("+")
    return TSEncoding[encoding.upper()], Compressor[compressor.upper()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=10_000_000, help="points of the single series")
    parser.add_argument("--files", type=int, default=10, help="files the single series is split into")
    parser.add_argument("--device-points", type=int, default=1_000_000, help="points per measurement")
    parser.add_argument("--measurements", type=int, default=10)
    parser.add_argument(
        "--config",
        action="append",
        type=parse_config,
        help="ENCODING+COMPRESSOR to run (repeatable); default: a sweep of lossless pairs",
    )
    parser.add_argument("--page-points", type=int, nargs="*", default=[100_000], help="page sizes to try")
    parser.add_argument("--dir", type=Path, default=None, help="working directory (default: a temp dir)")
    parser.add_argument(
        "--quick", action="store_true", help="1M points, 2 files, 100k points per measurement"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.files, args.device_points = 1_000_000, 2, 100_000
    configs = args.config or CONFIGS

    workdir = Path(tempfile.mkdtemp(prefix="tsfile-bench-", dir=args.dir))
    default_pages = page_limits()
    try:
        print(
            f"targets: read >= {READ_TARGET:,} pts/s, <= {SIZE_TARGET} B/pt, write >= {WRITE_TARGET:,} pts/s"
        )
        print(f"page limits: {default_pages[0]:,} points / {default_pages[1]:,} bytes")
        print(f"\n1. one DOUBLE random walk, {args.points:,} points in {args.files} files")
        for encoding, compressor in configs:
            print(single_series(workdir, args.points, args.files, encoding, compressor).line(), flush=True)

        print(f"\n2. one device, {args.measurements} DOUBLE measurements x {args.device_points:,} points")
        for encoding, compressor in DEVICE_CONFIGS:
            for shared in (True, False):
                result = one_device(
                    workdir,
                    args.device_points,
                    args.measurements,
                    shared=shared,
                    encoding=encoding,
                    compressor=compressor,
                )
                print(result.line(), flush=True)

        for page_points in args.page_points:
            set_page_limits(max_points=page_points, max_bytes=max(default_pages[1], page_points * 16))
            print(f"\n3. pages of {page_points:,} points, {args.points // args.files:,} points in 1 file")
            for encoding, compressor in configs:
                result = single_series(workdir, args.points // args.files, 1, encoding, compressor)
                print(result.line(), flush=True)
            set_page_limits(max_points=default_pages[0], max_bytes=default_pages[1])
    finally:
        set_page_limits(max_points=default_pages[0], max_bytes=default_pages[1])
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
