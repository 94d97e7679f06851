"""Writing tree-model tablets into a TsFile from numpy buffers, through the tsfile library's C interface.

The ``tsfile`` package's ``TsFileWriter.write_tablet`` converts a tablet point by point from Python
lists (with the GIL held), which costs about as much as the encoding itself. The native library the
package ships (``libtsfile.so``) has the same writer behind a C interface (``_tsfile_writer_new``,
``_tsfile_writer_register_timeseries``, ``_tsfile_writer_write_tablet``, ``_tsfile_writer_close``) and
its ``Tablet`` copies whole columns (``Tablet::set_timestamps``, ``Tablet::set_column_values``,
``Tablet::set_column_string_values``). :class:`NativeWriter` calls them through :mod:`ctypes`, which
releases the GIL for each call, so a flush encodes on another core while Python goes on ingesting.
The file written is byte for byte the one ``TsFileWriter`` writes from the same series (a test holds
that). The column calls are C++ member functions, reached by their Itanium-ABI names with the tablet
as first argument; :func:`available` is false when the library lacks any of the symbols (another
build), and :mod:`~iotdb_core.storage.tsfile_io` then writes through the package's Python API.

Only :mod:`~iotdb_core.storage.tsfile_io` uses this module.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tsfile

__all__ = ["NativeWriter", "NativeWriterError", "available"]

#: The Python writer's default memory threshold, after which the writer flushes its chunk groups.
MEMORY_THRESHOLD = 128 * 1024 * 1024
#: The TsFile type code of TEXT, whose columns go through ``set_column_string_values``.
TEXT_CODE = 5

_SET_TIMESTAMPS = "_ZN7storage6Tablet14set_timestampsEPKlj"
_SET_COLUMN = "_ZN7storage6Tablet17set_column_valuesEjPKvPKhj"
_SET_STRINGS = "_ZN7storage6Tablet24set_column_string_valuesEjPKiPKcPKhj"


class NativeWriterError(Exception):
    """The library returned an error code; the message names the call and the code."""


class _Schema(ctypes.Structure):
    _fields_ = (
        ("timeseries_name", ctypes.c_char_p),
        ("data_type", ctypes.c_int),
        ("encoding", ctypes.c_int),
        ("compression", ctypes.c_int),
    )


class _Library:
    """The library's functions with their C signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, u32, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
        self.writer_new = self._fn(lib, "_tsfile_writer_new", vp, ctypes.c_char_p, ctypes.c_uint64,
                                   ctypes.POINTER(i32))
        self.register = self._fn(lib, "_tsfile_writer_register_timeseries", i32, vp, ctypes.c_char_p,
                                 ctypes.POINTER(_Schema))
        self.tablet_new = self._fn(lib, "_tablet_new_with_target_name", vp, ctypes.c_char_p,
                                   ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(i32), i32, i32)
        self.set_timestamps = self._fn(lib, _SET_TIMESTAMPS, i32, vp, vp, u32)
        self.set_column = self._fn(lib, _SET_COLUMN, i32, vp, u32, vp, vp, u32)
        self.set_strings = self._fn(lib, _SET_STRINGS, i32, vp, u32, vp, vp, vp, u32)
        self.write_tablet = self._fn(lib, "_tsfile_writer_write_tablet", i32, vp, vp)
        self.free_tablet = self._fn(lib, "free_tablet", None, ctypes.POINTER(vp))
        self.close = self._fn(lib, "_tsfile_writer_close", i32, vp)

    @staticmethod
    def _fn(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
        function = getattr(lib, name)  # AttributeError when this build lacks it
        function.restype = restype
        function.argtypes = argtypes
        return function


@functools.cache
def _library() -> _Library | None:
    path = os.path.join(os.path.dirname(tsfile.__file__), "libtsfile.so")
    try:
        return _Library(ctypes.CDLL(path))
    except (OSError, AttributeError):
        return None


def available() -> bool:
    """Whether the library offers everything :class:`NativeWriter` calls."""
    return _library() is not None


def _check(code: int, call: str) -> None:
    if code != 0:
        raise NativeWriterError(f"{call} failed with error code {code}")


class NativeWriter:
    """One TsFile being written: register series, write tablets, close (always, also after an error)."""

    def __init__(self, path: str) -> None:
        lib = _library()
        if lib is None:
            raise NativeWriterError("the tsfile library lacks the bulk tablet interface")
        self._lib = lib
        error = ctypes.c_int(0)
        handle = lib.writer_new(os.fsencode(path), MEMORY_THRESHOLD, ctypes.byref(error))
        if not handle or error.value:
            raise NativeWriterError(f"creating the writer failed with error code {error.value}")
        self._handle: int | None = handle

    def register(self, device: str, measurement: str, data_type: int, encoding: int, compressor: int) -> None:
        schema = _Schema(measurement.encode(), data_type, encoding, compressor)
        _check(self._lib.register(self._live(), device.encode(), ctypes.byref(schema)), "register_timeseries")

    def write(
        self, device: str, names: Sequence[str], types: Sequence[int], timestamps: np.ndarray,
        columns: Sequence[np.ndarray | Sequence[str]],
    ) -> None:
        """Write one tablet: ``timestamps`` (int64) and one column per name, of the named TsFile type code.

        Numeric and BOOLEAN columns are numpy arrays of the type's dtype; TEXT columns are sequences of str.
        """
        lib = self._lib
        rows = len(timestamps)
        count = len(names)
        name_array = (ctypes.c_char_p * count)(*(name.encode() for name in names))
        type_array = (ctypes.c_int * count)(*types)
        tablet = lib.tablet_new(device.encode(), name_array, type_array, count, rows)
        if not tablet:
            raise NativeWriterError("creating a tablet failed")
        try:
            stamps = np.ascontiguousarray(timestamps, dtype=np.int64)
            _check(lib.set_timestamps(tablet, stamps.ctypes.data, rows), "set_timestamps")
            for index, (code, column) in enumerate(zip(types, columns, strict=True)):
                if code == TEXT_CODE:
                    self._set_text(tablet, index, column, rows)
                else:
                    values = np.ascontiguousarray(column)
                    _check(lib.set_column(tablet, index, values.ctypes.data, None, rows), "set_column_values")
            _check(lib.write_tablet(self._live(), tablet), "write_tablet")
        finally:
            lib.free_tablet(ctypes.byref(ctypes.c_void_p(tablet)))

    def _set_text(self, tablet: int, index: int, column: Any, rows: int) -> None:
        encoded = [value.encode() for value in column]
        offsets = np.zeros(rows + 1, dtype=np.int32)
        np.cumsum([len(raw) for raw in encoded], out=offsets[1:])
        blob = b"".join(encoded)
        _check(self._lib.set_strings(tablet, index, offsets.ctypes.data, blob, None, rows), "set_column_string_values")

    def close(self) -> None:
        """Finish the file (metadata, index) and release the writer; idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _check(self._lib.close(handle), "close")

    def _live(self) -> int:
        if self._handle is None:
            raise NativeWriterError("the writer is closed")
        return self._handle
