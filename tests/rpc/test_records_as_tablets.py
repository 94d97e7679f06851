"""``insertRecords``, ``insertRecordsOfOneDevice`` and ``insertTablets`` written as one ``write_tablets`` call:
many devices read back whole, measurement lists that differ between records, nulls, repeated timestamps; a call
with a wrong-shaped buffer is answered with a TSStatus and writes nothing."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pytest
from iotdb.Session import Session
from iotdb.thrift.rpc.ttypes import TSInsertRecordsOfOneDeviceReq, TSInsertRecordsReq, TSInsertTabletsReq
from iotdb.utils.BitMap import BitMap
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.Tablet import Tablet

from iotdb_core.testing.server import ServerProcess

from .test_bad_input import RawClient
from .test_session import rows


@pytest.fixture
def raw(rpc_server: ServerProcess) -> Iterator[RawClient]:
    client = RawClient(rpc_server)
    yield client
    client.close()


def test_records_over_a_hundred_devices_read_back(session: Session) -> None:
    names = [f"s{i}" for i in range(10)]
    devices = [f"root.hundred.d{i % 100}" for i in range(1000)]
    values = [[float(i * 10 + j) for j in range(10)] for i in range(1000)]
    for call in range(2):
        session.insert_records(devices, [call * 10 + i // 100 for i in range(1000)], [names] * 1000,
                               [[TSDataType.DOUBLE] * 10] * 1000, values)
    for device in (0, 42, 99):
        got = rows(session, f"SELECT {', '.join(names)} FROM root.hundred.d{device}")
        expected = [[call * 10 + k, *values[k * 100 + device]] for call in range(2) for k in range(10)]
        assert got == expected
    with session.execute_query_statement("SELECT count(s3) FROM root.hundred.**") as dataset:
        assert sum(dataset.todf().iloc[0].tolist()) == 2000


def test_records_of_one_device_with_different_measurements_and_a_repeated_timestamp(session: Session) -> None:
    session.insert_records(
        ["root.mix.d1", "root.mix.d2", "root.mix.d1", "root.mix.d1"], [1, 1, 2, 1],
        [["a", "b"], ["a"], ["b", "c"], ["a"]],
        [[TSDataType.INT64, TSDataType.TEXT], [TSDataType.DOUBLE], [TSDataType.TEXT, TSDataType.BOOLEAN],
         [TSDataType.INT64]],
        [[10, "x"], [0.5], ["y", True], [11]],
    )
    assert rows(session, "SELECT a, b, c FROM root.mix.d1") == [[1, 11, "x", None], [2, None, "y", True]]
    assert rows(session, "SELECT a FROM root.mix.d2") == [[1, 0.5]]


def test_records_of_one_device_read_back(session: Session) -> None:
    stamps = list(range(100, 0, -1))  # out of order: each is still stored at its own time
    session.insert_records_of_one_device("root.onedev.d", stamps, [["v", "w"]] * 100,
                                         [[TSDataType.INT32, TSDataType.FLOAT]] * 100,
                                         [[t, t / 4] for t in stamps])
    assert rows(session, "SELECT v, w FROM root.onedev.d") == [[t, t, t / 4] for t in range(1, 101)]


def _double(value: float) -> bytes:
    return struct.pack(">bd", 4, value)


def test_null_values_in_records_leave_only_that_point_out(raw: RawClient, session: Session) -> None:
    null = bytes([0xFE])
    request = TSInsertRecordsReq(raw.session_id, ["root.nulls.d1", "root.nulls.d2", "root.nulls.d1"],
                                 [["a", "b"], ["a", "b"], ["a", "b"]],
                                 [_double(1.0) + null, null + _double(2.0), _double(3.0) + _double(4.0)], [1, 1, 2])
    assert raw.client.insertRecords(request).code == 200
    assert rows(session, "SELECT a, b FROM root.nulls.d1") == [[1, 1.0, None], [2, 3.0, 4.0]]
    assert rows(session, "SELECT * FROM root.nulls.d2") == [[1, 2.0]]  # its only value of a was null


def test_a_record_buffer_that_disagrees_refuses_the_whole_call(raw: RawClient, session: Session) -> None:
    request = TSInsertRecordsReq(raw.session_id, ["root.badcall.d1", "root.badcall.d2"], [["a"], ["a", "b"]],
                                 [_double(1.0), _double(2.0)], [1, 1])  # the second record lacks a value
    status = raw.client.insertRecords(request)
    assert status.code != 200 and "record 1" in status.message
    one_device = TSInsertRecordsOfOneDeviceReq(raw.session_id, "root.badcall.d3", [["a"], ["a"]],
                                               [_double(1.0), b"\x04\x00"], [1, 2])
    status = raw.client.insertRecordsOfOneDevice(one_device)
    assert status.code != 200 and "record 1" in status.message
    with session.execute_query_statement("SHOW TIMESERIES root.badcall.**") as dataset:
        assert dataset.todf().empty


def test_tablets_of_several_devices_with_bitmaps_read_back(session: Session) -> None:
    stamps = np.arange(1, 6, dtype=">i8")
    first = NumpyTablet("root.tabs.d1", ["x", "y"], [TSDataType.DOUBLE, TSDataType.INT32],
                        [np.arange(5, dtype=">f8"), np.arange(5, dtype=">i4")], stamps,
                        [BitMap(5), BitMap(5)])
    assert first.bitmaps is not None
    first.bitmaps[0].mark(1)
    first.bitmaps[1].mark(4)
    second = Tablet("root.tabs.d2", ["t"], [TSDataType.TEXT], [["p"], [None], ["r"]], [7, 8, 9])
    session.insert_tablets([first, second])
    assert rows(session, "SELECT x, y FROM root.tabs.d1") == [
        [1, 0.0, 0], [2, None, 1], [3, 2.0, 2], [4, 3.0, 3], [5, 4.0, None]]
    assert rows(session, "SELECT t FROM root.tabs.d2") == [[7, "p"], [9, "r"]]


def test_a_wrong_shaped_tablet_refuses_every_tablet_of_the_call(raw: RawClient, session: Session) -> None:
    good = Tablet("root.badtabs.d1", ["v"], [TSDataType.INT64], [[1], [2]], [1, 2])
    request = TSInsertTabletsReq(
        raw.session_id, ["root.badtabs.d1", "root.badtabs.d2"], [good.get_measurements()] * 2,
        [good.get_binary_values(), good.get_binary_values()[:-3]],
        [good.get_binary_timestamps()] * 2, [good.get_data_types()] * 2, [2, 2])
    status = raw.client.insertTablets(request)
    assert status.code != 200 and "tablet 1" in status.message
    with session.execute_query_statement("SHOW TIMESERIES root.badtabs.**") as dataset:
        assert dataset.todf().empty
