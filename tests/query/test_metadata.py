"""SHOW, COUNT, CREATE, INSERT, DELETE and TTL statements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iotdb_core.config import default_settings
from iotdb_core.query import MetadataResult, QueryError, UpdateResult, execute
from iotdb_core.storage import Engine


def error(engine: Engine, sql: str) -> QueryError:
    with pytest.raises(QueryError) as raised:
        execute(engine, sql)
    return raised.value


@pytest.fixture
def engine(iotdb_engine: Engine) -> Engine:
    for sql in (
        "CREATE DATABASE root.ln",
        "CREATE DATABASE root.sg.a",
        "CREATE TIMESERIES root.ln.wf01.wt01.status WITH DATATYPE=BOOLEAN, ENCODING=PLAIN",
        "CREATE TIMESERIES root.ln.wf01.wt01.temperature WITH DATATYPE=FLOAT, ENCODING=GORILLA, COMPRESSOR=SNAPPY",
        "CREATE TIMESERIES root.ln.wf02.wt02.hardware TEXT encoding=PLAIN",
        "CREATE TIMESERIES root.sg.a.d1.s1 INT64",
        "CREATE TIMESERIES root.other.d1.s1 WITH DATATYPE=INT32",
    ):
        assert isinstance(execute(iotdb_engine, sql), UpdateResult)
    return iotdb_engine


def test_show_databases(engine: Engine) -> None:
    result = execute(engine, "SHOW DATABASES")
    assert isinstance(result, MetadataResult)
    assert result.header == ["Database", "TTL", "SchemaReplicationFactor", "DataReplicationFactor",
                             "TimePartitionInterval"]
    assert result.column("Database") == ["root.ln", "root.other", "root.sg.a"]
    assert execute(engine, "SHOW DATABASES root.sg.**").column(0) == ["root.sg.a"]
    assert execute(engine, "SHOW DATABASES root.ln").column(0) == ["root.ln"]
    assert execute(engine, "SHOW DATABASES root.*").column(0) == ["root.ln", "root.other"]
    assert execute(engine, "SHOW DATABASES root.nothing").rows() == []


def test_show_devices(engine: Engine) -> None:
    result = execute(engine, "SHOW DEVICES")
    assert result.header == ["Device", "IsAligned"]
    assert result.rows() == [("root.ln.wf01.wt01", "false"), ("root.ln.wf02.wt02", "false"),
                             ("root.other.d1", "false"), ("root.sg.a.d1", "false")]
    assert execute(engine, "SHOW DEVICES root.ln.*.*").column(0) == ["root.ln.wf01.wt01", "root.ln.wf02.wt02"]
    assert execute(engine, "SHOW DEVICES root.**.d1").column(0) == ["root.other.d1", "root.sg.a.d1"]
    assert execute(engine, "SHOW DEVICES root.ln").rows() == []


def test_show_timeseries(engine: Engine) -> None:
    result = execute(engine, "SHOW TIMESERIES root.ln.**")
    assert result.header == ["timeseries", "alias", "database", "dataType", "encoding", "compression", "tags",
                             "attributes", "deadband", "deadband parameters"]
    assert result.rows()[1] == ("root.ln.wf01.wt01.temperature", None, "root.ln", "FLOAT", "GORILLA", "SNAPPY",
                                None, None, None, None)
    assert [row[0] for row in execute(engine, "SHOW TIMESERIES").rows()] == [
        "root.ln.wf01.wt01.status", "root.ln.wf01.wt01.temperature", "root.ln.wf02.wt02.hardware",
        "root.other.d1.s1", "root.sg.a.d1.s1",
    ]
    assert execute(engine, "SHOW TIMESERIES root.sg.a.d1.s1").to_dicts()[0]["database"] == "root.sg.a"
    assert execute(engine, "SHOW TIMESERIES root.*.*.s1").column(0) == ["root.other.d1.s1"]


def test_count(engine: Engine) -> None:
    assert execute(engine, "COUNT TIMESERIES").rows() == [(5,)]
    assert execute(engine, "COUNT TIMESERIES root.ln.**").rows() == [(3,)]
    assert execute(engine, "COUNT TIMESERIES root.none.**").rows() == [(0,)]
    assert execute(engine, "COUNT DEVICES").header == ["count"]
    assert execute(engine, "COUNT DEVICES").rows() == [(4,)]
    assert execute(engine, "COUNT DEVICES root.ln.**").rows() == [(2,)]


def test_create_database_errors(engine: Engine) -> None:
    assert error(engine, "CREATE DATABASE root.ln").code == 501
    assert error(engine, "CREATE DATABASE root.`ln`").code == 501
    assert error(engine, "CREATE DATABASE root.ln.sub").code == 507
    assert error(engine, "CREATE DATABASE root.sg").code == 507
    assert error(engine, "CREATE DATABASE root.*").code == 509
    assert error(engine, "CREATE DATABASE root").code == 509
    assert error(engine, "CREATE DATABASE ln").code == 509


def test_create_timeseries_errors(engine: Engine) -> None:
    assert error(engine, "CREATE TIMESERIES root.ln.wf01.wt01.status WITH DATATYPE=BOOLEAN").code == 503
    assert "unknown data type" in error(engine, "CREATE TIMESERIES root.ln.d.s WITH DATATYPE=DECIMAL").message
    sql = "CREATE TIMESERIES root.ln.d.s WITH DATATYPE=INT32, ENCODING=ZIP"
    assert "unknown encoding" in error(engine, sql).message
    assert "unknown compressor" in error(engine, "CREATE TIMESERIES root.ln.d.s INT32 COMPRESSOR=RAR").message
    assert error(engine, "CREATE TIMESERIES root.ln.d.s WITH DATATYPE=TEXT, ENCODING=GORILLA").code == 507
    assert error(engine, "CREATE TIMESERIES root.ln.*.s WITH DATATYPE=TEXT").code == 509
    assert error(engine, "CREATE TIMESERIES root.ln WITH DATATYPE=TEXT").code == 509
    assert error(engine, "CREATE TIMESERIES root.sg.x.s WITH DATATYPE=TEXT").code == 507  # root.sg has a database below


def test_create_timeseries_short_form_and_string_type(engine: Engine) -> None:
    execute(engine, "CREATE TIMESERIES root.ln.d.a DOUBLE COMPRESSOR=ZSTD")
    execute(engine, "CREATE TIMESERIES root.ln.d.b STRING")
    rows = {row[0]: row for row in execute(engine, "SHOW TIMESERIES root.ln.d.*").rows()}
    assert rows["root.ln.d.a"][3:6] == ("DOUBLE", "CHIMP", "ZSTD")
    assert rows["root.ln.d.b"][3] == "TEXT"


def test_insert_types(engine: Engine) -> None:
    result = execute(
        engine,
        "INSERT INTO root.ln.wf01.wt01(timestamp, status, temperature, fresh_int, fresh_float, fresh_text, fresh_bool)"
        " VALUES (1, true, 25, 7, 1.5, 'a', false), (2, false, 26.5, null, null, \"b\", null)",
    )
    assert result == UpdateResult("INSERT", 9)
    types = {row[0].rsplit(".", 1)[1]: row[3] for row in execute(engine, "SHOW TIMESERIES root.ln.wf01.wt01.*")}
    assert types == {"status": "BOOLEAN", "temperature": "FLOAT", "fresh_int": "DOUBLE", "fresh_float": "DOUBLE",
                     "fresh_text": "TEXT", "fresh_bool": "BOOLEAN"}
    assert execute(engine, "SELECT temperature, fresh_int FROM root.ln.wf01.wt01").rows() == [
        (1, 25.0, 7.0), (2, 26.5, None)
    ]
    execute(engine, "INSERT INTO root.ln.wf02.wt02(time, hardware) VALUES (1, 12), (2, 2.50), (3, true)")
    assert execute(engine, "SELECT hardware FROM root.ln.wf02.wt02").column(0) == ["12", "2.50", "true"]


def test_insert_time_forms(engine: Engine) -> None:
    execute(engine, "INSERT INTO root.ln.t(time, s) VALUES (1970-01-01T00:00:01Z, 1), (1970-01-01T00:00:01Z + 1s, 2)")
    assert execute(engine, "SELECT s FROM root.ln.t").column("Time") == [1000, 2000]
    execute(engine, "INSERT INTO root.ln.now(s) VALUES (5)")
    (stamp, value), = execute(engine, "SELECT s FROM root.ln.now").rows()
    assert value == 5.0 and stamp > 1_600_000_000_000
    assert error(engine, "INSERT INTO root.ln.t(time, s) VALUES ('x', 1)").code == 701
    assert error(engine, "INSERT INTO root.ln.t(time, s) VALUES (1.5, 1)").code == 701
    assert error(engine, "INSERT INTO root.ln.t(time, s) VALUES (1, now())").code == 701


def test_insert_errors(engine: Engine) -> None:
    raised = error(engine, "INSERT INTO root.other.d1(time, s1) VALUES (1, 1.5)")
    assert raised.code == 507 and "root.other.d1.s1" in raised.message
    assert error(engine, "INSERT INTO root.ln.*(time, s) VALUES (1, 1)").code == 509
    assert error(engine, "INSERT INTO root.ln.d(time, s, s) VALUES (1, 1, 2)").code == 701
    assert error(engine, "INSERT INTO root.ln.d(time) VALUES (1)").code == 701
    execute(engine, "INSERT INTO root.ln.d(time, `a.b`) VALUES (1, 1)")
    assert execute(engine, "SELECT `a.b` FROM root.ln.d").header == ["Time", "root.ln.d.`a.b`"]
    assert error(engine, "INSERT INTO root.ln.d(time, s) VALUES (99999999999999999999, 1)").code == 701


class EngineWithoutDeletes(Engine):
    """A real Engine as it was before it could delete or expire data (those methods absent)."""

    delete = None  # type: ignore[assignment]
    delete_timeseries = None  # type: ignore[assignment]
    set_ttl = None  # type: ignore[assignment]


def test_operations_an_engine_cannot_do(tmp_path: Path) -> None:
    with EngineWithoutDeletes.open(tmp_path / "data", default_settings()) as engine:
        execute(engine, "CREATE TIMESERIES root.ln.d.s WITH DATATYPE=INT32")
        raised = error(engine, "DELETE FROM root.ln.**")
        assert raised.code == 701 and raised.message == "DELETE FROM is not supported by this storage engine"
        assert error(engine, "DELETE FROM root.ln.** WHERE time < 5").code == 701
        raised = error(engine, "DELETE TIMESERIES root.ln.d.s")
        assert raised.code == 701 and "DELETE TIMESERIES is not supported" in raised.message
        assert "SET TTL is not supported" in error(engine, "SET TTL TO root.ln 1000").message
        assert "UNSET TTL is not supported" in error(engine, "UNSET TTL TO root.ln").message
        assert execute(engine, "SHOW DATABASES").rows() == [("root.ln", None, 1, 1, None)]


def test_statement_checks_before_the_engine_is_called(engine: Engine) -> None:
    assert "only time filters" in error(engine, "DELETE FROM root.ln.** WHERE status = true").message
    assert error(engine, "DELETE TIMESERIES root.nothing.**").code == 508
    assert "does not exist" in error(engine, "DELETE TIMESERIES root.nothing.**").message
    assert "positive" in error(engine, "SET TTL TO root.ln 0").message
    assert error(engine, "DELETE FROM ln.d").code == 509
    assert error(engine, "SET TTL TO ln 5").code == 509


def test_delete_data(engine: Engine) -> None:
    execute(engine, "INSERT INTO root.ln.wf01.wt01(time, temperature) VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)")
    assert execute(engine, "DELETE FROM root.ln.wf01.wt01.temperature WHERE time >= 2 AND time <= 3") == (
        UpdateResult("DELETE", 1)
    )
    assert execute(engine, "SELECT temperature FROM root.ln.wf01.wt01").column("Time") == [1, 4, 5]
    execute(engine, "DELETE FROM root.ln.wf01.*.* WHERE time < 2 OR time > 4")
    assert execute(engine, "SELECT temperature FROM root.ln.wf01.wt01").column("Time") == [4]
    assert execute(engine, "DELETE FROM root.ln.** WHERE time > 9 AND time < 9") == UpdateResult("DELETE", 0)
    execute(engine, "DELETE FROM root.ln.**")
    assert execute(engine, "SELECT LAST * FROM root.ln.**").rows() == []


def test_delete_timeseries(engine: Engine) -> None:
    assert execute(engine, "DELETE TIMESERIES root.ln.wf01.wt01.*, root.ln.none") == UpdateResult(
        "DELETE TIMESERIES", 2
    )
    assert execute(engine, "COUNT TIMESERIES root.ln.**").rows() == [(1,)]
    assert error(engine, "DELETE TIMESERIES root.ln.wf01.wt01.*").code == 508


def test_ttl(engine: Engine) -> None:
    execute(engine, "INSERT INTO root.ln.wf01.wt01(time, temperature) VALUES (1, 1.5), (now(), 2.5)")
    execute(engine, "SET TTL TO root.ln 3600000")
    assert execute(engine, "SHOW DATABASES root.ln").rows() == [("root.ln", 3600000, 1, 1, None)]
    assert execute(engine, "SELECT temperature FROM root.ln.wf01.wt01").column(0) == [2.5]
    execute(engine, "SET TTL TO root.** 1000")
    assert execute(engine, "SHOW DATABASES").column("TTL") == [3600000, 1000, 1000]
    execute(engine, "UNSET TTL TO root.ln")
    execute(engine, "SET TTL TO root.** INF")
    assert execute(engine, "SHOW DATABASES").column("TTL") == [None, None, None]


class RecordingEngine(Engine):
    """A real Engine that also records the deletion and TTL calls the executor makes."""

    calls: list[tuple[Any, ...]]

    def delete(self, path_pattern: str, start: int | None = None, end: int | None = None) -> int:
        self.calls.append(("delete", path_pattern, start, end))
        return super().delete(path_pattern, start, end)

    def delete_timeseries(self, path_pattern: str) -> int:
        self.calls.append(("delete_timeseries", path_pattern))
        return super().delete_timeseries(path_pattern)

    def set_ttl(self, path: str, ttl_ms: int | None) -> None:
        self.calls.append(("set_ttl", path, ttl_ms))
        super().set_ttl(path, ttl_ms)


def test_calls_made_to_the_engine(tmp_path: Path) -> None:
    engine = RecordingEngine.open(tmp_path / "data", default_settings())
    assert isinstance(engine, RecordingEngine)
    engine.calls = []
    try:
        execute(engine, "CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=INT32")
        execute(engine, "DELETE FROM root.sg.d1.s1, root.sg.*.s2 WHERE time >= 5 AND time <= 10")
        execute(engine, "DELETE FROM root.sg.** WHERE time < 0 OR time > 100")
        execute(engine, "DELETE FROM root.sg.d1.*")
        execute(engine, "DELETE FROM root.sg.d1.* WHERE time > 5 AND time < 5")
        execute(engine, "SET TTL TO root.sg 3600000")
        execute(engine, "SET TTL TO root.sg.** INF")
        execute(engine, "UNSET TTL TO root.sg")
        execute(engine, "DELETE TIMESERIES root.sg.*.s1, root.sg.none")
        assert engine.calls == [
            ("delete", "root.sg.d1.s1", 5, 10),
            ("delete", "root.sg.*.s2", 5, 10),
            ("delete", "root.sg.**", None, -1),
            ("delete", "root.sg.**", 101, None),
            ("delete", "root.sg.d1.*", None, None),
            ("set_ttl", "root.sg", 3600000),
            ("set_ttl", "root.sg.**", None),
            ("set_ttl", "root.sg", None),
            ("delete_timeseries", "root.sg.*.s1"),
            ("delete_timeseries", "root.sg.none"),
        ]
    finally:
        engine.close()
