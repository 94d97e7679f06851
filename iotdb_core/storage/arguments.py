"""Checking the arguments of the public Engine calls, so bad input gets the engine's own errors.

Each public call checks the shape of its arguments up front (a path is a string, a bound an integer, a
list a sequence) and raises :class:`InvalidArgumentError` naming the call and the argument. What the
deeper layers still find wrong about an argument (a path that does not parse, an unknown encoding) arrives
as a ValueError or TypeError; :func:`own_errors` turns those into the engine's errors too, so a caller
never sees a bare Python exception for bad input.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import numpy as np

from iotdb_core.datatypes import ValueTypeError
from iotdb_core.errors import IoTDBError
from iotdb_core.paths import PathError
from iotdb_core.storage.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidPathError,
    InvalidValueError,
)

__all__ = ["bound", "own_errors", "sequence", "text"]

P = ParamSpec("P")
R = TypeVar("R")


def own_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Re-raise ValueError, TypeError, KeyError and OverflowError of ``method`` as the engine's own errors.

    PathError and ValueTypeError keep their messages (callers such as SQL map them to their own codes);
    the others are prefixed with the call's name.
    """
    name = method.__name__

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except IoTDBError:
            raise
        except PathError as exc:
            raise InvalidPathError(str(exc)) from exc
        except ValueTypeError as exc:
            raise InvalidValueError(str(exc)) from exc
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            detail = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
            kind = InvalidArgumentTypeError if isinstance(exc, TypeError) else InvalidArgumentError
            raise kind(detail if detail.startswith(f"{name}:") else f"{name}: {detail}") from exc

    return call


def text(value: object, argument: str) -> str:
    """``value`` if it is a string, else InvalidArgumentError naming ``argument``."""
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"{argument}: expected a string, got {_shown(value)}")
    return value


def bound(value: object, argument: str, what: str = "an integer timestamp") -> int | None:
    """None or an integer (not a bool), else InvalidArgumentTypeError naming ``argument``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentTypeError(f"{argument}: expected {what} or None, got {_shown(value)}")
    return int(value)


def sequence(value: object, argument: str) -> Sequence[Any] | np.ndarray:
    """``value`` if it is a list, tuple or one-dimensional array (not a string), else InvalidArgumentError."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise InvalidArgumentTypeError(f"{argument}: expected a one-dimensional array, got {value.ndim} dimensions")
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgumentTypeError(f"{argument}: expected a list, got {_shown(value)}")
    return value


def _shown(value: object) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown[:60]}{'...' if len(shown) > 60 else ''}"
