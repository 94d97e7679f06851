"""The authorizer's cost on the MQTT write path: rows checked per second by ``Authorizer.writable_rows``.

    python bench/authz_bench.py [--rows 200000]

Rows of 100 devices x 4 measurements, checked for: root (no check), a user holding WRITE_DATA on ``root.**``
(one pattern test per call), and a user whose grants are 100 device patterns and one ``*`` pattern (a
cached answer per series after its first check). Prints rows/s and nanoseconds per row for each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from iotdb_core.auth import UserStore
from iotdb_core.authz import Privilege
from iotdb_core.formatter import Row


def measure(store: UserStore, user: str, rows: list[Row], repeat: int = 3) -> float:
    """Best rows/s of ``repeat`` passes over ``rows``."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        for start in range(0, len(rows), 100):  # batches as the ingest threads see them
            store.authorizer.writable_rows(user, rows[start:start + 100])
        best = max(best, len(rows) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rows = [
        Row(f"root.sg.d{index % 100}", index, ("s1", "s2", "s3", "temp"), (1.0, 2.0, 3.0, 4.0))
        for index in range(args.rows)
    ]
    with tempfile.TemporaryDirectory() as directory:
        store = UserStore.open(Path(directory))
        for name in ("everywhere", "patterned"):
            store.add(name, "bench-pass")
        store.grant("user", "everywhere", [Privilege.WRITE_DATA], ["root.**"])
        store.grant("user", "patterned", [Privilege.WRITE_DATA],
                    [f"root.sg.d{index}.**" for index in range(100)] + ["root.sg.*.temp"])
        print(f"{'user':<12} {'rows/s':>12} {'ns/row':>8}")
        for user in ("root", "everywhere", "patterned"):
            rate = measure(store, user, rows)
            print(f"{user:<12} {rate:>12,.0f} {1e9 / rate:>8,.0f}")


if __name__ == "__main__":
    main()
