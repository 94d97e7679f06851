"""Time literals: durations, ISO-8601 date-times with and without zone, now(), arithmetic, precisions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotdb_core.query.errors import SemanticError
from iotdb_core.query.timeexpr import DateTimeText, Duration, Now, TimeContext, TimeExpr

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_durations() -> None:
    assert Duration.parse("1d2h30m").nanos == (86400 + 2 * 3600 + 30 * 60) * 10**9
    assert Duration.parse("1ms").units("ms") == 1
    assert Duration.parse("1ms").units("us") == 1000
    assert Duration.parse("1mo").units("ms") == 30 * 86_400_000
    assert Duration.parse("1y").units("ms") == 365 * 86_400_000
    assert Duration.parse("2W").units("ms") == 14 * 86_400_000
    assert Duration.parse("5ns").units("ns") == 5
    with pytest.raises(SemanticError, match="not a whole number of ms"):
        Duration.parse("1us").units("ms")
    for bad in ("", "1", "d", "1x", "1d2"):
        with pytest.raises(ValueError):
            Duration.parse(bad)


def test_datetime_forms() -> None:
    context = TimeContext("ms", UTC, 0)
    cases = {
        "2020-01-01": 1577836800000,
        "2020/01/01 00:00:01": 1577836801000,
        "2020.01.01T00:01": 1577836860000,
        "2020-01-01T00:00:00.5Z": 1577836800500,
        "2020-01-01T08:00:00+08:00": 1577836800000,
        "2020-01-01T03:00:00+0300": 1577836800000,
        "2019-12-31T19:00:00-05:00": 1577836800000,
    }
    for text, expected in cases.items():
        assert context.resolve(TimeExpr(DateTimeText.parse(text))) == expected, text


def test_zone_of_datetimes_without_offset() -> None:
    moment = TimeExpr(DateTimeText.parse("2020-01-01T08:00:00"))
    assert TimeContext("ms", SHANGHAI, 0).resolve(moment) == 1577836800000
    assert TimeContext("ms", UTC, 0).resolve(moment) == 1577865600000
    local = dt.datetime(2020, 1, 1, 8).astimezone()
    assert TimeContext("ms", None, 0).resolve(moment) == int(local.timestamp() * 1000)


def test_precisions_and_fractions() -> None:
    moment = TimeExpr(DateTimeText.parse("1970-01-01T00:00:01.123456789Z"))
    assert TimeContext("ms", UTC, 0).resolve(moment) == 1123
    assert TimeContext("us", UTC, 0).resolve(moment) == 1123456
    assert TimeContext("ns", UTC, 0).resolve(moment) == 1123456789
    with pytest.raises(ValueError):
        TimeContext("s", UTC, 0)


def test_now_and_arithmetic() -> None:
    context = TimeContext("ms", UTC, now_nanos=10**18)
    assert context.resolve(TimeExpr(Now())) == 1_000_000_000_000
    day = Duration.parse("1d")
    assert context.resolve(TimeExpr(Now(), ((-1, day),))) == 1_000_000_000_000 - 86_400_000
    assert context.resolve(TimeExpr(100, ((1, Duration.parse("1s")), (-1, Duration.parse("10ms"))))) == 1090
    assert context.resolve(-5) == -5


def test_out_of_range_times() -> None:
    context = TimeContext("ns", UTC, 0)
    with pytest.raises(SemanticError, match="out of the 64-bit"):
        context.resolve(TimeExpr(DateTimeText.parse("2500-01-01")))
    with pytest.raises(SemanticError, match="out of the 64-bit"):
        context.resolve(2**63)


def test_invalid_datetimes() -> None:
    for bad in ("2020-02-30", "2020-01-01T25:00", "2020-01-01T00:00:00+19:00", "2020-01/01", "20-01-01"):
        with pytest.raises(ValueError):
            DateTimeText.parse(bad)


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_datetimes_round_trip(moment: dt.datetime) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    context = TimeContext("us", UTC, 0)
    expected = (moment.replace(tzinfo=UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
    assert context.resolve(TimeExpr(DateTimeText.parse(text))) == expected


def test_format() -> None:
    assert TimeContext("ms", SHANGHAI, 0).format(1577836800000) == "2020-01-01T08:00:00.000+08:00"
    assert TimeContext("ns", UTC, 0).format(5) == "1970-01-01T00:00:00.000000005+00:00"
