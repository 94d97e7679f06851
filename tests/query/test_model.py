"""SELECT results against the pure-Python model (tests/query/model.py) on hypothesis-generated data.

Each example writes random typed series into a real Engine in a temporary directory (sometimes across a
flush, with later points overwriting earlier ones), runs generated SQL through ``execute`` and compares
every row with the model's answer.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.query import execute

from . import model
from .model import NUMERIC, Series
from .strategies import MAX_TIME, datasets, fill_sql, fills, loaded, paging_sql, predicates

EXAMPLES = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
FUNCTIONS_ANY = ("COUNT", "FIRST_VALUE", "LAST_VALUE", "MIN_TIME", "MAX_TIME")
FUNCTIONS_NUMERIC = ("SUM", "AVG", "MIN_VALUE", "MAX_VALUE", "EXTREME")


def paging(draw: st.DataObject) -> tuple[int, int | None]:
    offset = draw.draw(st.sampled_from([0, 0, 0, 1, 2, 5]), label="offset")
    limit = draw.draw(st.sampled_from([None, None, 0, 1, 3, 10]), label="limit")
    return offset, limit


@EXAMPLES
@given(data=st.data())
def test_raw_select_matches_model(data: st.DataObject) -> None:
    dataset = data.draw(datasets())
    (device, series), = dataset.devices.items()
    with loaded(dataset) as engine:
        for _ in range(3):
            star = data.draw(st.booleans(), label="star")
            if star:
                chosen: list[Series] = sorted(series, key=lambda s: s.measurement)
                select = "*"
            else:
                pick = st.lists(st.sampled_from(series), min_size=1, max_size=4, unique_by=lambda s: s.measurement)
                chosen = data.draw(pick)
                select = ", ".join(s.measurement for s in chosen)
            predicate = data.draw(st.none() | predicates(series), label="where")
            fill = data.draw(fills(), label="fill")
            desc = data.draw(st.booleans(), label="desc")
            offset, limit = paging(data)
            soffset = data.draw(st.sampled_from([0, 0, 1]), label="soffset")
            slimit = data.draw(st.sampled_from([None, None, 1, 2]), label="slimit")
            sql = f"SELECT {select} FROM {device}"
            if predicate is not None:
                sql += f" WHERE {model.to_sql(predicate)}"
            sql += fill_sql(fill)
            if desc:
                sql += " ORDER BY TIME DESC"
            sql += paging_sql(offset, limit)
            if slimit is not None:
                sql += f" SLIMIT {slimit}"
            if soffset:
                sql += f" SOFFSET {soffset}"
            result = execute(engine, sql)
            shown = chosen[soffset : None if slimit is None else soffset + slimit]
            expected = model.raw_query(shown, predicate, fill, desc, offset, limit, context=series)
            if shown:
                assert result.header == ["Time"] + [f"{device}.{s.measurement}" for s in shown], sql
            assert model.same_rows(result.rows(), expected), (sql, result.rows(), expected)


def aggregate_items(data: st.DataObject, series: list[Series]) -> list[tuple[str, Series]]:
    items = []
    for _ in range(data.draw(st.integers(1, 4), label="items")):
        chosen = data.draw(st.sampled_from(series))
        functions = FUNCTIONS_ANY + (FUNCTIONS_NUMERIC if chosen.data_type in NUMERIC else ())
        items.append((data.draw(st.sampled_from(functions)), chosen))
    return items


def group_bys(data: st.DataObject) -> tuple[int, int, int, int | None] | None:
    if not data.draw(st.booleans(), label="group by"):
        return None
    start = data.draw(st.integers(-5, MAX_TIME), label="start")
    end = start + data.draw(st.integers(1, 80), label="span")
    interval = data.draw(st.integers(1, 25), label="interval")
    step = data.draw(st.none() | st.integers(1, 25), label="step")
    return start, end, interval, step


@EXAMPLES
@given(data=st.data())
def test_aggregates_match_model(data: st.DataObject) -> None:
    dataset = data.draw(datasets())
    (device, series), = dataset.devices.items()
    tolerance = 1e-9 * (dataset.abs_total() + 1.0)
    with loaded(dataset) as engine:
        for _ in range(3):
            items = aggregate_items(data, series)
            group_by = group_bys(data)
            predicate = data.draw(st.none() | predicates(series), label="where")
            fill = data.draw(fills(), label="fill") if group_by is not None else None
            desc = data.draw(st.booleans(), label="desc")
            offset, limit = paging(data) if group_by is not None else (0, None)
            select = ", ".join(f"{function}({s.measurement})" for function, s in items)
            sql = f"SELECT {select} FROM {device}"
            if predicate is not None:
                sql += f" WHERE {model.to_sql(predicate)}"
            if group_by is not None:
                start, end, interval, step = group_by
                sql += f" GROUP BY ([{start}, {end}), {interval}ms" + (f", {step}ms)" if step else ")")
            sql += fill_sql(fill)
            if desc:
                sql += " ORDER BY TIME DESC"
            sql += paging_sql(offset, limit)
            result = execute(engine, sql)
            expected = model.aggregate_query(items, predicate, group_by, fill, desc, offset, limit, context=series)
            names = [f"{function.lower()}({device}.{s.measurement})" for function, s in items]
            assert result.header == (["Time"] if group_by else []) + names, sql
            assert model.same_rows(result.rows(), expected, tolerance), (sql, result.rows(), expected)


@EXAMPLES
@given(data=st.data())
def test_align_by_device_matches_model(data: st.DataObject) -> None:
    dataset = data.draw(datasets(devices=2, max_series=3))
    devices = sorted(dataset.devices)
    prefix = devices[0].rsplit(".", 1)[0]
    measurements = [s.measurement for s in dataset.devices[devices[0]]]
    with loaded(dataset) as engine:
        for _ in range(2):
            predicate = data.draw(st.none() | predicates(dataset.devices[devices[0]]), label="where")
            fill = data.draw(fills(), label="fill")
            desc = data.draw(st.booleans(), label="desc")
            offset, limit = paging(data)
            sql = f"SELECT * FROM {prefix}.*"
            if predicate is not None:
                sql += f" WHERE {model.to_sql(predicate)}"
            sql += fill_sql(fill)
            if desc:
                sql += " ORDER BY TIME DESC"
            sql += paging_sql(offset, limit)
            sql += " ALIGN BY DEVICE"
            result = execute(engine, sql)
            expected = []
            for device in devices:
                series = dataset.devices[device]
                for row in model.raw_query(series, predicate, fill, desc, 0, None, context=series):
                    expected.append((row[0], device, *row[1:]))
            expected = expected[offset : None if limit is None else offset + limit]
            assert result.header == ["Time", "Device", *measurements], sql
            assert model.same_rows(result.rows(), expected), (sql, result.rows(), expected)


@EXAMPLES
@given(data=st.data())
def test_aggregates_by_device_match_model(data: st.DataObject) -> None:
    dataset = data.draw(datasets(devices=2, max_series=3))
    devices = sorted(dataset.devices)
    prefix = devices[0].rsplit(".", 1)[0]
    tolerance = 1e-9 * (dataset.abs_total() + 1.0)
    with loaded(dataset) as engine:
        items = aggregate_items(data, dataset.devices[devices[0]])
        unique: dict[str, tuple[str, str]] = {}
        for function, s in items:
            unique.setdefault(f"{function.lower()}({s.measurement})", (function, s.measurement))
        group_by = group_bys(data)
        predicate = data.draw(st.none() | predicates(dataset.devices[devices[0]]), label="where")
        select = ", ".join(f"{function}({measurement})" for function, measurement in unique.values())
        sql = f"SELECT {select} FROM {prefix}.*"
        if predicate is not None:
            sql += f" WHERE {model.to_sql(predicate)}"
        if group_by is not None:
            start, end, interval, step = group_by
            sql += f" GROUP BY ([{start}, {end}), {interval}ms" + (f", {step}ms)" if step else ")")
        sql += " ALIGN BY DEVICE"
        result = execute(engine, sql)
        expected = []
        for device in devices:
            by_name = {s.measurement: s for s in dataset.devices[device]}
            device_items = [(function, by_name[m]) for function, m in unique.values()]
            for row in model.aggregate_query(device_items, predicate, group_by, context=dataset.devices[device]):
                expected.append((row[0], device, *row[1:]) if group_by else (device, *row))
        assert result.header == (["Time"] if group_by else []) + ["Device", *unique], sql
        assert model.same_rows(result.rows(), expected, tolerance), (sql, result.rows(), expected)


@EXAMPLES
@given(data=st.data())
def test_last_matches_model(data: st.DataObject) -> None:
    dataset = data.draw(datasets())
    (device, series), = dataset.devices.items()
    with loaded(dataset) as engine:
        for _ in range(3):
            comparisons = st.tuples(st.sampled_from([">", ">=", "<", "<="]), st.integers(-1, MAX_TIME + 1))
            bound = data.draw(st.none() | comparisons)
            desc = data.draw(st.booleans())
            sql = f"SELECT LAST * FROM {device}"
            if bound is not None:
                sql += f" WHERE time {bound[0]} {bound[1]}"
            if desc:
                sql += " ORDER BY TIME DESC"
            result = execute(engine, sql)
            expected = []
            for s in sorted(series, key=lambda s: s.measurement):
                stamps = [t for t in s.points if bound is None or model.evaluate(("time", *bound), t, {})]
                if stamps:
                    t = max(stamps)
                    expected.append((t, f"{device}.{s.measurement}", s.points[t], s.data_type))
            if desc:
                expected.sort(key=lambda row: -row[0])
            assert result.header == ["Time", "timeseries", "value", "dataType"]
            rows = result.rows()
            assert [(r[0], r[1], r[3]) for r in rows] == [(e[0], e[1], e[3]) for e in expected], sql
            for row, wanted in zip(rows, expected, strict=True):
                assert _shown(row[2], wanted[3]) == wanted[2], (row, wanted)


def _shown(text: str, data_type: str) -> object:
    if data_type == "BOOLEAN":
        return {"true": True, "false": False}[text]
    if data_type in ("INT32", "INT64"):
        return int(text)
    if data_type == "FLOAT":
        return model.as_float32(float(text))
    if data_type == "DOUBLE":
        value = float(text)
        assert not math.isnan(value)
        return value
    return text
