"""Newest-wins merging of time-ordered runs with numpy.

A run is a pair of arrays ``(timestamps, values)``. Runs are given oldest first; where several hold the
same timestamp the value of the newest run wins. Within one unsorted run the last occurrence wins.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

Run = tuple[np.ndarray, np.ndarray]


def _last_of_each(sorted_timestamps: np.ndarray) -> np.ndarray:
    """Mask selecting the last element of each group of equal timestamps in a sorted array."""
    keep = np.empty(len(sorted_timestamps), dtype=bool)
    if len(keep):
        np.not_equal(sorted_timestamps[1:], sorted_timestamps[:-1], out=keep[:-1])
        keep[-1] = True
    return keep


def sort_dedup(timestamps: np.ndarray, values: np.ndarray) -> Run:
    """Sort by timestamp; among equal timestamps keep the one that came last."""
    order = np.argsort(timestamps, kind="stable")
    sorted_timestamps = timestamps[order]
    keep = _last_of_each(sorted_timestamps)
    return sorted_timestamps[keep], values[order[keep]]


def merge_runs(runs: Sequence[Run]) -> Run | None:
    """Merge sorted, duplicate-free runs (oldest first) into one; None if every run is empty."""
    runs = [run for run in runs if len(run[0])]
    if not runs:
        return None
    if len(runs) == 1:
        return runs[0]
    by_start = sorted(runs, key=lambda run: int(run[0][0]))
    if all(int(a[0][-1]) < int(b[0][0]) for a, b in itertools.pairwise(by_start)):
        return np.concatenate([r[0] for r in by_start]), np.concatenate([r[1] for r in by_start])
    return sort_dedup(np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs]))
