"""FILL: replace nulls of a result column, vectorised.

* ``PREVIOUS`` — the nearest earlier non-null value of the column (in output order);
* ``LINEAR`` — for numeric columns, the straight line between the nearest non-null values before
  and after, by time: ``v0 + (v1 - v0) * (t - t0) / (t1 - t0)``, computed in double (integer columns
  truncate toward zero); a null with no value on one side stays null, and non-numeric columns are left
  as they are;
* a constant — where the constant fits the column's type (IoTDB's rule): a boolean fills BOOLEAN and TEXT,
  an integer fills INT32 (if in range), INT64, FLOAT, DOUBLE and TEXT, a floating-point number fills
  FLOAT, DOUBLE and TEXT, a string fills TEXT. TEXT is filled with the constant as written.

A column the method does not fit is returned unchanged, as IoTDB does, rather than failing the query.
"""

from __future__ import annotations

import numpy as np

from iotdb_core.datatypes import FLOAT_MAX, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, TSDataType
from iotdb_core.query.ast import Literal
from iotdb_core.storage.columns import NUMPY_DTYPE

_NUMERIC = frozenset({TSDataType.INT32, TSDataType.INT64, TSDataType.FLOAT, TSDataType.DOUBLE})

Column = tuple[np.ndarray, np.ndarray | None]


def fill_previous(values: np.ndarray, nulls: np.ndarray | None) -> Column:
    """Fill each null with the nearest earlier non-null value."""
    if nulls is None or not nulls.any():
        return values, nulls
    positions = np.where(nulls, -1, np.arange(len(values)))
    np.maximum.accumulate(positions, out=positions)
    known = positions >= 0
    filled = values.copy()
    filled[known] = values[positions[known]]
    still = ~known
    return filled, (still if still.any() else None)


def fill_linear(timestamps: np.ndarray, values: np.ndarray, nulls: np.ndarray | None, data_type: TSDataType) -> Column:
    """Fill nulls between two non-null values of a numeric column by linear interpolation over time."""
    if nulls is None or not nulls.any() or data_type not in _NUMERIC:
        return values, nulls
    size = len(values)
    index = np.arange(size)
    before = np.where(nulls, -1, index)
    np.maximum.accumulate(before, out=before)
    after = np.where(nulls, size, index)
    after = np.minimum.accumulate(after[::-1])[::-1]
    target = nulls & (before >= 0) & (after < size)
    if not target.any():
        return values, nulls
    b, a = before[target], after[target]
    t0 = timestamps[b].astype(np.float64)
    t1 = timestamps[a].astype(np.float64)
    v0 = values[b].astype(np.float64)
    v1 = values[a].astype(np.float64)
    span = t1 - t0
    factor = np.divide(timestamps[target].astype(np.float64) - t0, span, out=np.zeros_like(span), where=span != 0)
    interpolated = v0 + (v1 - v0) * factor  # in double, then cast to the column's type, as IoTDB does
    if data_type in (TSDataType.INT32, TSDataType.INT64):
        interpolated = np.trunc(interpolated)
    interpolated = interpolated.astype(values.dtype)
    filled = values.copy()
    filled[target] = interpolated
    still = nulls & ~target
    return filled, (still if still.any() else None)


def fill_constant(values: np.ndarray, nulls: np.ndarray | None, data_type: TSDataType, constant: Literal) -> Column:
    """Fill nulls with ``constant`` where it fits the column's type."""
    if nulls is None or not nulls.any():
        return values, nulls
    fitted = constant_for(data_type, constant)
    if fitted is None:
        return values, nulls
    filled = values.copy()
    filled[nulls] = fitted
    return filled, None


def constant_for(data_type: TSDataType, constant: Literal) -> object | None:
    """``constant`` as a value of ``data_type``, or None when it does not fit that type."""
    value = constant.value
    if value is None:
        return None
    if data_type is TSDataType.TEXT:
        return value if isinstance(value, str) else constant.text if not isinstance(value, bool) else str(value).lower()
    if isinstance(value, bool):
        return value if data_type is TSDataType.BOOLEAN else None
    if isinstance(value, str) or data_type is TSDataType.BOOLEAN:
        return None
    if isinstance(value, int):
        if data_type is TSDataType.INT32:
            return value if INT32_MIN <= value <= INT32_MAX else None
        if data_type is TSDataType.INT64:
            return value if INT64_MIN <= value <= INT64_MAX else None
    elif data_type in (TSDataType.INT32, TSDataType.INT64):
        return None
    if data_type is TSDataType.FLOAT:
        return NUMPY_DTYPE[data_type].type(value) if abs(float(value)) <= FLOAT_MAX else None
    return float(value)
