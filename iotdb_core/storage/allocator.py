"""Keeping freed memory in the process for reuse instead of handing it back to the kernel.

A scan returns fresh arrays of megabytes, and the ``tsfile`` library decodes every batch into new
buffers. With glibc's defaults, a block of that size is either a private ``mmap`` (above the mmap
threshold) or sits at the top of the heap, which ``free`` trims back once more than the trim threshold
is free; either way the next read of the same size gets pages the kernel must fault in and zero again.
On this machine that is about a fifth of a full scan's time. Engines with their own allocator (DuckDB
uses jemalloc) keep such memory; :func:`keep_freed_memory` makes glibc do the same: blocks up to
:data:`MMAP_THRESHOLD` come from the heap, and up to ``limit`` bytes of freed heap stay mapped.

The setting is process-wide (``mallopt``), so it only ever grows: an engine opened with a smaller limit
leaves a larger one in place. Where the C library is not glibc, nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading

__all__ = ["MMAP_THRESHOLD", "keep_freed_memory", "kept_limit"]

#: Blocks at or below this size are served from the heap, not by ``mmap``: glibc's largest dynamic
#: threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``).
MMAP_THRESHOLD = 32 * 1024 * 1024

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_lock = threading.Lock()


class _Kept:
    """The largest limit applied so far (guarded by ``_lock``)."""

    limit = 0


@functools.cache
def _mallopt() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``mallopt``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.argtypes = (ctypes.c_int, ctypes.c_int)
        function.restype = ctypes.c_int
    return function


def keep_freed_memory(limit: int) -> bool:
    """Keep up to ``limit`` bytes of freed memory in the process (0 or less: leave the allocator alone).

    Returns True when the allocator now keeps at least ``limit`` bytes, False where it cannot be tuned.
    """
    if limit <= 0:
        return True
    mallopt = _mallopt()
    if mallopt is None:
        return False
    limit = min(int(limit), 2**31 - 1)
    with _lock:
        if limit <= _Kept.limit:
            return True
        if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, limit)):
            return False
        _Kept.limit = limit
    return True


def kept_limit() -> int:
    """The freed bytes the allocator keeps as set by :func:`keep_freed_memory` (0: never set)."""
    return _Kept.limit
