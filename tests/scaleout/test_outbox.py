"""The forwarder's outbox and tablets on real files: order, cursor across reopen, torn tails, segment removal,
rejected values left out, repeated timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import iotdb_forward.outbox as outbox_module
from iotdb_core.datatypes import TSDataType
from iotdb_core.model import Row
from iotdb_core.storage.results import WriteFailure
from iotdb_forward.outbox import Outbox
from iotdb_forward.tablets import row_groups, tablets


def group(start: int, count: int, device: str = "root.sg.d1") -> tuple:
    stamps = list(range(start, start + count))
    return (device, ("s",), ("DOUBLE",), stamps, [[float(t) for t in stamps]])


def test_records_come_back_in_order_and_the_cursor_survives_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for index in range(5):
        box.append([group(index * 10, 10)], 10)
    first = box.read(20)
    assert [record.groups[0][3][0] for record in first] == [0, 10]
    box.acknowledge(first)
    assert (box.backlog_points, box.forwarded_points) == (30, 20)
    box.close()
    reopened = Outbox(tmp_path)
    assert (reopened.backlog_points, reopened.forwarded_points, reopened.appended_points) == (30, 20, 50)
    rest = reopened.read(1000)
    assert [record.groups[0][3][0] for record in rest] == [20, 30, 40]
    reopened.rewind()  # a failed send reads the same records again
    assert [record.groups[0][3][0] for record in reopened.read(1000)] == [20, 30, 40]
    reopened.acknowledge(rest)
    assert reopened.backlog_points == 0 and reopened.backlog_bytes == 0 and reopened.oldest_unsent is None
    reopened.close()


def test_a_torn_last_record_is_cut_off(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append([group(0, 3)], 3)
    box.append([group(3, 3)], 3)
    box.close()
    [segment] = tmp_path.glob("outbox-*.log")
    with open(segment, "r+b") as handle:
        handle.truncate(segment.stat().st_size - 5)  # a crash in the middle of the second append
    reopened = Outbox(tmp_path)
    assert reopened.backlog_points == 3
    [record] = reopened.read(100)
    assert record.groups[0][3] == [0, 1, 2]
    reopened.append([group(6, 1)], 1)  # appends continue after the cut
    assert [r.groups[0][3] for r in reopened.read(100)] == [[6]]
    reopened.close()


def test_segments_behind_the_cursor_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "SEGMENT_BYTES", 200)
    box = Outbox(tmp_path)
    for index in range(10):
        box.append([group(index * 5, 5)], 5)
    assert len(list(tmp_path.glob("outbox-*.log"))) > 3
    records = []
    while batch := box.read(7):
        records += batch
        box.acknowledge(batch)
    assert [r.groups[0][3][0] for r in records] == list(range(0, 50, 5))
    assert len(list(tmp_path.glob("outbox-*.log"))) == 1
    box.close()
    assert Outbox(tmp_path).backlog_points == 0


def test_rejected_values_are_left_out_and_types_kept() -> None:
    rows = [Row("root.sg.d1", t, ("a", "b"), (t * 1.0, t), (TSDataType.DOUBLE, None)) for t in range(3)]
    failures = [WriteFailure("root.sg.d1", "b", 1, 1, "type mismatch")]
    [(device, measurements, types, stamps, columns)] = row_groups(rows, failures)
    assert (device, measurements, types, stamps) == ("root.sg.d1", ("a", "b"), ("DOUBLE", None), [0, 1, 2])
    assert columns == [[0.0, 1.0, 2.0], [0, None, 2]]
    mixed = row_groups([Row("root.sg.d1", 1, ("a",), (1.0,)), Row("root.sg.d2", 1, ("a",), (2.0,)),
                        Row("root.sg.d1", 2, ("a",), (3.0,))], [])
    assert [(g[0], g[3], g[4]) for g in mixed] == [("root.sg.d1", [1, 2], [[1.0, 3.0]]), ("root.sg.d2", [1], [[2.0]])]


def test_tablets_merge_records_sort_by_time_and_keep_the_last_value_of_a_timestamp(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append([("root.sg.d1", ("s", "t"), (None, None), [5, 6], [[5.0, 6.0], [2, 1]])], 4)
    box.append([("root.sg.d1", ("s", "t"), (None, None), [1, 5], [[1.0, 50.0], [None, None]])], 2)
    box.append([("root.sg.d1", ("s", "t"), (None, None), [1], [[None], [7]])], 1)
    [tablet] = tablets(box.read(100), lambda device, measurement: "FLOAT" if measurement == "s" else None)
    box.close()
    assert tablet.get_measurements() == ["s", "t"]
    assert [kind.name for kind in tablet.get_data_types()] == ["FLOAT", "INT64"]
    assert np.frombuffer(tablet.get_binary_timestamps(), ">i8").tolist() == [1, 5, 6]
    s_values, t_values = tablet._NumpyTablet__values  # what get_binary_values encodes
    assert s_values.tolist() == [1.0, 50.0, 6.0]  # the later value of timestamp 5
    bitmap = tablet.bitmaps[1]
    present = [not bitmap.bits[i // 8] & (1 << (i % 8)) for i in range(3)]
    assert [v for v, p in zip(t_values.tolist(), present, strict=True) if p] == [7, 2, 1]  # t@5 from the first
