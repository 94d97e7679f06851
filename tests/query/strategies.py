"""Hypothesis strategies for the query tests: typed series data, predicates, and loading into an Engine."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.query import execute
from iotdb_core.storage import Engine

from .model import NUMERIC, Series, as_float32, sql_literal

TYPES = ("INT32", "INT64", "FLOAT", "DOUBLE", "BOOLEAN", "TEXT")
MAX_TIME = 40
_names = itertools.count()


def values_of(data_type: str) -> st.SearchStrategy:
    """Values of a type, biased toward few distinct values so comparisons and ties happen."""
    if data_type == "INT32":
        return st.integers(-20, 20) | st.integers(-(2**31), 2**31 - 1)
    if data_type == "INT64":
        return st.integers(-20, 20) | st.integers(-(10**12), 10**12)
    if data_type == "FLOAT":
        return st.integers(-40, 40).map(lambda x: x / 4) | st.floats(
            -1e6, 1e6, allow_nan=False, allow_infinity=False, width=32
        ).map(as_float32)
    if data_type == "DOUBLE":
        return st.integers(-40, 40).map(lambda x: x / 4) | st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
    if data_type == "BOOLEAN":
        return st.booleans()
    return st.text(alphabet="ab'", max_size=3)


def constants_for(data_type: str) -> st.SearchStrategy:
    """Constants a WHERE clause may compare a series of ``data_type`` with."""
    if data_type in ("INT32", "INT64"):
        return st.integers(-25, 25) | st.integers(-50, 50).map(lambda x: x / 2)
    if data_type in ("FLOAT", "DOUBLE"):
        return st.integers(-50, 50).map(lambda x: x / 4)
    return values_of(data_type)


@dataclass
class Dataset:
    """Series of one or more devices: ``devices[name] -> [Series]``; batches written with a flush between."""

    devices: dict[str, list[Series]]
    first: dict[tuple[str, str], dict[int, object]]
    second: dict[tuple[str, str], dict[int, object]]
    flush_between: bool

    def series(self, device: str) -> list[Series]:
        return self.devices[device]

    def abs_total(self) -> float:
        total = 0.0
        for series_list in self.devices.values():
            for series in series_list:
                if series.data_type in NUMERIC:
                    total += sum(abs(float(v)) for v in series.points.values())
        return total


@st.composite
def datasets(draw: st.DrawFn, devices: int = 1, max_series: int = 4) -> Dataset:
    """Random typed series on ``devices`` devices (the same measurements and types on each)."""
    prefix = f"root.q{next(_names)}"
    count = draw(st.integers(1, max_series))
    types = [draw(st.sampled_from(TYPES)) for _ in range(count)]
    result: dict[str, list[Series]] = {}
    first: dict[tuple[str, str], dict[int, object]] = {}
    second: dict[tuple[str, str], dict[int, object]] = {}
    for number in range(devices):
        device = f"{prefix}.d{number}"
        series_list = []
        for index, data_type in enumerate(types):
            measurement = f"s{index}"
            points = draw(st.dictionaries(st.integers(0, MAX_TIME), values_of(data_type), max_size=20))
            later = draw(st.dictionaries(st.integers(0, MAX_TIME), values_of(data_type), max_size=6))
            first[(device, measurement)] = points
            second[(device, measurement)] = later
            series_list.append(Series(measurement, data_type, {**points, **later}))
        result[device] = series_list
    return Dataset(result, first, second, draw(st.booleans()))


def _write(engine: Engine, device: str, measurement: str, data_type: str, points: dict[int, object]) -> None:
    if not points:
        return
    stamps = np.array(sorted(points), dtype=np.int64)
    kind = TSDataType(data_type)
    ordered = [points[t] for t in sorted(points)]
    column = ordered if kind is TSDataType.TEXT else np.array(ordered, dtype={
        TSDataType.BOOLEAN: np.bool_, TSDataType.INT32: np.int32, TSDataType.INT64: np.int64,
        TSDataType.FLOAT: np.float32, TSDataType.DOUBLE: np.float64,
    }[kind])
    outcome = engine.insert_tablet(device, stamps, [measurement], [column], [kind])
    assert outcome.ok, outcome.failures


@contextmanager
def loaded(dataset: Dataset) -> Iterator[Engine]:
    """A fresh Engine in a temporary directory holding ``dataset`` (series created with CREATE TIMESERIES)."""
    with tempfile.TemporaryDirectory() as directory:
        engine = Engine.open(directory, default_settings().replace(wal_mode="DISABLE"))
        try:
            for device, series_list in dataset.devices.items():
                for series in series_list:
                    execute(engine, f"CREATE TIMESERIES {device}.{series.measurement} WITH DATATYPE={series.data_type}")
            for (device, measurement), points in dataset.first.items():
                kind = next(s.data_type for s in dataset.devices[device] if s.measurement == measurement)
                _write(engine, device, measurement, kind, points)
            if dataset.flush_between:
                engine.flush()
            for (device, measurement), points in dataset.second.items():
                kind = next(s.data_type for s in dataset.devices[device] if s.measurement == measurement)
                _write(engine, device, measurement, kind, points)
            yield engine
        finally:
            engine.close()


def time_leaves() -> st.SearchStrategy:
    t = st.integers(-5, MAX_TIME + 5)
    return st.one_of(
        st.tuples(st.just("time"), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), t),
        st.tuples(st.just("time_between"), t, t, st.booleans()),
        st.tuples(st.just("time_in"), st.lists(t, min_size=1, max_size=4).map(tuple), st.booleans()),
    )


def predicates(series: list[Series], value_filters: bool = True) -> st.SearchStrategy:
    """Random WHERE predicates (model tuples) over time and, optionally, the given series."""
    leaves = [time_leaves()]
    if value_filters:
        for s in series:
            constant = constants_for(s.data_type)
            leaves.append(
                st.tuples(st.just("value"), st.just(s.measurement), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
                          constant)
            )
            leaves.append(st.tuples(st.just("null"), st.just(s.measurement), st.booleans()))
            leaves.append(
                st.tuples(st.just("in"), st.just(s.measurement), st.lists(constant, min_size=1, max_size=3).map(tuple),
                          st.booleans())
            )
            leaves.append(st.tuples(st.just("between"), st.just(s.measurement), constant, constant, st.booleans()))
    return st.recursive(
        st.one_of(leaves),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), inner, inner),
            st.tuples(st.just("or"), inner, inner),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=5,
    )


def fills() -> st.SearchStrategy:
    constants = st.one_of(st.integers(-3, 3), st.just(1.5), st.just(-2.25), st.booleans(), st.just("z"))
    return st.one_of(
        st.none(), st.just("PREVIOUS"), st.just("LINEAR"), st.tuples(st.just("CONSTANT"), constants)
    )


def fill_sql(fill: object) -> str:
    if fill is None:
        return ""
    if isinstance(fill, tuple):
        return f" FILL({sql_literal(fill[1])})"
    return f" FILL({fill})"


def paging_sql(offset: int, limit: int | None) -> str:
    text = ""
    if limit is not None:
        text += f" LIMIT {limit}"
    if offset:
        text += f" OFFSET {offset}"
    return text
