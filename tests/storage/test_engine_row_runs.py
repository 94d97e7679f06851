"""Runs of rows of one device are validated column by column: the outcome must equal writing them one by one.

``insert_records`` with a long run of rows sharing device, measurements and types takes the columnar path
(``Ingest.rows``); ``insert_record`` per row never does. Both engines start from the same series, get the same
rows, and must store the same points and report the same failures, whatever the values, types and timestamps.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine
from iotdb_core.storage.ingest import COLUMNAR_RUN
from iotdb_core.storage.results import WriteResult

DEVICE = "root.sg.d"
SERIES = {"i64": "INT64", "i32": "INT32", "f64": "DOUBLE", "f32": "FLOAT", "flag": "BOOLEAN", "text": "TEXT"}
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.integers(-(2**31) - 2, 2**31 + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(width=32),
    st.text(max_size=5),
    st.sampled_from(["true", "false", "NaN", "12", "1.5", "\udc00"]),
)
TIMESTAMP = st.one_of(st.integers(-5, 40), st.sampled_from([2**63, -(2**63) - 1, 1.5, "7"]))
TYPES = st.sampled_from(list(TSDataType))


@st.composite
def row_run(draw: st.DrawFn) -> tuple[list[str], list[Any], list[list[Any]], list[TSDataType] | None]:
    """The measurements, timestamps, value lists and declared types of one run of rows."""
    # Mostly distinct names; a repeated one sends the run down the row-by-row path.
    names = draw(st.lists(st.sampled_from(sorted(SERIES)), min_size=1, max_size=4, unique=draw(st.booleans())))
    count = draw(st.integers(COLUMNAR_RUN, COLUMNAR_RUN + 20))
    timestamps = draw(st.lists(TIMESTAMP, min_size=count, max_size=count))
    values = draw(st.lists(st.lists(VALUE, min_size=len(names), max_size=len(names)), min_size=count, max_size=count))
    types = draw(st.none() | st.lists(TYPES, min_size=len(names), max_size=len(names)))
    return names, timestamps, values, types


def _open(directory: Path, partial: bool) -> Engine:
    engine = Engine.open(directory, default_settings().replace(wal_mode="DISABLE", enable_partial_insert=partial))
    for name, data_type in SERIES.items():
        engine.create_timeseries(f"{DEVICE}.{name}", data_type)
    return engine


def _key(value: Any) -> str:
    return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)


def _failures(results: list[WriteResult]) -> Counter[tuple[str, str, str, str, str]]:
    return Counter(
        (f.device, f.measurement, _key(f.timestamp), _key(f.value), f.reason) for r in results for f in r.failures
    )


def _stored(engine: Engine) -> dict[str, list[tuple[int, str]]]:
    out = {}
    for name in SERIES:
        result = engine.query(f"{DEVICE}.{name}")
        out[name] = [(t, _key(v)) for t, v in zip(result.timestamps.tolist(), result.values.tolist(), strict=True)]
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(run=row_run(), partial=st.booleans())
def test_a_run_written_at_once_equals_its_rows_written_one_by_one(
    run: tuple[list[str], list[Any], list[list[Any]], list[TSDataType] | None], partial: bool
) -> None:
    names, timestamps, values, types = run
    count = len(timestamps)
    with (
        tempfile.TemporaryDirectory() as tmp,
        _open(Path(tmp) / "at-once", partial) as at_once,
        _open(Path(tmp) / "one-by-one", partial) as single,
    ):
        batch = at_once.insert_records(
            [DEVICE] * count, timestamps, [names] * count, values, None if types is None else [types] * count
        )
        singles = [single.insert_record(DEVICE, t, names, vs, types) for t, vs in zip(timestamps, values, strict=True)]
        assert _failures([batch]) == _failures(singles)
        assert batch.points_written == sum(r.points_written for r in singles)
        assert _stored(at_once) == _stored(single)
