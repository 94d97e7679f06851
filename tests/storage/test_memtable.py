"""Memtables and newest-wins merging."""

from __future__ import annotations

import numpy as np

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage.codec import TabletColumn
from iotdb_core.storage.flush import share_timestamps
from iotdb_core.storage.ingest import PreparedTablet
from iotdb_core.storage.memtable import LastCache, MemTable
from iotdb_core.storage.merge import merge_runs, sort_dedup
from iotdb_core.storage.tsfile_io import SeriesData
from iotdb_core.storage.writes import apply_tablet

KEY = ("root.sg.d", "s")


def test_out_of_order_and_duplicates_last_write_wins() -> None:
    mem = MemTable(1)
    for t, v in [(5, 1.0), (3, 2.0), (5, 3.0), (9, 4.0)]:
        mem.append(KEY, TSDataType.DOUBLE, t, v)
    mem.extend(KEY, TSDataType.DOUBLE, np.array([3, 3, 1]), np.array([10.0, 11.0, 12.0]))
    run = mem.read(KEY, -100, 100)
    assert run is not None
    assert run[0].tolist() == [1, 3, 5, 9]
    assert run[1].tolist() == [12.0, 11.0, 3.0, 4.0]
    narrowed = mem.read(KEY, 2, 5)
    assert narrowed is not None and narrowed[0].tolist() == [3, 5]
    assert mem.read(KEY, 10, 20) is None
    assert mem.read(("root.sg.d", "other"), 0, 1) is None
    assert mem.points == 7


def test_sorted_buffer_reads_are_views_that_later_writes_do_not_change() -> None:
    mem = MemTable(1)
    mem.extend(KEY, TSDataType.INT64, np.arange(10), np.arange(10))
    before = mem.read(KEY, 0, 100)
    assert before is not None
    for t in range(10, 1000):
        mem.append(KEY, TSDataType.INT64, t, -t)
    assert before[0].tolist() == list(range(10))
    after = mem.read(KEY, 0, 2000)
    assert after is not None and len(after[0]) == 1000


def test_tablet_sized_extends_kept_as_chunks_read_like_one_array() -> None:
    """Large extends (kept as chunks) mixed with single points and small extends read as one sorted series;
    a range read across chunks joins only what it covers, and the caller's arrays are copied."""
    mem = MemTable(1)
    expected_t: list[int] = []
    expected_v: list[float] = []
    t = 0
    for block in range(6):
        stamps = np.arange(t, t + 5000, dtype=np.int64)
        values = stamps / 100.0
        mem.extend(KEY, TSDataType.DOUBLE, stamps, values)
        stamps[:] = -1  # the caller reuses its buffers
        values[:] = -1.0
        expected_t += list(range(t, t + 5000))
        expected_v += [x / 100.0 for x in range(t, t + 5000)]
        t += 5000
        for _ in range(block):  # a few single points between the chunks
            mem.append(KEY, TSDataType.DOUBLE, t, float(t))
            expected_t.append(t)
            expected_v.append(float(t))
            t += 1
    assert mem.points == len(expected_t)
    whole = mem.read(KEY, -1, t)
    assert whole is not None
    assert whole[0].tolist() == expected_t and whole[1].tolist() == expected_v
    middle = mem.read(KEY, 4990, 15010)
    assert middle is not None
    low, high = expected_t.index(4990), expected_t.index(15010) + 1
    assert middle[0].tolist() == expected_t[low:high] and middle[1].tolist() == expected_v[low:high]
    assert mem.read(KEY, t + 1, t + 10) is None
    (key, data_type, stamps, values), = mem.sorted_series()
    assert (key, data_type) == (KEY, TSDataType.DOUBLE)
    assert stamps.tolist() == expected_t and values.tolist() == expected_v


def test_chunks_out_of_order_and_overlapping_sort_newest_wins() -> None:
    mem = MemTable(1)
    mem.extend(KEY, TSDataType.INT64, np.arange(2000, 4000), np.zeros(2000))  # floats cast to the series' type
    mem.extend(KEY, TSDataType.INT64, np.arange(0, 3000), np.ones(3000, dtype=np.int64))
    mem.append(KEY, TSDataType.INT64, 10, 7)
    run = mem.read(KEY, 0, 5000)
    assert run is not None
    assert run[0].tolist() == list(range(4000))
    assert run[1].dtype == np.int64
    assert run[1].tolist() == [1] * 10 + [7] + [1] * 2989 + [0] * 1000
    mem.freeze(1)
    mem.normalize()
    assert mem.read(KEY, 3999, 3999) is not None
    mem.delete(lambda key: key == KEY, 0, 1999)
    rest = mem.read(KEY, 0, 5000)
    assert rest is not None and rest[0].tolist() == list(range(2000, 4000))


def test_columns_of_the_same_tablets_share_one_joined_timestamp_array() -> None:
    mem = MemTable(1)
    last = LastCache()
    for start in (0, 2000, 4000):
        stamps = np.arange(start, start + 2000, dtype=np.int64)
        columns = [
            TabletColumn(name, TSDataType.DOUBLE, None, stamps * factor) for name, factor in (("a", 1.0), ("b", 2.0))
        ]
        apply_tablet(last, mem, PreparedTablet("root.sg.d", stamps, columns, []))
    empty_buffers = 2 * 16 * (8 + 8)
    assert mem.size == empty_buffers + 3 * 2000 * 8 * 3  # per tablet: its timestamps once, two value columns
    mem.extend(("root.sg.d", "c"), TSDataType.DOUBLE, np.arange(6000), np.zeros(6000))
    mem.freeze(1)
    mem.normalize()
    series = {key[1]: (stamps, values) for key, _, stamps, values in mem.sorted_series()}
    assert series["a"][0] is series["b"][0]
    assert series["c"][0] is not series["a"][0]
    for name, factor in (("a", 1.0), ("b", 2.0), ("c", 0.0)):
        assert series[name][0].tolist() == list(range(6000))
        assert series[name][1].tolist() == [t * factor for t in range(6000)]
    assert last.get(("root.sg.d", "b")) == (5999, 11998.0)


def test_normalize_and_sorted_series() -> None:
    mem = MemTable(3)
    mem.extend(KEY, TSDataType.TEXT, np.array([2, 1, 2]), np.array(["a", "b", "c"], dtype=object))
    mem.append(("root.sg.a", "x"), TSDataType.BOOLEAN, 7, True)
    mem.freeze(wal_end=42)
    mem.normalize()
    items = list(mem.sorted_series())
    assert [key for key, *_ in items] == [("root.sg.a", "x"), KEY]
    assert items[1][2].tolist() == [1, 2] and items[1][3].tolist() == ["b", "c"]
    assert dict((key, (t, v)) for key, t, v in mem.last_points()) == {("root.sg.a", "x"): (7, True), KEY: (2, "c")}
    assert mem.wal_end == 42
    assert mem.size > 0


def test_last_cache() -> None:
    cache = LastCache()
    cache.offer(KEY, 5, 1.0)
    cache.offer(KEY, 3, 2.0)
    assert cache.get(KEY) == (5, 1.0)
    cache.offer(KEY, 5, 3.0)
    assert cache.get(KEY) == (5, 3.0)
    cache.offer_many(KEY, np.array([9, 2, 9, 1]), np.array([1.0, 2.0, 4.0, 5.0]))
    assert cache.get(KEY) == (9, 4.0)


def test_merge_runs_newest_wins() -> None:
    old = (np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0]))
    new = (np.array([2, 4]), np.array([2.0, 2.0]))
    merged = merge_runs([old, new])
    assert merged is not None
    assert merged[0].tolist() == [1, 2, 3, 4] and merged[1].tolist() == [1.0, 2.0, 1.0, 2.0]
    disjoint = merge_runs([(np.array([10, 11]), np.array([1, 1])), (np.array([1, 2]), np.array([2, 2]))])
    assert disjoint is not None and disjoint[0].tolist() == [1, 2, 10, 11]
    assert merge_runs([(np.array([], dtype=np.int64), np.array([]))]) is None
    ts, vals = sort_dedup(np.array([3, 1, 3, 1]), np.array([1, 2, 3, 4]))
    assert ts.tolist() == [1, 3] and vals.tolist() == [4, 3]


def test_share_timestamps_within_a_device() -> None:
    clock = np.arange(5)
    series = [
        SeriesData.of("root.sg.a", "x", TSDataType.DOUBLE, clock, np.zeros(5)),
        SeriesData.of("root.sg.a", "y", TSDataType.DOUBLE, clock.copy(), np.ones(5)),
        SeriesData.of("root.sg.a", "z", TSDataType.DOUBLE, clock[:3].copy(), np.ones(3)),
        SeriesData.of("root.sg.b", "x", TSDataType.DOUBLE, clock.copy(), np.ones(5)),
    ]
    shared = list(share_timestamps(series))
    assert shared[1].timestamps is shared[0].timestamps
    assert shared[2].timestamps is series[2].timestamps
    assert shared[3].timestamps is series[3].timestamps
    assert [s.values.tolist() for s in shared] == [s.values.tolist() for s in series]
