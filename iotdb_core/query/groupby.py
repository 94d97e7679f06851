"""GROUP BY time windows: ``[start + k*step, min(start + k*step + interval, end))`` for each ``k`` with
``start + k*step < end``, labelled by their start; and the index range of each window in a sorted series.
"""

from __future__ import annotations

import numpy as np

from iotdb_core.query.errors import SemanticError

#: Most windows one GROUP BY may produce (each costs a few 8-byte slots per output column).
MAX_WINDOWS = 10_000_000


def window_count(start: int, end: int, step: int) -> int:
    """How many windows ``GROUP BY ([start, end), _, step)`` has."""
    return -((start - end) // step)


def make_windows(
    start: int, end: int, interval: int, step: int | None, max_windows: int = MAX_WINDOWS
) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and (exclusive) ends, int64, ascending. Raises SemanticError for a bad clause."""
    if step is None:
        step = interval
    if interval <= 0:
        raise SemanticError(f"GROUP BY: the interval must be positive, got {interval}")
    if step <= 0:
        raise SemanticError(f"GROUP BY: the sliding step must be positive, got {step}")
    if start >= end:
        raise SemanticError(f"GROUP BY: the start time {start} must be smaller than the end time {end}")
    count = window_count(start, end, step)
    if count > max_windows:
        raise SemanticError(
            f"GROUP BY ([{start}, {end}), {interval}, {step}) makes {count} windows; at most {max_windows} are allowed"
        )
    # Offsets from start fit in uint64 (they are below end - start < 2**64); the windows themselves fit in
    # int64, so wrap-around arithmetic in uint64 gives them exactly.
    unsigned_start = np.uint64(start % 2**64)
    offsets = np.arange(count, dtype=np.uint64) * np.uint64(step)
    starts_u = offsets + unsigned_start
    room = np.uint64(end % 2**64) - starts_u  # end - window start, in (0, 2**64)
    lengths = np.minimum(room, np.uint64(min(interval, 2**64 - 1)))
    starts = starts_u.view(np.int64)
    ends_u = starts_u + lengths
    return starts, ends_u.view(np.int64)


def window_bounds(timestamps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each window, the index range ``[lo, hi)`` of ``timestamps`` (sorted) that falls inside it."""
    return np.searchsorted(timestamps, starts, side="left"), np.searchsorted(timestamps, ends, side="left")
