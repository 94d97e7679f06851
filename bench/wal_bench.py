"""Throughput of the write-ahead log on this machine's disk.

Run from the project root: ``python -m bench.wal_bench [--dir DIR] [--seconds S]``. The log is written
under DIR (default: a temporary directory in the current directory, so on the same file system as a data
directory there; /tmp may be a tmpfs, where fsync costs nothing) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

from iotdb_core.storage.wal import WalMode, WriteAheadLog

PAYLOAD = b"p" * 100


def sync_threads(directory: Path, seconds: float, threads: int, sync_delay_ms: float) -> None:
    counts = [0] * threads
    with WriteAheadLog(directory, WalMode.SYNC, sync_delay_ms=sync_delay_ms) as wal:
        stop = time.perf_counter() + seconds

        def writer(index: int) -> None:
            append = wal.append
            n = 0
            while time.perf_counter() < stop:
                append(PAYLOAD)
                n += 1
            counts[index] = n

        started = time.perf_counter()
        workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        stats = wal.stats()
    print(
        f"SYNC, {threads} threads x append(100 B), sync_delay_ms={sync_delay_ms:g}: "
        f"{stats.records / elapsed:,.0f} records/s, {stats.records / max(stats.fsyncs, 1):.2f} records/fsync "
        f"({stats.fsyncs:,} fsyncs in {elapsed:.1f} s)"
    )


def sync_batches(directory: Path, seconds: float) -> None:
    batch = [PAYLOAD] * 1000
    with WriteAheadLog(directory, WalMode.SYNC) as wal:
        started = time.perf_counter()
        stop = started + seconds
        while time.perf_counter() < stop:
            wal.append_many(batch)
        elapsed = time.perf_counter() - started
        stats = wal.stats()
    payload_mb = stats.records * len(PAYLOAD) / 1e6
    print(
        f"SYNC, 1 thread x append_many(1000 x 100 B): {payload_mb / elapsed:.1f} MB/s of payload "
        f"({stats.bytes_written / 1e6 / elapsed:.1f} MB/s framed), {stats.writes / elapsed:,.0f} batches/s, "
        f"{stats.writes / max(stats.fsyncs, 1):.2f} writes/fsync"
    )


def cpu_cost(directory: Path, mode: WalMode, records: int) -> None:
    with WriteAheadLog(directory, mode, async_delay_ms=1000) as wal:
        append = wal.append
        started = time.perf_counter()
        for _ in range(records):
            append(PAYLOAD)
        single = (time.perf_counter() - started) / records
        batch = [PAYLOAD] * 1000
        started = time.perf_counter()
        for _ in range(records // 1000):
            wal.append_many(batch)
        batched = (time.perf_counter() - started) / records
    print(
        f"{mode.name}, 1 thread, no fsync wait: append {single * 1e6:.2f} us/record, "
        f"append_many {batched * 1e6:.2f} us/record"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="directory to create the log in")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each SYNC measurement")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wal-bench-", dir=args.dir))
    try:
        sync_threads(root / "threads", args.seconds, threads=4, sync_delay_ms=1.0)
        sync_threads(root / "threads-no-delay", args.seconds, threads=4, sync_delay_ms=0.0)
        sync_batches(root / "batches", args.seconds)
        cpu_cost(root / "async", WalMode.ASYNC, 200_000)
        cpu_cost(root / "disable", WalMode.DISABLE, 200_000)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
