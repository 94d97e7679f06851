"""What a newcomer meets first: the shipped configuration, export by pattern, Ctrl-C, option order, pipes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage.engine import Engine
from iotdb_core.storage.tsfile_io import TsFileSource

from .conftest import assert_one_line_error, iotdb

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT_ROOT / "conf" / "iotdb-system.properties"


def test_the_shipped_configuration_does_not_warn_about_its_own_keys(tmp_path: Path) -> None:
    for formatter in ("json", "line"):
        shown = iotdb("config", "--config", str(SHIPPED), env={"IOTDB_MQTT_PAYLOAD_FORMATTER": formatter})
        assert shown.returncode == 0, shown.stderr
        assert "WARNING" not in shown.stderr, shown.stderr
    typo = tmp_path / "typo.properties"
    typo.write_text(SHIPPED.read_text() + "mqtt_prot=1884\n")
    warned = iotdb("config", "--config", str(typo))
    assert "unknown configuration key 'mqtt_prot'" in warned.stderr


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root.sg.d1.{temp,hum}, root.sg.d3.{temp,x} and root.sg.d3.temp.a (a device below a measurement's name)."""
    directory = tmp_path_factory.mktemp("patterns") / "data"
    with Engine.open(directory, default_settings()) as engine:
        double = [TSDataType.DOUBLE, TSDataType.DOUBLE]
        engine.insert_tablet("root.sg.d1", [1, 2], ["temp", "hum"], [[1.0, None], [2.0, 3.0]], double)
        engine.insert_tablet("root.sg.d3", [1, 3], ["temp", "x"], [[4.0, 5.0], [None, 6.0]], double)
        engine.insert_tablet("root.sg.d3.temp", [4], ["a"], [[7.0]], [TSDataType.DOUBLE])
    return directory


@pytest.mark.parametrize(("pattern", "series"), [
    ("root.sg.*.temp", ["root.sg.d1.temp", "root.sg.d3.temp"]),
    ("root.sg.d3.*", ["root.sg.d3.temp", "root.sg.d3.x"]),
    ("root.sg.**", ["root.sg.d1.hum", "root.sg.d1.temp", "root.sg.d3.temp", "root.sg.d3.temp.a", "root.sg.d3.x"]),
])
def test_export_patterns_are_series_patterns_in_csv_and_tsfile_modes(data_dir: Path, tmp_path: Path, pattern: str,
                                                                   series: list[str]) -> None:
    as_csv = iotdb("export", pattern, "--data-dir", str(data_dir), "--time-format", "epoch")
    assert as_csv.returncode == 0, as_csv.stderr
    header, *rows = as_csv.stdout.splitlines()
    assert header.split(",") == ["Time", *series]
    assert rows, "rows with a value in the matched series"
    assert all(any(cell for cell in row.split(",")[1:]) for row in rows), "no row of nulls only"
    as_tsfile = iotdb("export", pattern, "--data-dir", str(data_dir), "--tsfile", str(tmp_path / "ts"))
    assert as_tsfile.returncode == 0, as_tsfile.stderr
    found: list[str] = []
    for path in sorted((tmp_path / "ts").glob("*.tsfile")):
        with TsFileSource(path) as source:
            found.extend(f"{device}.{measurement}" for device, measurement in source.series())
    assert sorted(found) == series


def test_export_says_when_nothing_matched(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "none.csv"
    assert_one_line_error(iotdb("export", "root.sg.*.nope", "--data-dir", str(data_dir), "-o", str(target)),
                          "no series matches root.sg.*.nope", "nothing exported")
    assert not target.exists() and not Path(str(target) + ".partial").exists()
    assert_one_line_error(iotdb("export", "sg.d1", "--data-dir", str(data_dir)), "pattern 'sg.d1'")


ROWS = 20_000


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One series of 20 000 points: enough to fill a pipe and to take a while to export page by page."""
    directory = tmp_path_factory.mktemp("big") / "data"
    with Engine.open(directory, default_settings()) as engine:
        engine.insert_tablet("root.big.d1", list(range(ROWS)), ["v"], [np.arange(ROWS, dtype=np.float64).tolist()],
                             [TSDataType.DOUBLE])
    return directory


def test_ctrl_c_leaves_no_complete_looking_file_and_reports_what_was_written(big_data: Path, tmp_path: Path) -> None:
    data = big_data
    rows = ROWS
    target = tmp_path / "big.csv"
    partial = Path(str(target) + ".partial")
    process = subprocess.Popen(
        [sys.executable, "-m", "iotdb_core.cli.main", "export", "root.big.**", "--data-dir", str(data),
         "--page-size", "20", "--time-format", "epoch", "-o", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TZ": "UTC"},
    )
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 2000):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert not target.exists()
    lines = partial.read_text().splitlines()
    assert lines[0] == "Time,root.big.d1.v"
    assert 0 < len(lines) - 1 < rows
    assert stderr.strip() == (f"iotdb export: error: interrupted: {len(lines) - 1} rows written to {partial}; "
                              f"{target} was not written")


def test_data_dir_works_in_any_position(data_dir: Path) -> None:
    expected = iotdb("query", "COUNT TIMESERIES root.sg.**", "--data-dir", str(data_dir), "--format", "csv")
    assert expected.returncode == 0, expected.stderr
    assert expected.stdout == "count\n5\n"
    for args in (
        ["--data-dir", str(data_dir), "query", "COUNT TIMESERIES root.sg.**", "--format", "csv"],
        ["query", "--data-dir", str(data_dir), "COUNT TIMESERIES root.sg.**", "--format", "csv"],
    ):
        moved = iotdb(*args)
        assert (moved.returncode, moved.stdout) == (0, expected.stdout), moved.stderr
    listed = [iotdb(*args) for args in (["--data-dir", str(data_dir), "user", "--create", "list"],
                                        ["user", "--data-dir", str(data_dir), "list"],
                                        ["user", "list", "--data-dir", str(data_dir)])]
    assert [(result.returncode, result.stdout) for result in listed] == [(0, "root\n")] * 3
    assert "does not apply to `iotdb config`" in iotdb("--data-dir", str(data_dir), "config").stderr


@pytest.mark.parametrize("command", [
    ["query", "SELECT v FROM root.big.d1", "--format", "csv"],
    ["query", "SELECT v FROM root.big.d1"],
    ["export", "root.big.**"],
])
def test_a_closed_pipe_ends_quietly(big_data: Path, command: list[str]) -> None:
    producer = subprocess.Popen([sys.executable, "-m", "iotdb_core.cli.main", *command, "--data-dir", str(big_data)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None
    first = producer.stdout.readline()
    producer.stdout.close()  # what `| head -1` does
    _, stderr = producer.communicate(timeout=60)
    assert first
    assert stderr.decode() == ""
    assert producer.returncode == 128 + signal.SIGPIPE
