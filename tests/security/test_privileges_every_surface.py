"""Privileges on every surface of one real ``iotdb serve``, exercised by real clients as several users.

Issue 11's acceptance: a user without READ_DATA on ``root.sg.**`` gets nothing of it over SQL (REST v1 and
v2), fastLastQuery, Grafana, the native RPC (the ``apache-iotdb`` Session), ``iotdb export``, MQTT subscribe
(paho) or the console, and with the grant gets the data on each; native RPC writes without WRITE_DATA are
refused with 803 and write nothing; a changed password is refused within a second on the surfaces the other
suites do not cover (a new RPC session, the console log-in and its open sessions, the CLI; MQTT and REST:
tests/mqtt/test_mqtt_privileges.py and tests/rest/test_rest_privileges.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console.conftest import rest
from console.test_console_api import call, log_in
from console.test_console_topics import Stream
from iotdb.Session import Session
from iotdb.thrift.rpc.ttypes import TSAggregationQueryReq
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.Tablet import Tablet
from mqtt.broker_clients import PahoSubscriber
from rpc.conftest import open_session, start_server, stop_server

from iotdb_core.testing.server import ServerProcess
from iotdb_core.testing.waiting import wait_until

NO_PERMISSION = 803
TIMEOUT = 15.0
#: What root publishes over MQTT into root.sg (the topic that feeds it) and writes into root.other.
SG_ROW = {"device": "root.sg.d1", "timestamp": 1, "measurements": ["temp"], "values": [20.5]}


def iotdb(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


def sql(server: ServerProcess, statement: str) -> None:
    """Run a statement as root over REST; it must succeed."""
    status, body = rest(server, "/rest/v2/nonQuery", {"sql": statement})
    assert status == 200 and body["code"] == 200, body


def new_user(server: ServerProcess, name: str, *grants: str) -> str:
    """A user ``name`` with password ``<name>-pw`` and the given ``GRANT ... TO USER`` privileges."""
    sql(server, f"CREATE USER {name} '{name}-pw'")
    for grant in grants:
        sql(server, f"GRANT {grant} TO USER {name}")
    return f"{name}-pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server holding root.sg.d1.temp (published over MQTT by root) and root.other.d1.x."""
    started = start_server(tmp_path_factory.mktemp("every-surface"))
    publisher = PahoSubscriber.to(started, "root-publisher")
    info = publisher.client.publish("root/sg/d1", json.dumps(SG_ROW), qos=1)
    info.wait_for_publish(TIMEOUT)
    publisher.close()
    sql(started, "INSERT INTO root.other.d1(time, x) VALUES (1, 7.0)")
    yield started
    stop_server(started)
    assert "Traceback" not in started.output, started.output


# ------------------------------------------------------------------------------------------ the surfaces


class Reader:
    """Every way one user can read root.sg.d1.temp: each method answers what the user got of root.sg."""

    def __init__(self, server: ServerProcess, user: str, password: str, tmp_path: Path) -> None:
        self.server, self.user, self.password, self.tmp_path = server, user, password, tmp_path

    def _rest(self, path: str, body: Any) -> Any:
        status, answer = rest(self.server, path, body, user=self.user, password=self.password)
        assert status == 200, answer
        return answer

    def rest_v2(self) -> Any:
        answer = self._rest("/rest/v2/query", {"sql": "SELECT temp FROM root.sg.d1"})
        return answer.get("code") or answer["values"]

    def rest_v1(self) -> Any:
        answer = self._rest("/rest/v1/query", {"sql": "SELECT * FROM root.sg.**"})
        return answer.get("code") or answer["values"]

    def rest_wildcard(self) -> list[str]:
        """The root.sg series a ``SELECT ** FROM root`` answers."""
        return [name for name in self._rest("/rest/v2/query", {"sql": "SELECT ** FROM root"})["expressions"]
                if name.startswith("root.sg.")]

    def fast_last(self) -> Any:
        answer = self._rest("/rest/v2/fastLastQuery", {"prefix_paths": ["root", "sg"]})
        return answer.get("code") or answer["values"]

    def grafana(self) -> Any:
        body = {"expression": ["temp"], "prefixPath": ["root.sg.d1"], "startTime": 0, "endTime": 10}
        answer = self._rest("/grafana/v1/query/expression", body)
        return answer.get("code") or answer["values"]

    def rpc(self) -> list[Any]:
        """What the Session's query calls answer: rows, or the 803 refusals."""
        session = open_session(self.server, user=self.user, password=self.password)
        answers: list[Any] = []
        try:
            for run in (lambda: session.execute_query_statement("SELECT temp FROM root.sg.d1"),
                        lambda: session.execute_raw_data_query(["root.sg.d1.temp"], 0, 10),
                        lambda: session.execute_last_data_query(["root.sg.d1.temp"], 0)):
                try:
                    with run() as dataset:
                        answers.append(dataset.todf().to_dict("list"))
                except StatementExecutionException as exc:
                    assert "No permissions for this operation, please add privilege READ_DATA" in str(exc)
                    answers.append(NO_PERMISSION)
            request = TSAggregationQueryReq(session._Session__session_id,  # type: ignore[attr-defined]
                                            session._Session__statement_id,  # type: ignore[attr-defined]
                                            ["root.sg.d1.temp"], [0], startTime=0, endTime=10, fetchSize=10)
            response = session._Session__client.executeAggregationQueryV2(request)  # type: ignore[attr-defined]
            answers.append(response.status.code if response.status.code != 200 else response.columns)
        finally:
            session.close()
        return answers

    def export(self, *where: str) -> tuple[str, str]:
        """``iotdb export root.**`` (RPC, or REST with ``--url``): the file's header line, or the error."""
        out = self.tmp_path / f"{self.user}-{len(where)}-{time.monotonic_ns()}.csv"
        done = iotdb("export", "root.sg.**", "-o", str(out), "--time-format", "epoch", *where,
                     "-u", self.user, "-pw", self.password)
        assert "Traceback" not in done.stderr
        if done.returncode != 0:
            assert not out.exists(), "a refused export leaves no file"
            return "", done.stderr
        return out.read_text().splitlines()[0], ""

    def console(self) -> list[Any]:
        """The console's SQL page, device statistics and plot, logged in as the user."""
        cookie, csrf = log_in(self.server, self.user, self.password)
        _status, answer, _ = call(self.server, "POST", "/console/api/sql", {"sql": "SELECT temp FROM root.sg.d1"},
                                  cookie=cookie, headers={"X-CSRF-Token": csrf})
        got: list[Any] = [answer.get("values", answer["code"])]
        for path in ("/console/api/device?path=root.sg.d1", "/console/api/plot?path=root.sg.d1.temp"):
            status, answer, _ = call(self.server, "GET", path, cookie=cookie)
            got.append((status, answer["code"]) if status != 200 else answer)
        return got


def test_without_read_data_on_root_sg_the_user_gets_nothing_of_it_and_with_the_grant_everything(
        server: ServerProcess, tmp_path: Path) -> None:
    password = new_user(server, "eve", "READ_SCHEMA ON root.**", "READ_DATA ON root.other.**")
    assert iotdb("acl", "grant", "eve", "read", "root/#", "--data-dir", str(server.data_dir)).returncode == 0
    eve = Reader(server, "eve", password, tmp_path)
    watcher = PahoSubscriber.to(server, "root-watcher")
    assert watcher.subscribe(("root/#", 1)) == [1]
    subscriber = PahoSubscriber.to(server, "eve-sub", username="eve", password=password)
    assert wait_until(lambda: subscriber.subscribe(("root/#", 1)) == [1], timeout=3.0), "the topic ACL allows it"
    refused = (403, NO_PERMISSION)

    assert eve.rest_v2() == NO_PERMISSION
    assert eve.rest_v1() == NO_PERMISSION
    assert eve.rest_wildcard() == []
    assert eve.fast_last() == NO_PERMISSION
    assert eve.grafana() == NO_PERMISSION
    assert eve.rpc() == [NO_PERMISSION] * 4
    rpc = ("-h", server.rpc_host, "-p", str(server.rpc_port))
    for where in (rpc, ("--url", server.rest_url)):
        header, error = eve.export(*where)
        assert header == "" and "803" in error and "READ_DATA" in error, error
    console = eve.console()
    assert console[0] == NO_PERMISSION and console[1:] == [refused, refused]
    live_view = Stream(server, "root/#", user="eve", password=password)  # the console's live topic view
    assert live_view.status == 200
    publisher = PahoSubscriber.to(server, "root-pub")
    other = {"device": "root.other.d1", "timestamp": 2, "measurements": ["x"], "values": [8.0]}
    for topic, row in (("root/sg/d1", {**SG_ROW, "timestamp": 2, "values": [21.5]}), ("root/other/d1", other)):
        publisher.client.publish(topic, json.dumps(row), qos=1).wait_for_publish(TIMEOUT)
    assert len(watcher.wait_for(2)) == 2, "both publishes were routed"
    time.sleep(0.2)
    assert [json.loads(m.payload)["device"] for m in subscriber.received()] == ["root.other.d1"], \
        "a subscriber gets only payloads of series it may read"
    while not live_view.messages:
        assert live_view.read_event() is not None
    assert [m["topic"] for m in live_view.messages] == ["root/other/d1"], "the live view shows only those too"
    live_view.close()

    sql(server, "GRANT READ_DATA ON root.sg.** TO USER eve")
    assert eve.rest_v2() == [[20.5, 21.5]]
    assert eve.rest_v1()[0][0] == 20.5
    assert eve.rest_wildcard() == ["root.sg.d1.temp"]
    assert eve.fast_last()[0] == ["root.sg.d1.temp"]
    assert eve.grafana()[0][0] == 20.5
    query, raw, last, aggregation = eve.rpc()
    assert query["root.sg.d1.temp"][0] == 20.5 and raw["root.sg.d1.temp"][0] == 20.5
    assert last["timeseries"] == ["root.sg.d1.temp"]
    assert aggregation == ["count(root.sg.d1.temp)"]
    for where in (rpc, ("--url", server.rest_url)):
        assert eve.export(*where) == ("Time,root.sg.d1.temp", "")
    console = eve.console()
    assert console[0][0][0] == 20.5
    assert console[1]["series"][0]["path"] == "root.sg.d1.temp" and console[2]["count"] >= 1
    publisher.client.publish("root/sg/d1", json.dumps({**SG_ROW, "timestamp": 3}), qos=1).wait_for_publish(TIMEOUT)
    publisher.close()
    assert wait_until(lambda: len(subscriber.received()) == 2), "now the root.sg payload reaches the user"
    assert json.loads(subscriber.received()[1].payload)["device"] == "root.sg.d1"
    subscriber.close()
    watcher.close()


def test_the_grafana_series_tree_lists_only_what_read_schema_covers(server: ServerProcess) -> None:
    password = new_user(server, "gina", "READ_SCHEMA ON root.other.**", "READ_DATA ON root.**")

    def node(*nodes: str) -> Any:
        status, answer = rest(server, "/grafana/v1/node", list(nodes), user="gina", password=password)
        assert status == 200, answer
        return answer

    assert node("root") == ["other"]
    assert node("root", "sg") == []
    assert node("root", "*") == ["d1"]
    status, answer = rest(server, "/grafana/v2/variable", {"sql": "SHOW CHILD PATHS root"}, user="gina",
                          password=password)
    assert (status, answer) == (200, ["other"])
    status, tree = rest(server, "/console/api/tree", user="gina", password=password)
    assert status == 200 and [s["path"] for s in tree["series"]] == ["root.other.d1.x"]
    assert rest(server, "/grafana/v1/node", ["root"])[1] == ["other", "sg"], "root sees everything"


def test_console_dead_letters_need_read_data_on_everything_and_admin_pages_manage_user(
        server: ServerProcess) -> None:
    password = new_user(server, "dana", "READ_DATA ON root.sg.**")
    status, answer = rest(server, "/console/api/deadletters", user="dana", password=password)
    assert (status, answer["code"]) == (403, NO_PERMISSION) and "READ_DATA on [root.**]" in answer["message"]
    assert rest(server, "/console/api/users", user="dana", password=password)[0] == 403
    cookie, _csrf = log_in(server, "dana", password)
    assert call(server, "GET", "/console/api/session", cookie=cookie)[1]["admin"] is False
    sql(server, "GRANT READ_DATA ON root.** TO USER dana")
    sql(server, "GRANT MANAGE_USER TO USER dana")
    assert rest(server, "/console/api/deadletters", user="dana", password=password)[0] == 200
    status, answer = rest(server, "/console/api/users", user="dana", password=password)
    assert status == 200 and {"name": "dana", "admin": True} in answer["users"]
    assert call(server, "GET", "/console/api/session", cookie=cookie)[1]["admin"] is True
    status, answer = rest(server, "/console/api/deadletters/discard", {"id": "none"}, user="dana",
                          password=password)
    assert (status, answer["code"]) == (403, NO_PERMISSION) and "WRITE_DATA on [root.**]" in answer["message"]


def test_rpc_writes_without_write_data_are_refused_with_803_and_write_nothing(server: ServerProcess) -> None:
    password = new_user(server, "wendy", "WRITE_DATA ON root.sg.d9.**")
    session = open_session(server, user="wendy", password=password)
    double = [TSDataType.DOUBLE]
    refused = {
        "insert_record": lambda: session.insert_record("root.sg.d1", 5, ["temp"], double, [1.0]),
        "insert_str_record": lambda: session.insert_str_record("root.sg.d1", 5, ["temp"], ["1.0"]),
        "insert_records (one device refused)": lambda: session.insert_records(
            ["root.sg.d9", "root.sg.d1"], [5, 5], [["v"], ["temp"]], [double, double], [[1.0], [1.0]]),
        "insert_records_of_one_device": lambda: session.insert_records_of_one_device(
            "root.sg.d1", [5, 6], [["temp"], ["temp"]], [double, double], [[1.0], [2.0]]),
        "insert_tablet": lambda: session.insert_tablet(Tablet("root.sg.d1", ["temp"], double, [[1.0]], [5])),
        "insert_tablets": lambda: session.insert_tablets([Tablet("root.sg.d9", ["v"], double, [[1.0]], [5]),
                                                          Tablet("root.sg.d1", ["temp"], double, [[1.0]], [5])]),
        "create_time_series": lambda: session.create_time_series("root.sg.d9.w", TSDataType.DOUBLE,
                                                                 TSEncoding.PLAIN, Compressor.SNAPPY),
        "set_storage_group": lambda: session.set_storage_group("root.wendy"),
        "delete_data": lambda: session.delete_data(["root.sg.d1.temp"], 100),
        "delete_storage_group": lambda: session.delete_storage_group("root.sg"),
        "delete_time_series": lambda: session.delete_time_series(["root.sg.d1.temp"]),
    }
    needed = {"create_time_series": "WRITE_SCHEMA", "set_storage_group": "MANAGE_DATABASE",
              "delete_storage_group": "MANAGE_DATABASE", "delete_time_series": "WRITE_SCHEMA"}
    try:
        for name, attempt in refused.items():
            with pytest.raises(StatementExecutionException) as raised:
                attempt()
            message = str(raised.value)
            assert message.startswith("803: No permissions for this operation, please add privilege "
                                      f"{needed.get(name, 'WRITE_DATA')}"), (name, message)
            if needed.get(name, "WRITE_DATA") == "WRITE_DATA" and not name.startswith("delete"):
                assert "root.sg.d1.temp" in message and "root.sg.d9" not in message, (name, message)
        session.insert_record("root.sg.d9", 5, ["v"], double, [3.0])
    finally:
        session.close()
    status, answer = rest(server, "/rest/v2/query", {"sql": "SELECT temp FROM root.sg.d1"})
    assert status == 200 and answer["timestamps"][0] == 1 and 5 not in answer["timestamps"]
    status, answer = rest(server, "/rest/v2/query", {"sql": "SELECT v FROM root.sg.d9"})
    assert (answer["timestamps"], answer["values"]) == ([5], [[3.0]]), "only the allowed record was written"


def test_a_changed_password_is_refused_within_a_second_on_rpc_the_console_and_the_cli(
        server: ServerProcess) -> None:
    password = new_user(server, "pat", "READ_DATA ON root.**")
    open_rpc = open_session(server, user="pat", password=password)
    cookie, _csrf = log_in(server, "pat", password)
    changed = iotdb("user", "passwd", "pat", "--password-stdin", "--data-dir", str(server.data_dir),
                    stdin="pat-new-pw\n")
    assert changed.returncode == 0, changed.stderr
    started = time.monotonic()

    def rpc_refuses_the_old_password() -> bool:
        try:
            open_session(server, user="pat", password=password).close()
        except StatementExecutionException as exc:
            assert str(exc).startswith("801: Authentication failed for user 'pat'"), exc
            return True
        return False

    assert wait_until(rpc_refuses_the_old_password, timeout=2.0)
    assert wait_until(lambda: call(server, "GET", "/console/api/session", cookie=cookie)[0] == 401, timeout=1.0)
    assert call(server, "POST", "/console/api/login", {"user": "pat", "password": password})[0] == 401
    assert time.monotonic() - started < 1.0, "the old password still worked after a second"
    cli = iotdb("query", "SELECT x FROM root.other.d1", "-h", server.rpc_host, "-p", str(server.rpc_port),
                "-u", "pat", "-pw", password)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr and "pat" in cli.stderr, cli.stderr
    with open_rpc.execute_query_statement("SELECT x FROM root.other.d1") as dataset:
        assert dataset.todf()["root.other.d1.x"].tolist()[0] == 7.0, "an open RPC session goes on, as in IoTDB"
    open_rpc.close()
    fresh: Session = open_session(server, user="pat", password="pat-new-pw")
    fresh.close()
    log_in(server, "pat", "pat-new-pw")
    cli = iotdb("query", "SELECT x FROM root.other.d1", "-h", server.rpc_host, "-p", str(server.rpc_port),
                "-u", "pat", "-pw", "pat-new-pw")
    assert cli.returncode == 0 and "7.0" in cli.stdout, cli.stderr
