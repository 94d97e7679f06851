"""Users, roles and privileges over the REST API of a real server, as several users."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import RestClient, basic, start_rest_server, stop_server

NO_PERMISSION = 803


class User:
    """REST calls as one user."""

    def __init__(self, rest: RestClient, name: str, password: str) -> None:
        self.rest = rest
        self.auth = basic(name, password)

    def query(self, sql: str) -> dict:
        reply = self.rest.request("POST", "/rest/v2/query", {"sql": sql}, authorization=self.auth)
        return {"status": reply.status, **(reply.body or {})}

    def run(self, sql: str) -> dict:
        reply = self.rest.request("POST", "/rest/v2/nonQuery", {"sql": sql}, authorization=self.auth)
        return {"status": reply.status, **(reply.body or {})}

    def insert_tablet(self, device: str, measurement: str) -> dict:
        body = {"device": device, "timestamps": [10], "measurements": [measurement], "data_types": ["DOUBLE"],
                "values": [[1.0]]}
        reply = self.rest.request("POST", "/rest/v2/insertTablet", body, authorization=self.auth)
        return {"status": reply.status, **(reply.body or {})}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = start_rest_server(tmp_path_factory.mktemp("privileges"))
    yield started
    stop_server(started)
    assert "Traceback" not in started.output, started.output


@pytest.fixture(scope="module")
def root(server: ServerProcess) -> User:
    admin = User(RestClient(server), "root", "root")
    for sql in ("INSERT INTO root.sg.d1(time, temp, hum) VALUES (1, 20.5, 40.0)",
                "INSERT INTO root.sg.d2(time, temp) VALUES (1, 21.5)",
                "INSERT INTO root.other.d1(time, x) VALUES (1, 1.0)"):
        assert admin.run(sql)["code"] == 200
    return admin


def new_user(root: User, name: str) -> User:
    assert root.run(f"CREATE USER {name} '{name}-pw'")["code"] == 200
    return User(root.rest, name, f"{name}-pw")


def test_a_new_user_gets_nothing_and_is_told_why(root: User) -> None:
    alice = new_user(root, "alice")
    denied = alice.query("SELECT ** FROM root.sg")
    assert denied["code"] == NO_PERMISSION
    assert denied["message"].startswith("No permissions for this operation, please add privilege READ_DATA on [")
    assert alice.query("SHOW TIMESERIES root.**")["values"] == []
    assert alice.query("SHOW DATABASES")["values"] == []
    assert alice.query("LIST USER")["code"] == NO_PERMISSION
    written = alice.run("INSERT INTO root.sg.d1(time, temp) VALUES (2, 1.0)")
    assert written == {"status": 200, "code": NO_PERMISSION,
                       "message": "No permissions for this operation, please add privilege WRITE_DATA on "
                                  "[root.sg.d1.temp]"}
    assert alice.insert_tablet("root.sg.d1", "temp")["code"] == NO_PERMISSION
    assert alice.run("CREATE DATABASE root.alice")["code"] == NO_PERMISSION
    assert alice.run("DELETE FROM root.sg.**")["code"] == NO_PERMISSION
    assert root.query("SELECT temp FROM root.sg.d1")["values"] == [[20.5]]


def test_select_keeps_only_the_series_the_user_may_read(root: User) -> None:
    bob = new_user(root, "bob")
    assert root.run("GRANT READ_DATA ON root.sg.*.temp TO USER bob")["code"] == 200
    result = bob.query("SELECT ** FROM root.sg")
    assert result["expressions"] == ["root.sg.d1.temp", "root.sg.d2.temp"]
    assert bob.query("SELECT hum FROM root.sg.d1")["code"] == NO_PERMISSION
    last = bob.query("SELECT LAST * FROM root.sg.*")
    assert last["values"][0] == ["root.sg.d1.temp", "root.sg.d2.temp"]
    assert bob.query("SELECT LAST hum FROM root.sg.d1")["code"] == NO_PERMISSION
    assert bob.query("SHOW TIMESERIES")["values"] == [], "READ_DATA is not READ_SCHEMA"
    assert root.run("GRANT READ_SCHEMA ON root.sg.d2.** TO USER bob")["code"] == 200
    shown = bob.query("SHOW TIMESERIES")
    assert shown["values"][0] == ["root.sg.d2.temp"]
    assert bob.query("SHOW DEVICES")["values"][0] == ["root.sg.d2"]
    assert bob.query("SHOW DATABASES")["values"][0] == ["root.sg"]


def test_roles_grant_and_revoke_with_iotdb_shapes(root: User) -> None:
    carol = new_user(root, "carol")
    assert root.run("CREATE ROLE writer")["code"] == 200
    assert root.run("CREATE ROLE writer")["code"] == 809
    assert root.run("GRANT WRITE_DATA ON root.sg.d3.** TO ROLE writer")["code"] == 200
    assert root.run("GRANT ROLE writer TO carol")["code"] == 200
    assert root.run("GRANT ROLE writer TO carol")["code"] == 806
    assert carol.run("INSERT INTO root.sg.d3(time, temp) VALUES (5, 1.5)")["code"] == 200
    assert carol.insert_tablet("root.sg.d3", "hum")["code"] == 200
    assert carol.query("SELECT temp FROM root.sg.d3")["values"] == [[1.5]], "WRITE_DATA also reads"
    assert root.run("GRANT MANAGE_USER ON root.** TO USER carol WITH GRANT OPTION")["code"] == 200
    listed = carol.query("LIST PRIVILEGES OF USER carol")
    assert listed["column_names"] == ["Role", "Scope", "Privileges", "GrantOption"]
    rows = list(zip(*listed["values"], strict=True))
    assert rows == [("", "", "MANAGE_USER", True), ("writer", "root.sg.d3.**", "WRITE_DATA", False)]
    assert root.query("LIST ROLE")["values"] == [["writer"]]
    assert root.query("LIST USER OF ROLE writer")["values"] == [["carol"]]
    assert carol.query("LIST ROLE OF USER carol")["values"] == [["writer"]]
    assert carol.query("LIST PRIVILEGES OF ROLE writer")["values"][2] == ["WRITE_DATA"]
    assert "carol" in carol.query("LIST USER")["values"][0], "MANAGE_USER lists users"
    assert carol.run("GRANT MANAGE_USER TO USER alice")["code"] == 200, "carol holds it WITH GRANT OPTION"
    assert carol.run("GRANT READ_DATA ON root.** TO USER alice")["code"] == NO_PERMISSION
    assert root.run("REVOKE ROLE writer FROM carol")["code"] == 200
    assert root.run("REVOKE ROLE writer FROM carol")["code"] == 807
    assert carol.run("INSERT INTO root.sg.d3(time, temp) VALUES (6, 1.5)")["code"] == NO_PERMISSION
    assert root.run("DROP ROLE writer")["code"] == 200
    assert root.run("DROP ROLE writer")["code"] == 808
    assert root.run("GRANT READ_DATA TO USER carol")["code"] == 701
    assert root.run("GRANT WRITE_STUFF ON root.** TO USER carol")["code"] == 701
    assert root.run("GRANT MANAGE_ROLE ON root.sg.** TO USER carol")["code"] == 816
    assert root.run("DROP USER nobody")["code"] == 804


def test_password_changes_and_deletions_apply_at_once(root: User, server: ServerProcess) -> None:
    dave = new_user(root, "dave")
    assert root.run("GRANT READ_DATA ON root.sg.** TO USER dave")["code"] == 200
    assert dave.query("SELECT temp FROM root.sg.d1")["values"] == [[20.5]]
    assert dave.run("ALTER USER dave SET PASSWORD 'dave-new'")["code"] == 200, "a user may change its own"
    assert dave.query("SELECT temp FROM root.sg.d1")["status"] == 401
    dave = User(root.rest, "dave", "dave-new")
    assert dave.run("ALTER USER root SET PASSWORD 'hijacked'")["code"] == NO_PERMISSION
    changed = subprocess.run(
        [sys.executable, "-m", "iotdb_core.cli.main", "user", "passwd", "dave", "--password-stdin",
         "--data-dir", str(server.data_dir)],
        input="dave-cli\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert changed.returncode == 0, changed.stderr
    started = time.monotonic()
    while dave.query("SHOW DATABASES")["status"] != 401:
        assert time.monotonic() - started < 1.0, "the old password still works after a second"
        time.sleep(0.02)
    assert User(root.rest, "dave", "dave-cli").query("SELECT temp FROM root.sg.d1")["values"] == [[20.5]]
    assert root.run("DROP USER dave")["code"] == 200
    assert User(root.rest, "dave", "dave-cli").query("SHOW DATABASES")["status"] == 401


def test_root_stays_and_the_default_password_is_warned_about(root: User, server: ServerProcess) -> None:
    assert root.run("DROP USER root")["code"] == 814
    assert root.run("REVOKE ALL ON root.** FROM USER root")["code"] == 814
    assert "created user 'root' with the default password" in server.output


def test_export_and_import_as_a_user(root: User, server: ServerProcess, tmp_path: Path) -> None:
    new_user(root, "erin")
    assert root.run("GRANT READ_SCHEMA, READ_DATA ON root.sg.d1.** TO USER erin")["code"] == 200

    def iotdb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args, "--url", server.rest_url,
                               "-u", "erin", "-pw", "erin-pw"], capture_output=True, text=True, timeout=60,
                              check=False)

    exported = iotdb("export", "root.**", "-o", str(tmp_path / "out.csv"), "--time-format", "epoch")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out.csv").read_text().splitlines() == ["Time,root.sg.d1.hum,root.sg.d1.temp", "1,40.0,20.5"]
    (tmp_path / "in.csv").write_text("Time,root.sg.d9.temp\n7,1.0\n")
    imported = iotdb("import", str(tmp_path / "in.csv"))
    assert imported.returncode != 0
    assert "803" in imported.stderr and "WRITE_DATA" in imported.stderr
    assert "Traceback" not in imported.stderr
