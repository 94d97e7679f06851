"""In-process protocol rules: tablet and record buffers as the apache-iotdb client encodes them, decoded here;
results encoded as TsBlocks and read back by the client's own ``tsblock_serde``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from iotdb.Session import Session
from iotdb.tsfile.utils.tsblock_serde import deserialize
from iotdb.utils.IoTDBConstants import TSDataType as Wire
from iotdb.utils.Tablet import Tablet

from iotdb_core.datatypes import TSDataType
from iotdb_core.query import MetadataResult, ResultSet
from iotdb_core.rpc.status import BadRequest
from iotdb_core.rpc.tsblock import pages_of
from iotdb_core.rpc.values import decode_record, decode_tablet

WIRE = [Wire.BOOLEAN, Wire.INT32, Wire.INT64, Wire.FLOAT, Wire.DOUBLE, Wire.TEXT, Wire.STRING]
NAMES = ["b", "i", "l", "f", "d", "t", "s"]


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 17])
def test_tablets_of_every_type_with_nulls_decode_as_encoded(rows: int) -> None:
    values = [[bool(r % 2), r, r * 2**33, r / 2, r / 4, f"t{r}", f"é{r}"] for r in range(rows)]
    for r in range(rows):  # a null in every column at some row, bitmaps across byte boundaries
        values[r][r % len(NAMES)] = None
    tablet = Tablet("root.v.d", NAMES, WIRE, values, list(range(rows)))
    decoded = decode_tablet("t", NAMES, [int(w) for w in WIRE], rows, tablet.get_binary_timestamps(),
                            tablet.get_binary_values())
    assert decoded.timestamps.tolist() == list(range(rows))
    assert decoded.types == [TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT,
                             TSDataType.DOUBLE, TSDataType.TEXT, TSDataType.TEXT]
    for index, column in enumerate(decoded.columns):
        items = column.tolist() if isinstance(column, np.ndarray) else column
        assert items == [row[index] for row in values], NAMES[index]


def test_a_tablet_without_nulls_stays_numpy() -> None:
    tablet = Tablet("root.v.d", ["x"], [Wire.DOUBLE], [[1.5], [2.5]], [1, 2])
    decoded = decode_tablet("t", ["x"], [4], 2, tablet.get_binary_timestamps(), tablet.get_binary_values())
    assert isinstance(decoded.columns[0], np.ndarray) and decoded.columns[0].dtype == np.float64


def test_records_of_changing_layouts_decode_right() -> None:
    layouts = [([4, 2, 3, 1], [1.5, 7, 2.5, 3]), ([4, 3, 2, 1], [1.5, 2.5, 7, 3]), ([4, 2, 3, 1], [0.5, 1, 2.0, 4]),
               ([0, 5], [True, "x"]), ([5, 0], ["yy", False]), ([11], ["s"])]
    for _ in range(2):  # the second pass is served by the layout cache
        for codes, values in layouts:
            decoded, kinds = decode_record("r", len(codes), Session.value_to_bytes(codes, values))
            assert decoded == values
            assert [k.value for k in kinds] == [{0: "BOOLEAN", 1: "INT32", 2: "INT64", 3: "FLOAT", 4: "DOUBLE",
                                                 5: "TEXT", 11: "TEXT"}[c] for c in codes]
    with pytest.raises(BadRequest, match="value 1: type code 42"):
        decode_record("r", 2, b"\x04" + bytes(8) + b"\x2a" + bytes(8))


def test_tsblocks_read_back_by_the_clients_serde() -> None:
    stamps = np.arange(10, dtype=np.int64)
    nulls = np.zeros(10, dtype=bool)
    nulls[[0, 8]] = True
    result = ResultSet(
        ["b", "i", "l", "f", "d", "t", "empty"],
        [TSDataType.BOOLEAN, TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE,
         TSDataType.TEXT, None],
        stamps,
        [stamps % 2 == 0, stamps.astype(np.int32), stamps * 10, stamps.astype(np.float32) / 2,
         np.where(stamps == 3, math.nan, stamps / 4), np.array([f"v{i}" for i in range(10)], dtype=object),
         np.zeros(10)],
        [nulls, None, nulls, None, None, nulls, None],
    )
    pages = pages_of(result)
    assert pages.type_names == ["BOOLEAN", "INT32", "INT64", "FLOAT", "DOUBLE", "TEXT", "TEXT"]
    blocks = [pages.next_page(4) for _ in range(3)]
    assert not pages.more and pages.next_page(4) == []
    times, columns, null_masks, count = deserialize(memoryview(blocks[2][0]))
    assert count == 2 and times.tolist() == [8, 9]
    assert null_masks[0].tolist() == [True, False] and columns[0].tolist()[1] is False
    assert columns[2].tolist() == [90]  # non-null values only
    assert columns[5].tolist() == [b"v9"]
    assert null_masks[6].tolist() == [True, True]
    _times, columns, _nulls, _count = deserialize(memoryview(blocks[0][0]))
    assert math.isnan(columns[4][3]) and columns[3].tolist() == [0.0, 0.5, 1.0, 1.5]


def test_metadata_results_become_text_and_int64_columns() -> None:
    pages = pages_of(MetadataResult(["timeseries", "count", "flag"], [("root.a.b", 3, True), ("root.a.c", None, None)]))
    assert pages.ignore_timestamp
    assert pages.type_names == ["TEXT", "INT64", "TEXT"]
    _times, columns, nulls, count = deserialize(memoryview(pages.next_page(10)[0]))
    assert count == 2
    assert columns[0].tolist() == [b"root.a.b", b"root.a.c"]
    assert columns[1].tolist() == [3] and nulls[1].tolist() == [False, True]
    assert columns[2].tolist() == [b"true"]
