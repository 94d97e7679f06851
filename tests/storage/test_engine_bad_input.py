"""Bad input to the public Engine API: the engine's own errors (or failures in a WriteResult), never a bare
Python exception, and nothing valid lost.

A hypothesis sweep calls every public call with wrong types, wrong lengths, NaN/inf, huge and negative
timestamps, empty devices and measurements; the engine must answer each with a :class:`StorageError`
(``InvalidArgumentError``, ``SchemaError``...) whose message says what was wrong, or with a ``WriteResult``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.datatypes import TSDataType
from iotdb_core.storage import Engine, InvalidArgumentError, StorageError, WriteResult


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with Engine.open(tmp_path_factory.mktemp("bad-input") / "data", default_settings()) as opened:
        yield opened


def test_tablet_types_may_be_iotdb_type_names(engine: Engine) -> None:
    result = engine.insert_tablet("root.names.d", [1, 2], ["a", "b", "c"], [[1, 2], [True, False], ["x", "y"]],
                                  types=["DOUBLE", "boolean", "TEXT"])
    assert result.ok and result.points_written == 6
    assert [s.data_type for s in engine.list_series("root.names.d.*")] == [
        TSDataType.DOUBLE, TSDataType.BOOLEAN, TSDataType.TEXT
    ]
    assert engine.query("root.names.d.a").values.tolist() == [1.0, 2.0]


def test_an_unknown_type_name_names_the_argument(engine: Engine) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        engine.insert_tablet("root.names.e", [1], ["a"], [[1.0]], types=["DUBLE"])
    assert str(raised.value) == ("insert_tablet: types[0]: unknown data type 'DUBLE'; expected one of BOOLEAN, "
                                 "INT32, INT64, FLOAT, DOUBLE, TEXT")
    with pytest.raises(InvalidArgumentError, match=r"insert_tablet: types\[0\]: expected a data type"):
        engine.insert_tablet("root.names.e", [1], ["a"], [[1.0]], types=[3])
    with pytest.raises(InvalidArgumentError, match="insert_tablet: types: 2 data types for 1 measurements"):
        engine.insert_tablet("root.names.e", [1], ["a"], [[1.0]], types=["DOUBLE", "DOUBLE"])
    assert engine.list_series("root.names.e.*") == []


def test_nan_inf_and_extreme_timestamps(engine: Engine) -> None:
    result = engine.insert_tablet("root.edge.d", [-(2**63), -1, 0, 2**63 - 1], ["v"],
                                  [[math.nan, math.inf, -math.inf, 1.5]])
    assert result.ok
    values = engine.query("root.edge.d.v").values
    assert math.isnan(values[0]) and values[1:].tolist() == [math.inf, -math.inf, 1.5]
    bad = engine.insert_record("root.edge.d", 2**63, ["v"], [1.0])
    assert [f.reason for f in bad.failures] == ["timestamp 9223372036854775808 is out of the int64 range"]
    assert len(engine.query("root.edge.d.v")) == 4


# ------------------------------------------------------------------------------------- the sweep

_junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.binary(max_size=4),
    st.just(""), st.just("root"), st.just("root.sg"), st.just("root.sg.d"), st.just("root.sg.d.`a.b`"),
    st.just("root.sg.*"), st.just("root.**"), st.just([]), st.just([1, 2]), st.just({"a": 1}),
    st.just(object()), st.just(np.array([1.0, math.nan])), st.just(np.array([[1]])), st.just(TSDataType.DOUBLE),
)
_names = st.lists(st.one_of(st.just("s"), st.just(""), st.text(max_size=4), _junk), max_size=3)
_stamps = st.one_of(_junk, st.lists(st.one_of(st.integers(min_value=-(2**70), max_value=2**70), _junk), max_size=3))
_columns = st.one_of(_junk, st.lists(st.one_of(_junk, st.lists(_junk, max_size=3)), max_size=3))
_types = st.one_of(st.none(), _junk, st.lists(st.one_of(st.none(), st.sampled_from(list(TSDataType)),
                                                        st.sampled_from(["DOUBLE", "text", "nope"]), _junk),
                                              max_size=3))

CALLS: dict[str, Callable[[st.DrawFn], tuple[Any, ...]]] = {}


def call(name: str) -> Callable[[Callable[[st.DrawFn], tuple[Any, ...]]], None]:
    def register(arguments: Callable[[st.DrawFn], tuple[Any, ...]]) -> None:
        CALLS[name] = arguments
    return register


@call("insert_record")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(st.one_of(st.integers(min_value=-(2**70), max_value=2**70), _junk)), draw(_names), \
        draw(st.one_of(_junk, st.lists(_junk, max_size=3))), draw(_types)


@call("insert_records")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(st.one_of(_junk, st.lists(_junk, max_size=2))), draw(_stamps), \
        draw(st.one_of(_junk, st.lists(_names, max_size=2))), draw(st.one_of(_junk, st.lists(_columns, max_size=2))), \
        draw(st.one_of(st.none(), _junk, st.lists(_types, max_size=2)))


@call("insert_tablet")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(_stamps), draw(_names), draw(_columns), draw(_types)


@call("query")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(_junk), draw(_junk)


@call("scan")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(_junk), draw(_junk)


@call("last")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return (draw(_junk),)


@call("delete")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(_junk), draw(_junk)


@call("delete_timeseries")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return (draw(st.one_of(_junk.filter(lambda x: not (isinstance(x, str) and x in ("root.**", "root.sg.*"))))),)


@call("set_ttl")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(_junk)


@call("create_database")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return (draw(_junk),)


@call("create_timeseries")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return draw(_junk), draw(st.one_of(_junk, st.sampled_from(["DOUBLE", "INT32", "nope"]))), draw(_junk), \
        draw(_junk)


@call("list_series")
def _(draw: st.DrawFn) -> tuple[Any, ...]:
    return (draw(_junk),)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_every_public_call_answers_bad_input_with_its_own_errors(engine: Engine, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(CALLS)), label="call")
    arguments = data.draw(st.composite(CALLS[name])(), label="arguments")
    try:
        result = getattr(engine, name)(*arguments)
    except StorageError as exc:
        assert str(exc), f"{name}{arguments!r}: an error without a message"
        return
    if isinstance(result, WriteResult):
        assert all(failure.reason for failure in result.failures)
    engine.set_ttl("root.**", None)  # a TTL rule drawn above must not hide the data of the next example
