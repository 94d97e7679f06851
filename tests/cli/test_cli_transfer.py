"""``iotdb export`` and ``iotdb import`` as real commands: CSV round trips, TsFile export, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iotdb_core.storage.tsfile_io import TsFileSource
from iotdb_core.testing.server import ServerProcess

from .conftest import assert_one_line_error, iotdb, rest_post

TABLET = {
    "device": "root.tr.d1",
    "timestamps": [-1500, 0, 1000, 2000, 3000],
    "measurements": ["b", "i", "l", "f", "d", "t"],
    "data_types": ["BOOLEAN", "INT32", "INT64", "FLOAT", "DOUBLE", "TEXT"],
    "values": [
        [True, False, None, True, False],
        [1, -2147483648, 2147483647, None, 7],
        [2**62, None, -(2**63), 5, 0],
        [0.1, None, -3.5, 3.4028234663852886e38, 1e-7],
        [1.5, "NaN", None, -0.25, 1e300],
        ["a,b", 'say "hi"', "two\nlines", None, " héllo"],
    ],
    "is_aligned": False,
}
TYPES = dict(zip(TABLET["measurements"], TABLET["data_types"], strict=True))  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def source(server: ServerProcess) -> None:
    assert rest_post(server, "/rest/v2/insertTablet", TABLET)["code"] == 200
    second = {"device": "root.tr.d2", "timestamps": [500, 1000], "measurements": ["x"], "data_types": ["DOUBLE"],
              "values": [[7.0, 8.0]], "is_aligned": False}
    assert rest_post(server, "/rest/v2/insertTablet", second)["code"] == 200


def rows(*where: str) -> Any:
    """``SELECT * FROM root.tr.**`` as JSON rows from the server or data directory given by ``where``."""
    process = iotdb("query", "SELECT * FROM root.tr.**", "--format", "json", "--time-format", "epoch", *where)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def types(*where: str) -> dict[str, str]:
    process = iotdb("query", "SHOW TIMESERIES root.tr.**", "--format", "json", *where)
    assert process.returncode == 0, process.stderr
    return {row["timeseries"]: row["dataType"] for row in json.loads(process.stdout)}


def test_round_trip_with_type_annotations(url: list[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "out.csv"
    process = iotdb("export", *url, "root.tr.**", "--data-type", "-o", str(csv_path))
    assert process.returncode == 0, process.stderr
    text = csv_path.read_text()
    assert text.splitlines()[0] == (
        "Time,root.tr.d1.b(BOOLEAN),root.tr.d1.d(DOUBLE),root.tr.d1.f(FLOAT),root.tr.d1.i(INT32),"
        "root.tr.d1.l(INT64),root.tr.d1.t(TEXT),root.tr.d2.x(DOUBLE)"
    )
    assert text.splitlines()[1].startswith("1969-12-31T23:59:58.500+00:00,true,1.5,0.1,1,4611686018427387904,")

    target = tmp_path / "imported"
    process = iotdb("import", str(csv_path), "--data-dir", str(target))
    assert process.returncode == 0, process.stderr
    assert "imported 6 rows" in process.stdout

    assert rows("--data-dir", str(target)) == rows(*url)
    assert types("--data-dir", str(target)) == types(*url)


def test_round_trip_inferring_types_with_epoch_times(url: list[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "plain.csv"
    process = iotdb("export", *url, "root.tr.**", "--time-format", "epoch", "-o", str(csv_path))
    assert process.returncode == 0, process.stderr
    assert csv_path.read_text().splitlines()[1].startswith("-1500,true,1.5,0.1,1,")

    target = tmp_path / "inferred"
    process = iotdb("import", str(csv_path), "--data-dir", str(target), "--batch-size", "2")
    assert process.returncode == 0, process.stderr
    assert rows("--data-dir", str(target)) == rows(*url)
    assert types("--data-dir", str(target)) == {
        "root.tr.d1.b": "BOOLEAN", "root.tr.d1.i": "INT64", "root.tr.d1.l": "INT64", "root.tr.d1.f": "DOUBLE",
        "root.tr.d1.d": "DOUBLE", "root.tr.d1.t": "TEXT", "root.tr.d2.x": "DOUBLE",
    }


def test_export_pages_through_a_data_directory(url: list[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "all.csv"
    assert iotdb("export", *url, "root.tr.**", "--data-type", "-o", str(csv_path)).returncode == 0
    target = tmp_path / "copy"
    assert iotdb("import", str(csv_path), "--data-dir", str(target)).returncode == 0
    whole = iotdb("export", "--data-dir", str(target), "root.tr.**", "--time-format", "epoch")
    paged = iotdb("export", "--data-dir", str(target), "root.tr.**", "--time-format", "epoch", "--page-size", "2")
    assert whole.returncode == paged.returncode == 0, whole.stderr + paged.stderr
    assert paged.stdout == whole.stdout
    assert len(whole.stdout.splitlines()) == 1 + 6 + 1  # header, 6 rows, one TEXT value spans two lines


def test_export_of_a_query(url: list[str]) -> None:
    process = iotdb("export", *url, "--query", "SELECT d, x FROM root.tr.d1, root.tr.d2 WHERE time >= 1000",
                    "--data-type", "--time-format", "epoch")
    assert process.returncode == 0, process.stderr
    assert process.stdout == "Time,root.tr.d1.d(DOUBLE),root.tr.d2.x(DOUBLE)\n1000,,8.0\n2000,-0.25,\n3000,1e+300,\n"


def test_import_into_a_server_aligned_by_device(server: ServerProcess, url: list[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(
        "Time,Device,temp(FLOAT),status\n"
        "2024-01-01T00:00:00.000+01:00,root.imp.a,21.5,ok\n"
        "2024-01-01T00:00:01Z,root.imp.a,22,\n"
        "1704063600000,root.imp.b,,late\n"
    )
    process = iotdb("import", str(csv_path), *url)
    assert process.returncode == 0, process.stderr
    assert "imported 3 rows (4 points, 3 series)" in process.stdout
    body = rest_post(server, "/rest/v2/query", {"sql": "SELECT temp, status FROM root.imp.** ALIGN BY DEVICE"})
    assert body["timestamps"] == [1704063600000, 1704067201000, 1704063600000]
    assert body["values"] == [["root.imp.a", "root.imp.a", "root.imp.b"], [21.5, 22.0, None], ["ok", None, "late"]]


def test_import_uses_the_existing_series_type(server: ServerProcess, url: list[str], tmp_path: Path) -> None:
    assert rest_post(server, "/rest/v2/nonQuery", {"sql": "CREATE TIMESERIES root.imp.c.v WITH DATATYPE=TEXT"})[
        "code"] == 200
    csv_path = tmp_path / "typed.csv"
    csv_path.write_text("Time,root.imp.c.v\n1,42\n2,true\n")
    assert iotdb("import", str(csv_path), *url).returncode == 0
    body = rest_post(server, "/rest/v2/query", {"sql": "SELECT v FROM root.imp.c"})
    assert body["values"] == [["42", "true"]]


@pytest.mark.parametrize(
    "content,fragments",
    [
        ("Time,root.bad.d.s(INT32)\n1,5\n2,five\n", ["line 3", "root.bad.d.s(INT32)", "'five' is not an integer"]),
        ("Time,root.bad.d.s\nyesterday,5\n", ["line 2", "'yesterday' is not a time"]),
        ("When,root.bad.d.s\n1,5\n", ["the first header column must be Time"]),
        ("", ["is empty"]),
    ],
    ids=["value", "time", "header", "empty"],
)
def test_import_errors(url: list[str], tmp_path: Path, content: str, fragments: list[str]) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(content)
    assert_one_line_error(iotdb("import", str(csv_path), *url), "iotdb import: error:", *fragments)


def test_import_of_a_missing_file(url: list[str], tmp_path: Path) -> None:
    assert_one_line_error(iotdb("import", str(tmp_path / "missing.csv"), *url), "cannot read")


def test_export_to_tsfiles(url: list[str], tmp_path: Path) -> None:
    directory = tmp_path / "tsfiles"
    process = iotdb("export", *url, "root.tr.d1.*", "--tsfile", str(directory), "--points-per-file", "10")
    assert process.returncode == 0, process.stderr
    files = sorted(directory.glob("*.tsfile"))
    assert len(files) >= 2  # more points than --points-per-file: split between files, never within a series
    found: dict[str, tuple[list[int], list[Any]]] = {}
    for path in files:
        assert path.name.endswith("-0-0.tsfile")
        with TsFileSource(path) as source:
            for device, measurement in source.series():
                stamps, values = source.read(device, measurement)
                found[f"{device}.{measurement}"] = (stamps.tolist(), list(values))
    assert sorted(found) == [f"root.tr.d1.{m}" for m in sorted(TABLET["measurements"])]  # type: ignore[arg-type]
    for index, measurement in enumerate(TABLET["measurements"]):  # type: ignore[arg-type]
        column = TABLET["values"][index]  # type: ignore[index]
        expected = [(t, v) for t, v in zip(TABLET["timestamps"], column, strict=True) if v is not None]  # type: ignore[arg-type]
        stamps, values = found[f"root.tr.d1.{measurement}"]
        assert stamps == [t for t, _ in expected]
        for got, (_, want) in zip(values, expected, strict=True):
            if want == "NaN":
                assert math.isnan(got)
            elif TYPES[measurement] == "FLOAT":
                assert np.float32(got) == np.float32(want)
            else:
                assert got == want


def test_export_errors(url: list[str]) -> None:
    assert_one_line_error(iotdb("export", *url, "root.**", "--query", "SELECT * FROM root.**"), "not both")
    assert_one_line_error(iotdb("export", *url, "--query", "SELEC"), "700")
    assert_one_line_error(iotdb("export", *url, "-o", "/nonexistent-dir/x.csv"), "cannot write")
