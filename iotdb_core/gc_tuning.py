"""Python's cyclic garbage collector tuned for a long-running server.

A server process starts with a few hundred thousand objects that live until it stops (modules, the SQL
grammar, the schema, the plugins), and every PUBLISH it takes allocates containers (packets, rows, batches),
so the youngest generation fills every few hundred messages and a full collection, which traverses every
tracked object, follows every hundred young ones. Measured on an upstream-ingesting node
(``bench/scaleout_bench.py --part cpu``), the collector took about 40 % of the node's CPU samples.

:func:`tune_for_serving`, called once the services are started, moves every object alive then into the
permanent generation (:func:`gc.freeze`: never traversed again) and collects less often
(:data:`SERVING_THRESHOLDS`); cycles are still found, within at most 10,000 allocations for young ones.
"""

from __future__ import annotations

import gc

__all__ = ["SERVING_THRESHOLDS", "full_collections", "tune_for_serving"]

#: Allocations less deallocations between young collections (CPython's default 700), young collections
#: per middle one (10) and middle ones per full one (10).
SERVING_THRESHOLDS = (10_000, 50, 1_000)


def tune_for_serving() -> None:
    """Collect once, freeze what survives, and apply :data:`SERVING_THRESHOLDS` (process-wide)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)


def full_collections() -> int:
    """Collections of the oldest generation since the process started."""
    return int(gc.get_stats()[-1]["collections"])
