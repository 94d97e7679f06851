"""SIGKILL a process writing tablet-sized SYNC tablets: every acknowledged tablet survives, exactly.

Tablets of 10,000 rows take the memtable's chunk path and the WAL's header-plus-payload pwritev; a small
memtable threshold makes flushes (and so joined chunks) happen between the kills.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.storage import Engine

ROUNDS = 3
COLUMNS = [f"s{i}" for i in range(4)]

WRITER = r"""
import sys
import numpy as np
from iotdb_core.config import default_settings
from iotdb_core.storage import Engine

directory, round_no = sys.argv[1], int(sys.argv[2])
settings = default_settings().replace(wal_mode="SYNC", memtable_size_threshold=4 * 1024 * 1024)
engine = Engine.open(directory, settings)
columns = [f"s{i}" for i in range(4)]
t = round_no * 10**9
while True:
    stamps = np.arange(t, t + 10_000, dtype=np.int64)
    block = np.stack([stamps * (i + 1) / 100.0 for i in range(4)])
    assert engine.insert_tablet("root.sg.d", stamps, columns, list(block)).ok
    block[:] = -1.0  # the caller reuses its buffer once the call returned
    sys.stdout.write(f"T {t}\n")
    sys.stdout.flush()
    t += 10_000
"""


def run_and_kill(directory: Path, round_no: int, after: float) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(round_no)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first tablet is acknowledged: the engine is up
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    rest, errors = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, errors.decode()
    return [int(line.split()[1]) for line in (first + rest).decode().splitlines() if line.startswith("T ")]


@pytest.mark.slow
def test_acknowledged_tablets_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random("tablet-crash")
    directory = tmp_path / "data"
    acked: list[int] = []
    for round_no in range(1, ROUNDS + 1):
        acked.extend(run_and_kill(directory, round_no, rng.uniform(0.2, 1.0)))
        with Engine.open(directory, default_settings()) as engine:
            wanted = np.concatenate([np.arange(t, t + 10_000, dtype=np.int64) for t in acked])
            for i, name in enumerate(COLUMNS):
                got = engine.query(f"root.sg.d.{name}")
                assert bool(np.all(np.diff(got.timestamps) > 0)), f"{name}: duplicate or unordered timestamps"
                assert bool(np.all(got.values == got.timestamps * (i + 1) / 100.0)), f"{name}: wrong values"
                found = np.minimum(np.searchsorted(got.timestamps, wanted), len(got.timestamps) - 1)
                present = got.timestamps[found] == wanted
                assert bool(present.all()), f"{name}: {int((~present).sum())} acknowledged points lost"
    assert len(acked) > ROUNDS
    assert list((directory / "sequence").glob("*.tsfile")), "no flush happened before the kills"
