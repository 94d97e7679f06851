"""Query results as IoTDB REST API v2 JSON bodies (column-major), and the status bodies.

A data query (raw, aggregation, GROUP BY) answers::

    {"expressions": ["root.sg.d1.s1", ...], "column_names": null, "timestamps": [1, 2], "values": [[...], ...]}

``timestamps`` is null for an aggregation without GROUP BY (no time column). Metadata queries (SHOW, COUNT),
``SELECT LAST`` and ``ALIGN BY DEVICE`` fill ``column_names`` instead of ``expressions``; SHOW and COUNT have
null ``timestamps``. ``values`` holds one list per column, ``null`` for a null; an empty result has
``"values": []``, as IoTDB's. Values are JSON numbers, booleans and strings; FLOAT values are written in their
shortest float32 form (``0.1``, not ``0.10000000149011612``); NaN and infinities, which JSON cannot hold, are
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as Jackson writes them in IoTDB).

Conversion is by whole columns through numpy (``tolist``) and the body is encoded by ``ujson``: about 0.15 s
per million points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ujson

from iotdb_core.datatypes import TSDataType
from iotdb_core.query import ast
from iotdb_core.query.result import MetadataResult, ResultSet

__all__ = ["column_to_json", "dumps", "result_body", "status_body"]

SUCCESS_STATUS = 200


def status_body(code: int, message: str) -> dict[str, Any]:
    """IoTDB's ``ExecutionStatus``: ``{"code": ..., "message": ...}``."""
    return {"code": code, "message": message}


def dumps(body: Any) -> bytes:
    """Encode a response body (``ensure_ascii`` off: UTF-8 text stays readable).

    Text holding a lone surrogate (JSON allows ``"\\ud800"`` in a request) is written with escapes instead.
    """
    try:
        return ujson.dumps(body, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8")
    except UnicodeEncodeError:
        return ujson.dumps(body, ensure_ascii=True, escape_forward_slashes=False).encode("ascii")


def _non_finite(values: np.ndarray) -> list[Any]:
    """A floating column with NaN/±inf as the strings Jackson writes."""
    out = values.astype(object)
    out[np.isnan(values)] = "NaN"
    out[np.isposinf(values)] = "Infinity"
    out[np.isneginf(values)] = "-Infinity"
    return out.tolist()


def column_to_json(values: np.ndarray, nulls: np.ndarray | None, data_type: TSDataType | None) -> list[Any]:
    """One result column as JSON-ready Python values (None for nulls)."""
    size = len(values)
    if data_type is None:
        return [None] * size
    if data_type is TSDataType.FLOAT and size:
        # shortest decimal that reads back as the same float32, as a Python float
        values = values.astype(str).astype(np.float64)
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE) and size:
        finite = np.isfinite(values)
        if nulls is not None:
            finite |= nulls
        items = values.tolist() if finite.all() else _non_finite(values)
    elif values.dtype == object:
        items = [item.item() if isinstance(item, np.generic) else item for item in values.tolist()]
    else:
        items = values.tolist()
    if nulls is not None:
        for position in np.flatnonzero(nulls).tolist():
            items[position] = None
    return items


def _metadata_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def uses_column_names(statement: ast.Statement) -> bool:
    """Whether IoTDB answers ``statement`` with ``column_names`` rather than ``expressions``."""
    if isinstance(statement, ast.Select):
        return statement.last or statement.align_by_device
    return True


def result_body(
    statement: ast.Statement, result: ResultSet | MetadataResult, names_key: str = "column_names"
) -> dict[str, Any]:
    """The v2 query response for ``result`` of ``statement``; v1 names the ``column_names`` key
    ``columnNames`` (``names_key``), as ``iotdb_rest_v1.yaml``'s ``QueryDataSet`` does."""
    if isinstance(result, MetadataResult):
        rows = result.rows()
        values = [[_metadata_value(v) for v in column] for column in zip(*rows, strict=True)] if rows else []
        return {"expressions": None, names_key: list(result.columns), "timestamps": None, "values": values}
    names = list(result.columns)
    timestamps = None if result.timestamps is None else result.timestamps.tolist()
    if len(result):
        values = [
            column_to_json(column, nulls, data_type)
            for column, nulls, data_type in zip(result.values, result.nulls, result.data_types, strict=True)
        ]
    else:
        values = []
    if uses_column_names(statement):
        return {"expressions": None, names_key: names, "timestamps": timestamps, "values": values}
    return {"expressions": names, names_key: None, "timestamps": timestamps, "values": values}
