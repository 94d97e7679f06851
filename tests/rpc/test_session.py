"""The real ``apache-iotdb`` Session and SessionPool against ``iotdb serve``: writes of every type, schema calls,
queries read back as DataFrames, paging, raw/last/aggregation queries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from iotdb.Session import Session
from iotdb.SessionPool import PoolConfig, create_session_pool
from iotdb.thrift.rpc.ttypes import TSAggregationQueryReq, TSSetTimeZoneReq
from iotdb.tsfile.utils.tsblock_serde import deserialize
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.Tablet import Tablet

from iotdb_core.testing.server import ServerProcess

from .conftest import open_session

ALL_TYPES = [TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE,
             TSDataType.TEXT]
NAMES = ["b", "i", "l", "f", "d", "t"]


def frame(session: Session, sql: str) -> pd.DataFrame:
    with session.execute_query_statement(sql) as dataset:
        return dataset.todf()


def rows(session: Session, sql: str) -> list[list[object]]:
    """Rows of a query as Python values, None for nulls (NaN of a missing float cell too)."""
    out = []
    with session.execute_query_statement(sql) as dataset:
        while dataset.has_next():
            record = dataset.next()
            out.append([record.get_timestamp(), *(None if f.get_data_type() is None else f.get_object_value(
                f.get_data_type()) for f in record.get_fields())])
    return out


def test_insert_record_of_every_type_reads_back_through_todf(session: Session) -> None:
    values = [True, 7, 2**40, 1.5, 2.25, "héllo"]
    session.insert_record("root.rec.d1", 10, NAMES, ALL_TYPES, values)
    df = frame(session, "SELECT * FROM root.rec.d1")
    assert df["Time"].tolist() == [10]
    assert [df[f"root.rec.d1.{n}"].iloc[0] for n in NAMES] == values
    types = dict(zip(frame(session, "SHOW TIMESERIES root.rec.d1.*")["timeseries"],
                     frame(session, "SHOW TIMESERIES root.rec.d1.*")["dataType"], strict=True))
    assert types == {f"root.rec.d1.{n}": t.name for n, t in zip(NAMES, ALL_TYPES, strict=True)}


def test_insert_records_and_records_of_one_device_and_string_records(session: Session) -> None:
    session.insert_records(
        ["root.recs.d1", "root.recs.d2"], [1, 2], [["a", "b"], ["a"]],
        [[TSDataType.INT32, TSDataType.DOUBLE], [TSDataType.TEXT]], [[1, 0.5], ["x"]],
    )
    session.insert_records_of_one_device(
        "root.recs.d1", [3, 2], [["a"], ["a", "b"]], [[TSDataType.INT32], [TSDataType.INT32, TSDataType.DOUBLE]],
        [[3], [2, 1.5]],
    )
    session.insert_str_record("root.recs.d3", 5, ["s", "n"], ["text", "42"])
    assert rows(session, "SELECT a, b FROM root.recs.d1") == [[1, 1, 0.5], [2, 2, 1.5], [3, 3, None]]
    assert rows(session, "SELECT a FROM root.recs.d2") == [[2, "x"]]
    df = frame(session, "SELECT * FROM root.recs.d3")
    assert df["Time"].tolist() == [5]
    assert df["root.recs.d3.s"].tolist() == ["text"]
    assert df["root.recs.d3.n"].iloc[0] in (42, 42.0, "42")  # inferred as a number, as IoTDB does


def test_insert_tablet_with_nulls_of_every_type(session: Session) -> None:
    values = [
        [True, 1, 10, 1.5, 0.25, "a"],
        [None, 2, None, 2.5, None, "b"],
        [False, None, 30, None, 0.75, None],
        [None, None, None, None, None, "only text"],
    ]
    session.insert_tablet(Tablet("root.tab.d1", NAMES, ALL_TYPES, values, [100, 101, 102, 103]))
    got = rows(session, "SELECT " + ", ".join(NAMES) + " FROM root.tab.d1")
    assert got == [[100 + i, *row] for i, row in enumerate(values)]


def test_insert_tablets_and_numpy_tablet_with_bitmaps(session: Session) -> None:
    first = Tablet("root.tabs.d1", ["x"], [TSDataType.INT64], [[1], [2]], [1, 2])
    second = Tablet("root.tabs.d2", ["y"], [TSDataType.FLOAT], [[0.5], [None]], [1, 2])
    session.insert_tablets([first, second])
    doubles = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    ints = np.arange(9, dtype=">i4")
    tablet = NumpyTablet("root.tabs.np", ["v", "w"], [TSDataType.DOUBLE, TSDataType.INT32],
                         [doubles.astype(">f8"), ints], np.arange(9, dtype=">i8"))
    tablet.mark_none_value(0, 8)  # the 9th row crosses into the bitmap's second byte
    tablet.mark_none_value(1, 0)
    session.insert_tablet(tablet)
    assert rows(session, "SELECT x FROM root.tabs.d1") == [[1, 1], [2, 2]]
    assert rows(session, "SELECT y FROM root.tabs.d2") == [[1, 0.5]]
    got = rows(session, "SELECT v, w FROM root.tabs.np")
    assert got[0] == [0, 1.0, None]
    assert got[8] == [8, None, 8]
    assert [row[1] for row in got[:8]] == doubles[:8].tolist()


def test_schema_calls_create_delete_and_database(session: Session) -> None:
    session.set_storage_group("root.schema")
    with pytest.raises(StatementExecutionException, match="501"):
        session.set_storage_group("root.schema")
    session.create_time_series("root.schema.d1.s1", TSDataType.INT64, TSEncoding.PLAIN, Compressor.SNAPPY)
    with pytest.raises(StatementExecutionException, match="503"):
        session.create_time_series("root.schema.d1.s1", TSDataType.INT64, TSEncoding.PLAIN, Compressor.SNAPPY)
    session.create_multi_time_series(
        ["root.schema.d1.s2", "root.schema.d1.s3"], [TSDataType.DOUBLE, TSDataType.TEXT],
        [TSEncoding.GORILLA, TSEncoding.PLAIN], [Compressor.LZ4, Compressor.GZIP],
    )
    shown = frame(session, "SHOW TIMESERIES root.schema.**")
    assert shown["timeseries"].tolist() == ["root.schema.d1.s1", "root.schema.d1.s2", "root.schema.d1.s3"]
    assert shown["encoding"].tolist() == ["PLAIN", "GORILLA", "PLAIN"]
    assert shown["compression"].tolist() == ["SNAPPY", "LZ4", "GZIP"]
    assert session.check_time_series_exists("root.schema.d1.s2")
    session.delete_time_series(["root.schema.d1.s2"])
    assert not session.check_time_series_exists("root.schema.d1.s2")
    with pytest.raises(StatementExecutionException, match="508"):
        session.delete_time_series(["root.schema.d1.nothing"])
    with pytest.raises(StatementExecutionException, match="509"):
        session.create_time_series("root.schema.d1.bad node", TSDataType.INT64, TSEncoding.PLAIN,
                                   Compressor.SNAPPY)


def test_delete_data_up_to_a_time_and_in_a_range(session: Session) -> None:
    session.insert_tablet(Tablet("root.del.d1", ["s"], [TSDataType.INT64], [[i] for i in range(10)],
                                 list(range(10))))
    session.delete_data(["root.del.d1.s"], 2)
    session.delete_data_in_range(["root.del.d1.*"], 5, 6)
    assert [row[0] for row in rows(session, "SELECT s FROM root.del.d1")] == [3, 4, 7, 8, 9]


def test_fetch_paging_with_a_small_fetch_size(rpc_server: ServerProcess) -> None:
    client = open_session(rpc_server, fetch_size=7)
    try:
        count = 1000
        client.insert_tablet(Tablet("root.page.d1", ["s", "t"], [TSDataType.INT32, TSDataType.TEXT],
                                    [[i, None if i % 3 else f"v{i}"] for i in range(count)], list(range(count))))
        df = frame(client, "SELECT s, t FROM root.page.d1")
        assert df["Time"].tolist() == list(range(count))
        assert df["root.page.d1.s"].tolist() == list(range(count))
        texts = df["root.page.d1.t"].tolist()
        assert [texts[i] for i in range(0, count, 3)] == [f"v{i}" for i in range(0, count, 3)]
        assert all(pd.isna(texts[i]) for i in range(count) if i % 3)
        # a result left unread is released by closing it
        dataset = client.execute_query_statement("SELECT s FROM root.page.d1")
        assert dataset.has_next()
        dataset.close_operation_handle()
    finally:
        client.close()


def test_raw_and_last_data_queries(session: Session) -> None:
    session.insert_tablet(Tablet("root.raw.d1", ["a", "b"], [TSDataType.DOUBLE, TSDataType.INT64],
                                 [[float(i), i * 10] for i in range(10)], list(range(10))))
    with session.execute_raw_data_query(["root.raw.d1.a", "root.raw.d1.b"], 3, 6) as dataset:
        df = dataset.todf()
    assert df["Time"].tolist() == [3, 4, 5]
    assert df["root.raw.d1.b"].tolist() == [30, 40, 50]
    with session.execute_last_data_query(["root.raw.d1.a", "root.raw.d1.b"], 0) as dataset:
        last = dataset.todf()
    assert last["timeseries"].tolist() == ["root.raw.d1.a", "root.raw.d1.b"]
    assert last["Time"].tolist() == [9, 9]
    assert [float(v) for v in last["value"].tolist()] == [9.0, 90.0]


def test_aggregation_query_over_the_generated_client(session: Session) -> None:
    """``executeAggregationQueryV2`` (the Python Session has no wrapper; its generated client does)."""
    session.insert_tablet(Tablet("root.agg.d1", ["v"], [TSDataType.DOUBLE], [[float(i)] for i in range(10)],
                                 list(range(10))))
    client = session._Session__client  # type: ignore[attr-defined]
    session_id = session._Session__session_id  # type: ignore[attr-defined]
    statement_id = session._Session__statement_id  # type: ignore[attr-defined]
    request = TSAggregationQueryReq(session_id, statement_id, ["root.agg.d1.v", "root.agg.d1.v"], [0, 2],
                                    startTime=0, endTime=10, interval=5, fetchSize=100)
    response = client.executeAggregationQueryV2(request)
    assert response.status.code == 200, response.status.message
    assert response.columns == ["count(root.agg.d1.v)", "sum(root.agg.d1.v)"]
    times, columns, _nulls, count = deserialize(memoryview(response.queryResult[0]))
    assert count == 2
    assert times.tolist() == [0, 5]
    assert columns[0].tolist() == [5, 5]
    assert columns[1].tolist() == [10.0, 35.0]
    request.interval = None
    response = client.executeAggregationQueryV2(request)
    assert response.ignoreTimeStamp
    _times, columns, _nulls, count = deserialize(memoryview(response.queryResult[0]))
    assert (count, columns[0].tolist(), columns[1].tolist()) == (1, [10], [45.0])


def test_statement_errors_carry_iotdb_codes(session: Session) -> None:
    with pytest.raises(StatementExecutionException, match="700"):
        session.execute_query_statement("SELEC * FROM root.x")
    with pytest.raises(StatementExecutionException, match="701"):
        session.execute_non_query_statement("SET TTL TO root.x 0")
    session.execute_non_query_statement("INSERT INTO root.sqlw.d1(timestamp, s) VALUES (1, 2.5)")
    assert rows(session, "SELECT s FROM root.sqlw.d1") == [[1, 2.5]]
    assert session.execute_statement("SELECT s FROM root.sqlw.d1").todf()["root.sqlw.d1.s"].tolist() == [2.5]
    assert session.execute_statement("CREATE DATABASE root.sqlw2") is None


def test_wrong_password_and_table_dialect_are_refused(rpc_server: ServerProcess) -> None:
    with pytest.raises(Exception, match="801"):
        open_session(rpc_server, password="wrong")
    table = Session(rpc_server.rpc_host, rpc_server.rpc_port, "root", "root", zone_id="UTC")
    table.sql_dialect = "table"
    with pytest.raises(Exception, match="tree"):
        table.open(False)


def test_time_zone_and_compressed_protocol(rpc_server: ServerProcess) -> None:
    client = open_session(rpc_server, compression=True)
    try:
        assert client.get_time_zone() == "UTC"
        client.set_time_zone("Asia/Shanghai")
        client.execute_non_query_statement("INSERT INTO root.tz.d1(timestamp, s) VALUES (2024-01-01T08:00:00, 1)")
        assert rows(client, "SELECT s FROM root.tz.d1") == [[1704067200000, 1.0]]
        # Session.set_time_zone ignores the status; the generated client shows it
        refused = client._Session__client.setTimeZone(  # type: ignore[attr-defined]
            TSSetTimeZoneReq(client._Session__session_id, "Mars/Olympus"))  # type: ignore[attr-defined]
        assert refused.code == 701 and "Mars/Olympus" in refused.message
    finally:
        client.close()


def test_session_pool_shares_the_writes(rpc_server: ServerProcess) -> None:
    config = PoolConfig(host=rpc_server.rpc_host, port=str(rpc_server.rpc_port), user_name="root",
                        password="root", fetch_size=100, time_zone="UTC", max_retry=1)
    pool = create_session_pool(config, 3, 5000)
    try:
        borrowed = [pool.get_session() for _ in range(3)]
        for index, member in enumerate(borrowed):
            member.insert_record("root.pool.d1", index, ["s"], [TSDataType.INT32], [index])
        for member in borrowed:
            pool.put_back(member)
        reader = pool.get_session()
        assert frame(reader, "SELECT s FROM root.pool.d1")["root.pool.d1.s"].tolist() == [0, 1, 2]
        pool.put_back(reader)
    finally:
        pool.close()


def test_special_floats_survive(session: Session) -> None:
    session.insert_record("root.nan.d1", 1, ["d", "f"], [TSDataType.DOUBLE, TSDataType.FLOAT],
                          [math.inf, -math.inf])
    session.insert_record("root.nan.d1", 2, ["d"], [TSDataType.DOUBLE], [math.nan])
    df = frame(session, "SELECT d, f FROM root.nan.d1")
    assert df["root.nan.d1.d"].iloc[0] == math.inf
    assert df["root.nan.d1.f"].iloc[0] == -math.inf
    assert math.isnan(df["root.nan.d1.d"].iloc[1])


def test_insert_records_over_many_devices_keep_the_row_rules(session: Session) -> None:
    """Records regrouped per device as tablets behave as rows: the last write of a timestamp wins, a value that does
    not fit its series is reported while the others are written, nulls and new series work."""
    devices = [f"root.many.d{i % 7}" for i in range(70)]
    stamps = [i // 7 for i in range(70)]
    session.insert_records(devices, stamps, [["v", "n"]] * 70, [[TSDataType.INT64, TSDataType.TEXT]] * 70,
                           [[i, f"t{i}"] for i in range(70)])
    assert rows(session, "SELECT v, n FROM root.many.d3") == [[t, 7 * t + 3, f"t{7 * t + 3}"] for t in range(10)]
    # the same timestamp twice for one device: the later record wins
    session.insert_records(["root.many.d0", "root.many.d1", "root.many.d0"], [5, 5, 5], [["v"]] * 3,
                           [[TSDataType.INT64]] * 3, [[100], [101], [102]])
    assert rows(session, "SELECT v FROM root.many.d0 WHERE time = 5") == [[5, 102]]
    assert rows(session, "SELECT v FROM root.many.d1 WHERE time = 5") == [[5, 101]]
    # a TEXT value declared for an INT64 series fails alone; the other devices' values are written
    with pytest.raises(StatementExecutionException, match="507") as failure:
        session.insert_records(["root.many.d0", "root.many.d1"], [20, 20], [["v"], ["v"]],
                               [[TSDataType.TEXT], [TSDataType.INT64]], [["oops"], [7]])
    assert "root.many.d0.v at 20" in str(failure.value)
    assert rows(session, "SELECT v FROM root.many.d1 WHERE time = 20") == [[20, 7]]
    assert rows(session, "SELECT v FROM root.many.d0 WHERE time = 20") == []
