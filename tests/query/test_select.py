"""SELECT semantics on hand-written data: alignment, paths, filters, aggregates, fill, paging, LAST, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.query import QueryError, ResultSet, RowLimitExceededError, execute, parse
from iotdb_core.storage import Engine

UTC = dt.UTC


@pytest.fixture
def engine(iotdb_engine: Engine) -> Engine:
    execute(iotdb_engine, "CREATE TIMESERIES root.sg.d1.temp WITH DATATYPE=DOUBLE")
    execute(iotdb_engine, "CREATE TIMESERIES root.sg.d1.status WITH DATATYPE=BOOLEAN")
    execute(iotdb_engine, "CREATE TIMESERIES root.sg.d1.count WITH DATATYPE=INT32")
    execute(iotdb_engine, "CREATE TIMESERIES root.sg.d2.temp WITH DATATYPE=DOUBLE")
    execute(iotdb_engine, "CREATE TIMESERIES root.sg.d2.mode WITH DATATYPE=TEXT")
    execute(
        iotdb_engine,
        "INSERT INTO root.sg.d1(time, temp, status, count) VALUES "
        "(1, 20.5, true, 1), (2, 21.0, false, null), (4, null, true, 3), (6, 25.0, null, 4)",
    )
    execute(
        iotdb_engine,
        "INSERT INTO root.sg.d2(time, temp, mode) VALUES (2, 30.0, 'on'), (3, 31.5, 'off'), (6, 29.0, 'on')",
    )
    return iotdb_engine


def rows(engine: Engine, sql: str, **options: object) -> list[tuple]:
    result = execute(engine, sql, **options)  # type: ignore[arg-type]
    return result.rows()


def error(engine: Engine, sql: str, **options: object) -> QueryError:
    with pytest.raises(QueryError) as raised:
        execute(engine, sql, **options)  # type: ignore[arg-type]
    return raised.value


# ----------------------------------------------------------------------------------------------- raw


def test_rows_are_aligned_by_time_with_nulls(engine: Engine) -> None:
    result = execute(engine, "SELECT temp, status FROM root.sg.d1")
    assert result.header == ["Time", "root.sg.d1.temp", "root.sg.d1.status"]
    assert result.data_types == [TSDataType.DOUBLE, TSDataType.BOOLEAN]
    assert result.rows() == [(1, 20.5, True), (2, 21.0, False), (4, None, True), (6, 25.0, None)]
    assert result.column("root.sg.d1.temp") == [20.5, 21.0, None, 25.0]
    assert result.column("Time") == [1, 2, 4, 6]
    assert result.to_dicts()[2] == {"Time": 4, "root.sg.d1.temp": None, "root.sg.d1.status": True}
    assert len(result) == 4 and isinstance(result.values[0], np.ndarray) and result.nulls[0].tolist() == [
        False, False, True, False
    ]


def test_select_suffixes_join_every_from_prefix(engine: Engine) -> None:
    result = execute(engine, "SELECT temp FROM root.sg.d1, root.sg.d2")
    assert result.header == ["Time", "root.sg.d1.temp", "root.sg.d2.temp"]
    assert result.rows() == [(1, 20.5, None), (2, 21.0, 30.0), (3, None, 31.5), (6, 25.0, 29.0)]
    assert execute(engine, "SELECT d1.temp, d2.temp FROM root.sg").header == result.header


def test_wildcards_in_select_and_from(engine: Engine) -> None:
    assert execute(engine, "SELECT * FROM root.sg.d1").header == [
        "Time", "root.sg.d1.count", "root.sg.d1.status", "root.sg.d1.temp"
    ]
    assert execute(engine, "SELECT temp FROM root.sg.*").header == ["Time", "root.sg.d1.temp", "root.sg.d2.temp"]
    assert len(execute(engine, "SELECT ** FROM root").columns) == 5
    assert execute(engine, "SELECT * FROM root.**").columns == execute(engine, "SELECT ** FROM root").columns


def test_series_that_do_not_exist_give_an_empty_result(engine: Engine) -> None:
    result = execute(engine, "SELECT nothing FROM root.sg.d1")
    assert result.header == ["Time"] and len(result) == 0
    assert execute(engine, "SELECT temp FROM root.nowhere").rows() == []
    assert execute(engine, "SELECT count(nothing) FROM root.sg.d1").header == []
    assert execute(engine, "SELECT temp, nothing FROM root.sg.d2").header == ["Time", "root.sg.d2.temp"]


def test_alias(engine: Engine) -> None:
    assert execute(engine, "SELECT temp AS t FROM root.sg.d1").header == ["Time", "t"]
    assert execute(engine, "SELECT avg(temp) AS mean FROM root.sg.d1").header == ["mean"]
    assert error(engine, "SELECT temp AS t FROM root.sg.*").code == 701


def test_time_filters(engine: Engine) -> None:
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE time > 2") == [(3, 31.5), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE time != 3") == [(2, 30.0), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE time IN (2, 6, 7)") == [(2, 30.0), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE time BETWEEN 3 AND 6") == [(3, 31.5), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE NOT (time < 3 OR time > 5)") == [(3, 31.5)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE time > 3 AND time < 3") == []
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE timestamp <= 2 OR time >= 6") == [(2, 30.0), (6, 29.0)]


def test_value_filters(engine: Engine) -> None:
    assert rows(engine, "SELECT temp, mode FROM root.sg.d2 WHERE mode = 'on'") == [(2, 30.0, "on"), (6, 29.0, "on")]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE mode = 'off' OR temp < 29.5") == [(3, 31.5), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d1 WHERE status = true AND time < 5") == [(1, 20.5), (4, None)]
    assert rows(engine, "SELECT count FROM root.sg.d1 WHERE count > 1.5") == [(4, 3), (6, 4)]
    assert rows(engine, "SELECT temp FROM root.sg.d1 WHERE temp IS NULL") == []
    assert rows(engine, "SELECT temp, count FROM root.sg.d1 WHERE count IS NULL") == [(2, 21.0, None)]
    assert rows(engine, "SELECT temp FROM root.sg.d1 WHERE NOT temp > 21") == [(1, 20.5), (2, 21.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE mode IN ('off', 'x')") == [(3, 31.5)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE mode > 'o'") == [(2, 30.0), (3, 31.5), (6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d1 WHERE temp BETWEEN 21 AND 30") == [(2, 21.0), (6, 25.0)]


def test_filter_on_a_missing_series_is_unknown(engine: Engine) -> None:
    assert rows(engine, "SELECT temp FROM root.sg.d2 WHERE nothing > 1") == []
    assert len(rows(engine, "SELECT temp FROM root.sg.d2 WHERE nothing IS NULL")) == 3
    assert len(rows(engine, "SELECT temp FROM root.sg.d2 WHERE NOT nothing > 1 OR time = 2")) == 1


def test_series_compared_with_series(engine: Engine) -> None:
    assert rows(engine, "SELECT temp, count FROM root.sg.d1 WHERE count < temp") == [(1, 20.5, 1), (6, 25.0, 4)]
    assert rows(engine, "SELECT d1.temp FROM root.sg WHERE d1.temp < d2.temp") == [(2, 21.0), (6, 25.0)]


def test_wildcard_in_where_means_every_match(engine: Engine) -> None:
    # temp expands to root.sg.d1.temp and root.sg.d2.temp: both must hold (IoTDB joins them with AND)
    assert rows(engine, "SELECT temp FROM root.sg.* WHERE temp > 20.8") == [(2, 21.0, 30.0), (6, 25.0, 29.0)]


def test_type_errors_in_where(engine: Engine) -> None:
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE temp > 'x'").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d2 WHERE mode > 1").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE status = 1").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE time > 'yesterday'").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE time > 1.5").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE time > temp").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE temp > now()").code == 701
    assert error(engine, "SELECT temp FROM root.sg.d2 WHERE temp < mode").code == 701


def test_iso_times_and_zones(iotdb_engine: Engine) -> None:
    base = 1577836800000  # 2020-01-01T00:00:00Z
    execute(iotdb_engine, f"INSERT INTO root.z.d(time, s) VALUES ({base}, 1.0), ({base + 3_600_000}, 2.0)")
    assert rows(iotdb_engine, "SELECT s FROM root.z.d WHERE time >= 2020-01-01T01:00:00Z") == [(base + 3_600_000, 2.0)]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    sql = "SELECT s FROM root.z.d WHERE time < 2020-01-01 08:30:00"
    assert rows(iotdb_engine, sql, zone=shanghai) == [(base, 1.0)]
    assert len(rows(iotdb_engine, sql, zone=UTC)) == 2
    assert len(rows(iotdb_engine, "SELECT s FROM root.z.d WHERE time < now() AND time > now() - 100000d")) == 2
    execute(iotdb_engine, "INSERT INTO root.z.d(time, s) VALUES (2020-01-01T00:00:00.001Z + 1d, 3.0)")
    assert rows(iotdb_engine, "SELECT s FROM root.z.d WHERE time > 2020-01-01T02:00:00Z") == [(base + 86_400_001, 3.0)]


def test_microsecond_precision(tmp_path: Path) -> None:
    settings = default_settings().replace(timestamp_precision="us")
    with Engine.open(tmp_path / "us", settings) as engine:
        execute(engine, "INSERT INTO root.p.d(time, s) VALUES (1970-01-01T00:00:01.000002Z, 1)")
        assert rows(engine, "SELECT s FROM root.p.d") == [(1_000_002, 1.0)]
        assert rows(engine, "SELECT count(s) FROM root.p.d GROUP BY ([0, 2000000), 1s)") == [(0, 0), (1_000_000, 1)]
        assert error(engine, "SELECT count(s) FROM root.p.d GROUP BY ([0, 2000000), 1ns)").code == 701


def test_order_by_time_desc_and_paging(engine: Engine) -> None:
    assert rows(engine, "SELECT temp FROM root.sg.d2 ORDER BY TIME DESC") == [(6, 29.0), (3, 31.5), (2, 30.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 ORDER BY TIME DESC LIMIT 1 OFFSET 1") == [(3, 31.5)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 LIMIT 2") == [(2, 30.0), (3, 31.5)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 OFFSET 2") == [(6, 29.0)]
    assert rows(engine, "SELECT temp FROM root.sg.d2 LIMIT 0") == []
    assert rows(engine, "SELECT temp FROM root.sg.d2 OFFSET 99999999999999999999") == []


def test_slimit_and_soffset(engine: Engine) -> None:
    assert execute(engine, "SELECT * FROM root.sg.d1 SLIMIT 2").columns == ["root.sg.d1.count", "root.sg.d1.status"]
    assert execute(engine, "SELECT * FROM root.sg.d1 SLIMIT 1 SOFFSET 2").columns == ["root.sg.d1.temp"]
    assert execute(engine, "SELECT * FROM root.sg.d1 SOFFSET 5").columns == []


def test_fill(engine: Engine) -> None:
    sql = "SELECT temp, status, count FROM root.sg.d1"
    assert rows(engine, sql + " FILL(PREVIOUS)") == [(1, 20.5, True, 1), (2, 21.0, False, 1), (4, 21.0, True, 3),
                                                     (6, 25.0, True, 4)]
    assert rows(engine, sql + " FILL(LINEAR)") == [(1, 20.5, True, 1), (2, 21.0, False, 1), (4, 23.0, True, 3),
                                                   (6, 25.0, None, 4)]
    assert rows(engine, sql + " FILL(7)") == [(1, 20.5, True, 1), (2, 21.0, False, 7), (4, 7.0, True, 3),
                                              (6, 25.0, None, 4)]
    assert rows(engine, sql + " FILL(false)")[3] == (6, 25.0, False, 4)
    assert rows(engine, "SELECT mode, temp FROM root.sg.d2, root.sg.d1 FILL(1.5)")[0] == (1, "1.5", 1.5, 20.5)
    assert rows(engine, sql + " FILL(PREVIOUS) ORDER BY TIME DESC") == [
        (6, 25.0, None, 4), (4, 25.0, True, 3), (2, 21.0, False, 3), (1, 20.5, True, 1)
    ]


# -------------------------------------------------------------------------------------------- aggregates


def test_aggregates_without_group_by(engine: Engine) -> None:
    result = execute(engine, "SELECT count(temp), sum(temp), avg(temp), min_value(temp), max_value(temp), "
                             "first_value(temp), last_value(temp), min_time(temp), max_time(temp), extreme(temp) "
                             "FROM root.sg.d1")
    assert result.header[0] == "count(root.sg.d1.temp)" and not result.has_time
    assert result.rows() == [(3, 66.5, 66.5 / 3, 20.5, 25.0, 20.5, 25.0, 1, 6, 25.0)]
    assert result.data_types[:3] == [TSDataType.INT64, TSDataType.DOUBLE, TSDataType.DOUBLE]
    assert rows(engine, "SELECT count(*) FROM root.sg.d1") == [(3, 3, 3)]
    assert rows(engine, "SELECT count(status), first_value(status) FROM root.sg.d1 WHERE time > 100") == [(0, None)]
    assert rows(engine, "SELECT count(temp) FROM root.sg.d1 WHERE status = true") == [(1,)]


def test_group_by(engine: Engine) -> None:
    result = execute(engine, "SELECT count(temp), avg(temp) FROM root.sg.d1 GROUP BY ([0, 8), 2ms)")
    assert result.header == ["Time", "count(root.sg.d1.temp)", "avg(root.sg.d1.temp)"]
    assert result.rows() == [(0, 1, 20.5), (2, 1, 21.0), (4, 0, None), (6, 1, 25.0)]
    assert rows(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([0, 7), 4ms, 2ms)") == [
        (0, 2), (2, 1), (4, 1), (6, 1)
    ]
    assert rows(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([0, 8), 1ms, 3ms)") == [(0, 0), (3, 0), (6, 1)]
    assert rows(engine, "SELECT last_value(temp) FROM root.sg.d1 GROUP BY ([0, 8), 2ms) FILL(PREVIOUS)") == [
        (0, 20.5), (2, 21.0), (4, 21.0), (6, 25.0)
    ]
    assert rows(engine, "SELECT avg(temp) FROM root.sg.d1 GROUP BY ([0, 8), 2ms) FILL(LINEAR) ORDER BY TIME DESC "
                        "LIMIT 3") == [(6, 25.0), (4, 23.0), (2, 21.0)]


def test_group_by_with_hours(iotdb_engine: Engine) -> None:
    hour = 3_600_000
    stamps = np.arange(0, 10 * hour, 60_000, dtype=np.int64)
    iotdb_engine.insert_tablet("root.h.d", stamps, ["s"], [np.ones(len(stamps))])
    result = execute(iotdb_engine, "SELECT count(s), sum(s) FROM root.h.d GROUP BY ([0, 36000000), 1h)")
    assert result.rows() == [(h * hour, 60, 60.0) for h in range(10)]
    assert execute(iotdb_engine, "SELECT count(s) FROM root.h.d GROUP BY ([1970-01-01T00:00:00Z, 1970-01-01T02:00:00Z),"
                                 " 30m, 1h)").rows() == [(0, 30), (hour, 30)]


def test_aggregate_semantic_errors(engine: Engine) -> None:
    assert "hybrid" in error(engine, "SELECT temp, count(temp) FROM root.sg.d1").message
    assert error(engine, "SELECT temp FROM root.sg.d1 GROUP BY ([0, 8), 2ms)").code == 701
    assert "numeric" in error(engine, "SELECT avg(mode) FROM root.sg.d2").message
    assert error(engine, "SELECT sum(status) FROM root.sg.d1").code == 701
    assert error(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([8, 0), 2ms)").code == 701
    assert "windows" in error(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([0, 9000000000000), 1ms)").message
    assert error(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([now(), 1), 1ms)").code == 701


# ---------------------------------------------------------------------------------------- align by device


def test_align_by_device(engine: Engine) -> None:
    result = execute(engine, "SELECT temp, mode FROM root.sg.* ALIGN BY DEVICE")
    assert result.header == ["Time", "Device", "temp", "mode"]
    assert result.rows() == [
        (1, "root.sg.d1", 20.5, None), (2, "root.sg.d1", 21.0, None), (6, "root.sg.d1", 25.0, None),
        (2, "root.sg.d2", 30.0, "on"), (3, "root.sg.d2", 31.5, "off"), (6, "root.sg.d2", 29.0, "on"),
    ]
    assert rows(engine, "SELECT temp FROM root.sg.* WHERE temp > 24 ORDER BY TIME DESC LIMIT 3 ALIGN BY DEVICE") == [
        (6, "root.sg.d1", 25.0), (6, "root.sg.d2", 29.0), (3, "root.sg.d2", 31.5)
    ]
    assert rows(engine, "SELECT count(temp), max_value(temp) FROM root.sg.* ALIGN BY DEVICE") == [
        ("root.sg.d1", 3, 25.0), ("root.sg.d2", 3, 31.5)
    ]
    grouped = execute(engine, "SELECT count(temp) FROM root.sg.* GROUP BY ([0, 6), 3ms) ALIGN BY DEVICE")
    assert grouped.header == ["Time", "Device", "count(temp)"]
    assert grouped.rows() == [(0, "root.sg.d1", 2), (3, "root.sg.d1", 0), (0, "root.sg.d2", 1), (3, "root.sg.d2", 1)]
    assert execute(engine, "SELECT nothing FROM root.sg.* ALIGN BY DEVICE").header == ["Time", "Device"]


def test_align_by_device_needs_one_type_per_column(engine: Engine) -> None:
    execute(engine, "CREATE TIMESERIES root.sg.d3.temp WITH DATATYPE=INT64")
    assert "different data types" in error(engine, "SELECT temp FROM root.sg.* ALIGN BY DEVICE").message


# ------------------------------------------------------------------------------------------------- LAST


def test_last(engine: Engine) -> None:
    result = execute(engine, "SELECT LAST * FROM root.sg.**")
    assert result.header == ["Time", "timeseries", "value", "dataType"]
    assert result.rows() == [
        (6, "root.sg.d1.count", "4", "INT32"),
        (4, "root.sg.d1.status", "true", "BOOLEAN"),
        (6, "root.sg.d1.temp", "25.0", "DOUBLE"),
        (6, "root.sg.d2.mode", "on", "TEXT"),
        (6, "root.sg.d2.temp", "29.0", "DOUBLE"),
    ]
    assert rows(engine, "SELECT LAST temp FROM root.sg.d1 WHERE time < 5") == [
        (2, "root.sg.d1.temp", "21.0", "DOUBLE")
    ]
    assert rows(engine, "SELECT LAST temp FROM root.sg.d1 WHERE time > 6") == []
    assert rows(engine, "SELECT LAST temp, status FROM root.sg.d1 ORDER BY TIME DESC LIMIT 1") == [
        (6, "root.sg.d1.temp", "25.0", "DOUBLE")
    ]
    assert rows(engine, "SELECT LAST nothing FROM root.sg.d1") == []
    assert rows(engine, "SELECT LAST * FROM root.sg.d1 SLIMIT 1 SOFFSET 1") == [
        (4, "root.sg.d1.status", "true", "BOOLEAN")
    ]
    assert error(engine, "SELECT LAST temp FROM root.sg.d1 WHERE temp > 1").code == 701
    assert error(engine, "SELECT LAST count(temp) FROM root.sg.d1").code == 701
    assert error(engine, "SELECT LAST temp FROM root.sg.d1 FILL(PREVIOUS)").code == 701


# ----------------------------------------------------------------------------------------------- errors


def test_illegal_paths(engine: Engine) -> None:
    assert error(engine, "SELECT temp FROM sg.d1").code == 509
    assert error(engine, "SELECT temp FROM root.sg.123").code == 509
    assert error(engine, "SELECT `` FROM root.sg").code in (509, 700)
    assert error(engine, "SELECT temp FROM root.sg.d1 WHERE 123.c > 1").code in (509, 700)
    assert error(engine, "SELECT LAST temp FROM sg").code == 509
    assert error(engine, "SHOW TIMESERIES sg.**").code == 509


def test_row_limit(engine: Engine) -> None:
    assert len(rows(engine, "SELECT temp FROM root.sg.d2", row_limit=3)) == 3
    raised = error(engine, "SELECT temp FROM root.sg.d2", row_limit=2)
    assert isinstance(raised, RowLimitExceededError) and raised.code == 708
    assert raised.message == "Dataset row size exceeded the given max row size (2)"
    assert error(engine, "SELECT count(temp) FROM root.sg.d1 GROUP BY ([0, 1000000), 1ms)", row_limit=10).code == 708
    sql = "SELECT count(temp) FROM root.sg.d1 GROUP BY ([0, 1000000), 1ms) LIMIT 10"
    assert len(rows(engine, sql, row_limit=10)) == 10
    assert error(engine, "SHOW TIMESERIES", row_limit=1).code == 708
    assert error(engine, "SELECT temp FROM root.sg.d2", row_limit=0).code == 701


def test_deeply_nested_filters(engine: Engine) -> None:
    """3,000 NOTs are too deep to evaluate: a clear 701; 3,000 parentheses are one comparison and return rows."""
    raised = error(engine, "SELECT temp FROM root.sg.d1 WHERE " + "NOT " * 3000 + "temp > 1")
    assert (raised.code, raised.message) == (701, "statement is nested too deeply")
    sql = "SELECT temp FROM root.sg.d1 WHERE " + "(" * 3000 + "temp > 1" + ")" * 3000
    assert rows(engine, sql) == rows(engine, "SELECT temp FROM root.sg.d1 WHERE temp > 1") == [
        (1, 20.5), (2, 21.0), (6, 25.0)
    ]


def test_execute_accepts_a_parsed_statement(engine: Engine) -> None:
    statement = parse("SELECT temp FROM root.sg.d2 LIMIT 1")
    assert execute(engine, statement).rows() == [(2, 30.0)]


def test_flushed_and_overwritten_points(iotdb_engine: Engine) -> None:
    execute(iotdb_engine, "INSERT INTO root.f.d(time, s) VALUES (1, 1.0), (2, 2.0)")
    iotdb_engine.flush()
    execute(iotdb_engine, "INSERT INTO root.f.d(time, s) VALUES (2, 20.0), (3, 3.0)")
    assert rows(iotdb_engine, "SELECT s FROM root.f.d") == [(1, 1.0), (2, 20.0), (3, 3.0)]
    assert rows(iotdb_engine, "SELECT sum(s) FROM root.f.d") == [(24.0,)]


def test_result_set_shapes() -> None:
    empty = ResultSet.empty(with_time=False)
    assert len(empty) == 0 and empty.header == [] and empty.rows() == []
    with pytest.raises(ValueError):
        ResultSet(["a"], [], None, [])
