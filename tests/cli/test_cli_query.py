"""``iotdb query`` and ``iotdb sql`` as real commands, against a server (REST) and a data directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from iotdb_core.storage import Engine
from iotdb_core.testing.server import ServerProcess

from .conftest import assert_one_line_error, iotdb, rest_post

COSTS = re.compile(r"^It costs \d+\.\d{3}s$", re.MULTILINE)


@pytest.fixture(scope="module", autouse=True)
def data(server: ServerProcess) -> None:
    reply = rest_post(server, "/rest/v2/nonQuery", {
        "sql": "INSERT INTO root.cli.d1(time, s1, s2, note) VALUES (1000, 1.5, true, 'a,b'), (2000, 2.5, false, null)"
    })
    assert reply["code"] == 200, reply


def without_costs(text: str) -> str:
    assert COSTS.search(text), text
    return COSTS.sub("", text)


def test_table_format(url: list[str]) -> None:
    process = iotdb("query", "SELECT s1, s2, note FROM root.cli.d1", *url)
    assert process.returncode == 0, process.stderr
    assert without_costs(process.stdout) == (
        "+-----------------------------+--------------+--------------+----------------+\n"
        "|                         Time|root.cli.d1.s1|root.cli.d1.s2|root.cli.d1.note|\n"
        "+-----------------------------+--------------+--------------+----------------+\n"
        "|1970-01-01T00:00:01.000+00:00|           1.5|          true|             a,b|\n"
        "|1970-01-01T00:00:02.000+00:00|           2.5|         false|            null|\n"
        "+-----------------------------+--------------+--------------+----------------+\n"
        "Total line number = 2\n"
        "\n"
    )


def test_csv_format(url: list[str]) -> None:
    process = iotdb("query", "SELECT s1, s2, note FROM root.cli.d1;", "--format", "csv", "--time-format", "epoch", *url)
    assert process.returncode == 0, process.stderr
    assert process.stdout == (
        "Time,root.cli.d1.s1,root.cli.d1.s2,root.cli.d1.note\n"
        '1000,1.5,true,"a,b"\n'
        "2000,2.5,false,\n"
    )


def test_json_format(url: list[str]) -> None:
    process = iotdb("query", "SELECT s1, note FROM root.cli.d1", "--format", "json", *url)
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == [
        {"Time": 1000, "root.cli.d1.s1": 1.5, "root.cli.d1.note": "a,b"},
        {"Time": 2000, "root.cli.d1.s1": 2.5, "root.cli.d1.note": None},
    ]
    process = iotdb("query", "COUNT TIMESERIES root.cli.**", "--format", "json", *url)
    assert json.loads(process.stdout) == [{"count": 3}]


def test_metadata_and_empty_results(url: list[str]) -> None:
    process = iotdb("query", "SHOW DEVICES root.cli.**", *url)
    assert process.returncode == 0, process.stderr
    assert "|root.cli.d1|    false|" in process.stdout
    assert "Total line number = 1" in process.stdout
    process = iotdb("query", "SELECT s1 FROM root.cli.d1 WHERE time > 5000", *url)
    assert "Empty set." in process.stdout


def test_statements_without_rows(url: list[str]) -> None:
    process = iotdb("query", "INSERT INTO root.cli.w(time, s) VALUES (1, 5)", *url)
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("Msg: The statement is executed successfully.\n")
    process = iotdb("query", "INSERT INTO root.cli.w(time, s) VALUES (2, 6)", "--format", "json", *url)
    assert json.loads(process.stdout) == {"code": 200, "message": "SUCCESS_STATUS"}


def test_statement_errors_are_one_line(url: list[str]) -> None:
    assert_one_line_error(iotdb("query", "SELEC * FROM root.**", *url), "iotdb query: error: 700:")
    assert_one_line_error(
        iotdb("query", "SELECT s1 FROM root.cli.d1", "--max-rows", "1", *url), "708", "max row size (1)"
    )


def test_credentials(url: list[str]) -> None:
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *url, "-pw", "wrong"), "600", "WRONG_LOGIN_PASSWORD")
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *url, env={"IOTDB_PASSWORD": "nope"}), "600")
    process = iotdb("query", "SHOW DATABASES", *url, "-u", "root", env={"IOTDB_PASSWORD": "root"})
    assert process.returncode == 0, process.stderr


def test_connection_errors(server: ServerProcess, tmp_path: Path) -> None:
    assert_one_line_error(iotdb("query", "SHOW DATABASES", "--url", "http://127.0.0.1:9"), "cannot reach")
    line = assert_one_line_error(iotdb("query", "SHOW DATABASES", "--data-dir", str(server.data_dir)), "--url")
    assert "held by a running server" in line
    assert_one_line_error(iotdb("query", "SHOW DATABASES", "--data-dir", str(tmp_path / "none")), "no data directory")


def test_local_data_directory(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "data") as engine:
        engine.insert_tablet("root.local.d", [1, 2, 3], ["v"], [[10, 20, None]])
    process = iotdb("query", "SELECT v FROM root.local.d", "--data-dir", str(tmp_path / "data"),
                    "--format", "csv", "--time-format", "epoch")
    assert process.returncode == 0, process.stderr
    assert process.stdout == "Time,root.local.d.v\n1,10.0\n2,20.0\n"


def test_shell_reads_statements_from_stdin(url: list[str]) -> None:
    script = (
        "SELECT s1\n"
        "  FROM root.cli.d1\n"
        "  WHERE time < 1500;\n"
        "COUNT TIMESERIES root.cli.d1.*; SHOW DEVICES root.cli.d1\n"
        ";\n"
        "exit\n"
        "SELECT never FROM root.run;\n"
    )
    process = iotdb("sql", *url, stdin=script)
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    assert "IoTDB>" not in out  # no prompts without a terminal
    assert "|1970-01-01T00:00:01.000+00:00|           1.5|" in out
    assert out.count("Total line number = 1") == 3
    assert len(COSTS.findall(out)) == 3
    assert "never" not in out


def test_shell_goes_on_after_errors(url: list[str]) -> None:
    script = "SELEC x;\nSELECT s1 FROM root.cli.d1 WHERE time > 1500"
    process = iotdb("sql", *url, "--time-format", "epoch", stdin=script)
    assert process.returncode == 2
    assert process.stdout.startswith("Msg: 700: ")
    assert "|2000|           2.5|" in process.stdout
    assert "Traceback" not in process.stdout + process.stderr


def test_shell_on_a_data_directory(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "data") as engine:
        engine.insert_tablet("root.local.d", [1], ["v"], [[1.25]])
    process = iotdb("sql", "--data-dir", str(tmp_path / "data"), "--time-format", "epoch",
                    stdin="INSERT INTO root.local.d(time, v) VALUES (2, 2.5);\nSELECT v FROM root.local.d;\nquit\n")
    assert process.returncode == 0, process.stdout + process.stderr
    assert "Msg: The statement is executed successfully." in process.stdout
    assert "|   2|           2.5|" in process.stdout
    assert "Total line number = 2" in process.stdout


def test_interactive_shell_on_a_terminal(url: list[str], tmp_path: Path) -> None:
    """The prompt_toolkit shell on a pseudo-terminal: a statement over two lines, the history file, exit."""
    import os  # noqa: PLC0415
    import pty  # noqa: PLC0415
    import select  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    master, slave = pty.openpty()
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "xterm", "TZ": "UTC", "PROMPT_TOOLKIT_NO_CPR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "iotdb_core.cli.main", "sql", *url, "--time-format", "epoch"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )
    os.close(slave)
    output = b""

    def read_until(marker: bytes, timeout: float = 20.0) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, output.decode(errors="replace")
            ready, _, _ = select.select([master], [], [], remaining)
            if ready:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break

    try:
        read_until(b"IoTDB>")
        os.write(master, b"SELECT s1\r")
        time.sleep(0.2)
        os.write(master, b"FROM root.cli.d1;\r")
        read_until(b"It costs")  # the last line of a result, after "Total line number"
        os.write(master, b"exit\r")
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(master)
    text = output.decode(errors="replace")
    assert "|1000|           1.5|" in text
    assert "It costs" in text
    history = (tmp_path / ".iotdb_history").read_text()
    assert "SELECT s1\n+FROM root.cli.d1;" in history
