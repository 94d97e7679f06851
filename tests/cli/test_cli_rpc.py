"""The query commands over the native RPC port (their default): IoTDB CLI options, -e, errors, and the
interactive shell in a pseudo-terminal (pexpect): help, paging of large results, exit."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, assert_one_line_error, iotdb


@pytest.fixture(scope="module")
def rpc(server: ServerProcess) -> list[str]:
    """``-h``/``-p`` arguments for the shared server's RPC port."""
    return ["-h", server.rpc_host, "-p", str(server.rpc_port)]


def test_sql_e_writes_and_reads_back_as_iotdb_cli_tables(rpc: list[str]) -> None:
    done = iotdb("sql", *rpc, "-e", "INSERT INTO root.clirpc.d1(timestamp, s1, s2) VALUES (1, 1.5, true)",
                 "-e", "INSERT INTO root.clirpc.d1(timestamp, s1) VALUES (2, 2.5)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Msg: The statement is executed successfully.") == 2
    done = iotdb("sql", *rpc, "-e", "select * from root.clirpc.d1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "|                         Time|root.clirpc.d1.s1|root.clirpc.d1.s2|"
    assert lines[3] == "|1970-01-01T00:00:00.001+00:00|              1.5|             true|"
    assert lines[4] == "|1970-01-01T00:00:00.002+00:00|              2.5|             null|"
    assert "Total line number = 2" in done.stdout


def test_query_formats_and_e_spelling(rpc: list[str]) -> None:
    iotdb("sql", *rpc, "-e", "INSERT INTO root.clirpc.q(timestamp, v, t) VALUES (5, 0.1, 'a,b')")
    done = iotdb("query", *rpc, "-e", "SELECT v, t FROM root.clirpc.q", "--format", "json")
    assert json.loads(done.stdout) == [{"Time": 5, "root.clirpc.q.v": 0.1, "root.clirpc.q.t": "a,b"}]
    done = iotdb("query", "SELECT v, t FROM root.clirpc.q", *rpc, "--format", "csv", "--time-format", "epoch")
    assert done.stdout.splitlines() == ["Time,root.clirpc.q.v,root.clirpc.q.t", '5,0.1,"a,b"']
    assert_one_line_error(iotdb("query", "SHOW DATABASES", "-e", "SHOW DEVICES", *rpc), "give the statement once")


def test_errors_are_one_line(rpc: list[str], server: ServerProcess) -> None:
    assert_one_line_error(iotdb("query", "SELEC 1", *rpc), "iotdb query: error: 700:")
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *rpc, "-pw", "wrong"), "801", "user 'root'")
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *rpc, "-u", "nobody"), "801")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    line = assert_one_line_error(iotdb("query", "SHOW DATABASES", "-p", str(port)), "cannot reach the server")
    assert "6667" in line
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *rpc, "--url", server.rest_url), "give one of them")
    held = assert_one_line_error(iotdb("query", "SHOW DATABASES", "--data-dir", str(server.data_dir)),
                                 "-h 127.0.0.1 -p 6667")
    assert "held by a running server" in held


def test_password_from_the_environment(rpc: list[str]) -> None:
    assert_one_line_error(iotdb("query", "SHOW DATABASES", *rpc, env={"IOTDB_PASSWORD": "nope"}), "801")
    assert iotdb("query", "SHOW DATABASES", *rpc, env={"IOTDB_PASSWORD": "root"}).returncode == 0


def test_export_and_import_over_rpc(rpc: list[str], tmp_path: Path) -> None:
    iotdb("sql", *rpc, "-e", "INSERT INTO root.cliexp.x(timestamp, a, b) VALUES (1, 10, 'p')",
          "-e", "INSERT INTO root.cliexp.x(timestamp, a) VALUES (2, 20)")
    exported = tmp_path / "x.csv"
    done = iotdb("export", "root.cliexp.**", *rpc, "--data-type", "-o", str(exported), "--time-format", "epoch")
    assert done.returncode == 0, done.stderr
    text = exported.read_text()
    assert text.splitlines() == ["Time,root.cliexp.x.a(DOUBLE),root.cliexp.x.b(TEXT)", "1,10.0,p", "2,20.0,"]
    moved = tmp_path / "moved.csv"
    moved.write_text(text.replace("root.cliexp.x.", "root.cliimp.y."))
    assert iotdb("import", str(moved), *rpc).returncode == 0
    done = iotdb("query", "SELECT a, b FROM root.cliimp.y", *rpc, "--format", "csv", "--time-format", "epoch")
    assert done.stdout.splitlines() == ["Time,root.cliimp.y.a,root.cliimp.y.b", "1,10.0,p", "2,20.0,"]


def test_defaults_reach_127_0_0_1_6667_with_no_options(tmp_path: Path) -> None:
    """After ``iotdb serve`` on its default RPC port, ``iotdb sql -e`` needs no option at all."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 6667))
        except OSError:
            pytest.skip("port 6667 is in use on this machine")
    server = ServerProcess(tmp_path / "default", properties={"rpc_port": 6667}).start(timeout=30)
    try:
        assert server.rpc_port == 6667
        assert iotdb("sql", "-e", "INSERT INTO root.sg.d1(timestamp, s1) VALUES (1, 42)").returncode == 0
        done = iotdb("sql", "-e", "select * from root.sg.d1", "--time-format", "epoch")
        assert done.returncode == 0, done.stderr
        assert "|   1|         42.0|" in done.stdout  # an integer literal makes a DOUBLE series, as in IoTDB
    finally:
        server.stop(timeout=30)


# -------------------------------------------------------------------------------------- pseudo-terminal


@pytest.fixture
def shell(rpc: list[str], tmp_path: Path) -> Iterator[pexpect.spawn]:
    environment = {**os.environ, "TZ": "UTC", "TERM": "dumb"}
    environment.pop("IOTDB_PASSWORD", None)
    child = pexpect.spawn(sys.executable, ["-m", "iotdb_core.cli.main", "sql", *rpc, "--max-display", "5",
                                           "--time-format", "epoch", "--history", str(tmp_path / "history")],
                          env=environment, encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))
    child.expect("Connected to ")
    yield child
    child.close(force=True)


def test_shell_help_paging_and_exit_in_a_terminal(shell: pexpect.spawn, rpc: list[str]) -> None:
    values = ", ".join(f"({t}, {t})" for t in range(12))
    assert iotdb("sql", *rpc, "-e", f"INSERT INTO root.clirpc.page(timestamp, v) VALUES {values}").returncode == 0
    shell.expect_exact("IoTDB> ")
    shell.sendline("help;")
    shell.expect_exact("Shell commands:")
    shell.expect_exact("5 rows at a time")
    shell.expect_exact("IoTDB> ")
    shell.sendline("SELECT v FROM root.clirpc.page;")
    shell.expect_exact("Reach the max_display_num = 5. Press ENTER to show more, input 'q' to quit.")
    assert "|   4|" in shell.before and "|   5|" not in shell.before
    shell.sendline("")
    shell.expect_exact("Reach the max_display_num = 5.")
    assert "|   9|" in shell.before
    shell.sendline("q")
    shell.expect_exact("Total line number = 12 (shown 10)")
    shell.expect_exact("IoTDB> ")
    shell.sendline("SELECT v FROM root.clirpc.page WHERE time < 3;")
    shell.expect_exact("Total line number = 3")
    shell.expect_exact("IoTDB> ")
    shell.sendline("SELEC;")
    shell.expect_exact("Msg: 700:")
    shell.expect_exact("IoTDB> ")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
