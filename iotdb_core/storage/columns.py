"""Typed columns: the numpy dtype of each data type, type inference, and conversion of caller input.

Conversion applies :func:`iotdb_core.datatypes.coerce`'s rules, vectorised where the input allows it:
a numpy array or a list holding only the expected Python types is converted in one numpy call; anything
else falls back to coercing value by value, which also yields a reason for every rejected value.

Two settings widen the rules for TEXT series: with ``boolean_string_infer_type=TEXT`` a boolean is
stored in a TEXT series as ``"true"``/``"false"``, and with ``nan_string_infer_type=TEXT`` a NaN is
stored as ``"NaN"`` (the types those values infer to must be able to hold them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotdb_core.config import Settings
from iotdb_core.datatypes import (
    FLOAT_MAX,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    TSDataType,
    ValueTypeError,
    accepts,
    coerce,
    is_storable_text,
)

Values = np.ndarray | Sequence[Any]

NUMPY_DTYPE: dict[TSDataType, np.dtype] = {
    TSDataType.BOOLEAN: np.dtype(np.bool_),
    TSDataType.INT32: np.dtype(np.int32),
    TSDataType.INT64: np.dtype(np.int64),
    TSDataType.FLOAT: np.dtype(np.float32),
    TSDataType.DOUBLE: np.dtype(np.float64),
    TSDataType.TEXT: np.dtype(object),
}

_NONE = type(None)
_FLOATS = frozenset({float, np.float64, np.float32})
_INTS = frozenset({int, np.int64, np.int32})


@dataclass(frozen=True, slots=True)
class Conversion:
    """Policy for values whose type differs from their series' (from the settings)."""

    bool_as_text: bool
    nan_as_text: bool
    bool_type: TSDataType
    int_type: TSDataType
    float_type: TSDataType
    nan_type: TSDataType

    @classmethod
    def from_settings(cls, settings: Settings) -> Conversion:
        return cls(
            bool_as_text=settings.boolean_string_infer_type == "TEXT",
            nan_as_text=settings.nan_string_infer_type == "TEXT",
            bool_type=TSDataType.parse(settings.boolean_string_infer_type),
            int_type=TSDataType.parse(settings.integer_string_infer_type),
            float_type=TSDataType.parse(settings.floating_string_infer_type),
            nan_type=TSDataType.parse(settings.nan_string_infer_type),
        )

    def infer(self, value: object) -> TSDataType:
        """The type a new series gets from its first value. Raises ValueTypeError."""
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool):
            return self.bool_type
        if isinstance(value, int):
            return self.int_type
        if isinstance(value, float):
            return self.nan_type if math.isnan(value) else self.float_type
        if isinstance(value, str):
            return TSDataType.TEXT
        raise ValueTypeError(f"cannot store a value of type {type(value).__name__}")

    def infer_array(self, raw: Values) -> TSDataType | None:
        """The type of a new series from a column of values (its dtype, else its first value); None if empty."""
        if isinstance(raw, np.ndarray) and raw.dtype.kind in "biuf":
            kind = raw.dtype.kind
            if kind == "b":
                return self.bool_type
            if kind in "iu":
                return self.int_type
            return self.float_type
        for value in raw:
            if value is not None:
                return self.infer(value)
        return None

    def value(self, value: object, column: TSDataType, declared: TSDataType | None = None) -> Any:
        """Coerce one value into ``column``; raises ValueTypeError with the reason."""
        if isinstance(value, np.generic):
            value = value.item()
        if declared is not None and declared is not column:
            if not accepts(column, declared):
                raise ValueTypeError(f"declared type {declared.value} cannot be written to a {column.value} series")
            value = coerce(value, declared)
        if column is TSDataType.TEXT:
            if self.bool_as_text and isinstance(value, bool):
                return "true" if value else "false"
            if self.nan_as_text and isinstance(value, float) and math.isnan(value):
                return "NaN"
        return coerce(value, column)

    def column(
        self, raw: Values, column: TSDataType, declared: TSDataType | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Any, str]]]:
        """Convert a column of values into ``column``'s dtype.

        Returns ``(ok, values, failures)``: ``ok`` marks the rows that hold an accepted value, ``values``
        holds those values in row order, and ``failures`` lists ``(row, value, reason)`` for rejected
        values. ``None`` entries are absent (neither ok nor failed).
        """
        count = len(raw)
        ok: np.ndarray | None
        if declared is not None and declared is not column:
            if not accepts(column, declared):
                reason = f"declared type {declared.value} cannot be written to a {column.value} series"
                failures = [(i, v, reason) for i, v in enumerate(_as_list(raw)) if v is not None]
                return np.zeros(count, dtype=bool), empty(column), failures
            ok, values, failures = self.column(raw, declared)
            return ok, values.astype(NUMPY_DTYPE[column]), failures
        if isinstance(raw, np.ndarray) and raw.dtype.kind in "biuf":
            converted = _numeric_array(raw, column)
            if converted is not None:
                return np.ones(count, dtype=bool), converted, []
            return self._slow(raw.tolist(), column)
        seq = _as_list(raw)
        kinds = set(map(type, seq))
        ok = None
        present = seq
        if _NONE in kinds:
            kinds.discard(_NONE)
            ok = np.fromiter((v is not None for v in seq), dtype=bool, count=count)
            present = [v for v in seq if v is not None]
        converted = _fast_list(present, kinds, column)
        if converted is None:
            return self._slow(seq, column)
        return (np.ones(count, dtype=bool) if ok is None else ok), converted, []

    def _slow(self, seq: list[Any], column: TSDataType) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Any, str]]]:
        ok = np.zeros(len(seq), dtype=bool)
        out: list[Any] = []
        failures: list[tuple[int, Any, str]] = []
        for index, value in enumerate(seq):
            if value is None:
                continue
            try:
                out.append(self.value(value, column))
            except ValueTypeError as exc:
                failures.append((index, value, str(exc)))
            else:
                ok[index] = True
        return ok, to_array(out, column), failures


def _as_list(raw: Values) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, np.ndarray):
        return raw.tolist()
    return list(raw)


def _numeric_array(raw: np.ndarray, column: TSDataType) -> np.ndarray | None:
    """Vectorised conversion of a bool/int/float array, or None when some value needs a reason."""
    kind = raw.dtype.kind
    if column is TSDataType.BOOLEAN:
        return raw.astype(np.bool_) if kind == "b" else None
    if column is TSDataType.TEXT or kind == "b":
        return None
    if column is TSDataType.DOUBLE:
        return raw.astype(np.float64)
    if column is TSDataType.FLOAT:
        if kind == "f":
            bad = np.isfinite(raw) & (np.abs(raw) > FLOAT_MAX)
            return None if bad.any() else raw.astype(np.float32)
        if len(raw) and (raw.min() < INT32_MIN or raw.max() > INT32_MAX):
            return None
        return raw.astype(np.float32)
    if kind == "f":
        return None
    low, high = (INT32_MIN, INT32_MAX) if column is TSDataType.INT32 else (INT64_MIN, INT64_MAX)
    if len(raw) and (int(raw.min()) < low or int(raw.max()) > high):
        return None
    return raw.astype(NUMPY_DTYPE[column])


def _fast_list(present: list[Any], kinds: set[type], column: TSDataType) -> np.ndarray | None:
    """Vectorised conversion of a list holding only the column's natural Python types, else None."""
    try:
        if column is TSDataType.DOUBLE and kinds <= _FLOATS | _INTS:
            return np.array(present, dtype=np.float64)
        if column is TSDataType.FLOAT and kinds <= _FLOATS:
            array = np.array(present, dtype=np.float64)
            return _numeric_array(array, column)
        if column in (TSDataType.INT64, TSDataType.INT32) and kinds <= _INTS:
            return _numeric_array(np.array(present, dtype=np.int64), column)
        if column is TSDataType.BOOLEAN and kinds <= {bool, np.bool_}:
            return np.array(present, dtype=np.bool_)
        if column is TSDataType.TEXT and kinds <= {str}:
            if not all(map(is_storable_text, present)):
                return None
            return to_array(present, column)
    except (OverflowError, ValueError, TypeError):
        return None
    return None


def to_array(values: Sequence[Any] | np.ndarray, column: TSDataType) -> np.ndarray:
    """A numpy array of ``column``'s dtype holding already-coerced values."""
    if column is TSDataType.TEXT:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.array(values, dtype=NUMPY_DTYPE[column])


def empty(column: TSDataType) -> np.ndarray:
    """An empty array of ``column``'s dtype."""
    return np.empty(0, dtype=NUMPY_DTYPE[column])


def check_timestamp(value: object) -> int:
    """Return ``value`` as an int64 timestamp or raise ValueTypeError naming it."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueTypeError(f"timestamp {value!r} is not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueTypeError(f"timestamp {value} is out of the int64 range")
    return value


def convert_timestamps(raw: Values) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Any, str]]]:
    """Convert tablet timestamps to int64: ``(ok, timestamps of every row (0 where bad), failures)``."""
    count = len(raw)
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "i":
        return np.ones(count, dtype=bool), raw.astype(np.int64, copy=False), []
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "u" and (count == 0 or int(raw.max()) <= INT64_MAX):
        return np.ones(count, dtype=bool), raw.astype(np.int64), []
    seq = _as_list(raw)
    if set(map(type, seq)) <= {int}:
        try:
            return np.ones(count, dtype=bool), np.array(seq, dtype=np.int64), []
        except OverflowError:
            pass
    ok = np.zeros(count, dtype=bool)
    out = np.zeros(count, dtype=np.int64)
    failures: list[tuple[int, Any, str]] = []
    for index, value in enumerate(seq):
        try:
            out[index] = check_timestamp(value)
        except ValueTypeError as exc:
            failures.append((index, value, str(exc)))
        else:
            ok[index] = True
    return ok, out, failures
