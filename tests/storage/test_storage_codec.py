"""WAL payloads: round trips of series chunks and tablets for every type, and damage detection."""

from __future__ import annotations

import numpy as np
import pytest

from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import codec
from iotdb_core.storage.codec import SeriesChunk, TabletColumn
from iotdb_core.storage.errors import CorruptionError

SAMPLES = {
    TSDataType.BOOLEAN: [True, False, True],
    TSDataType.INT32: [-(2**31), 0, 2**31 - 1],
    TSDataType.INT64: [-(2**63), 5, 2**63 - 1],
    TSDataType.FLOAT: [1.5, -0.0, float("inf")],
    TSDataType.DOUBLE: [0.1, float("nan"), -1e300],
    TSDataType.TEXT: ["", "héllo", "日本\x00語"],
}


def _same(a: object, b: object) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")


@pytest.mark.parametrize("data_type", list(SAMPLES))
def test_series_round_trip(data_type: TSDataType) -> None:
    values = SAMPLES[data_type]
    chunks = [
        SeriesChunk("root.sg.d1", "s", data_type, [3, 1, 3], values),
        SeriesChunk("root.sg.`a.b`", "`x y`", data_type, np.array([7, 8, 9]), values),
    ]
    decoded = list(codec.decode(codec.encode_series(chunks)))
    assert [(c.device, c.measurement, c.data_type) for c in decoded] == [
        ("root.sg.d1", "s", data_type),
        ("root.sg.`a.b`", "`x y`", data_type),
    ]
    assert decoded[0].timestamps.tolist() == [3, 1, 3]
    for chunk in decoded:
        assert _same(chunk.values, np.asarray(values, dtype=chunk.values.dtype))


def test_tablet_round_trip_with_masks() -> None:
    timestamps = np.arange(10, dtype=np.int64) * 1000
    mask = np.array([i % 3 != 0 for i in range(10)])
    columns = [
        TabletColumn("d", TSDataType.DOUBLE, None, np.linspace(0, 1, 10)),
        TabletColumn("t", TSDataType.TEXT, mask, np.array([str(i) for i in range(10) if mask[i]], dtype=object)),
        TabletColumn("b", TSDataType.BOOLEAN, mask, np.ones(int(mask.sum()), dtype=bool)),
    ]
    decoded = list(codec.decode(codec.encode_tablet("root.sg.d", timestamps, columns)))
    assert decoded[0].timestamps.tolist() == timestamps.tolist()
    assert decoded[0].values.tolist() == np.linspace(0, 1, 10).tolist()
    assert decoded[1].timestamps.tolist() == timestamps[mask].tolist()
    assert decoded[1].values.tolist() == [str(i) for i in range(10) if mask[i]]
    assert decoded[2].values.dtype == np.bool_


def test_compact_size() -> None:
    timestamps = np.arange(1000, dtype=np.int64)
    columns = [TabletColumn(f"s{i}", TSDataType.DOUBLE, None, np.random.default_rng(i).random(1000)) for i in range(10)]
    payload = codec.encode_tablet("root.sg.d", timestamps, columns)
    assert len(payload) < 10_000 * 8 + 1000 * 8 + 200


def test_damage_is_reported() -> None:
    payload = codec.encode_series([SeriesChunk("root.sg.d", "s", TSDataType.INT64, [1, 2], [3, 4])])
    with pytest.raises(CorruptionError, match="ends early"):
        list(codec.decode(payload[:-1]))
    with pytest.raises(CorruptionError, match="trailing"):
        list(codec.decode(payload + b"x"))
    with pytest.raises(CorruptionError, match="unknown kind"):
        list(codec.decode(b"\x09"))
