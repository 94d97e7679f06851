"""SIGKILL a writing process at random moments; every acknowledged write must survive exactly once.

The writer mixes insert_record, write_rows and insert_tablet on a small memtable threshold with
compaction on, so kills land during WAL appends, flushes, manifest swaps and compactions. Each round
starts on the directory the previous kill left, so recovery itself is also interrupted. After every
round a copy of the directory is opened here and checked: every acknowledged point is present with its
value, no row is torn, no timestamp appears twice.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iotdb_core.config import default_settings
from iotdb_core.storage import Engine

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 8

WRITER = r"""
import sys
import numpy as np
from iotdb_core.config import default_settings
from iotdb_core.formatter import Row
from iotdb_core.storage import Engine

directory, mode, round_no = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = default_settings().replace(
    wal_mode=mode, memtable_size_threshold=1024 * 1024, compaction_files_per_level=2,
    wal_file_size_threshold_in_byte=1024 * 1024, wal_async_mode_fsync_delay_in_ms=50.0,
)
engine = Engine.open(directory, settings)
out = sys.stdout
base = round_no * 10**9
t = base
op = 0
while True:
    kind = op % 3
    op += 1
    if kind == 0:
        assert engine.insert_record("root.sg.rec", t, ["a", "b"], [t * 0.5, t % 1000]).ok
        out.write(f"R {t}\n")
        t += 1
    elif kind == 1:
        stamps = list(range(t, t + 5))
        rows = [Row("root.sg.rows", s, ("a", "b"), (s * 0.5, s % 1000)) for s in stamps]
        assert engine.write_rows(rows).ok
        out.write(f"W {t} 5\n")
        t += 5
    else:
        stamps = np.arange(t, t + 1000, dtype=np.int64)
        assert engine.insert_tablet("root.sg.tab", stamps, ["a", "b"], [stamps * 0.5, stamps % 1000]).ok
        out.write(f"T {t} 1000\n")
        t += 1000
    out.flush()
"""


def acknowledged(output: str) -> dict[str, list[int]]:
    acked: dict[str, list[int]] = {"rec": [], "rows": [], "tab": []}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 2 or not line.endswith(tuple("0123456789")):
            continue  # a line cut by the kill was never acknowledged
        if parts[0] == "R":
            acked["rec"].append(int(parts[1]))
        elif parts[0] == "W" and len(parts) == 3:
            acked["rows"].extend(range(int(parts[1]), int(parts[1]) + int(parts[2])))
        elif parts[0] == "T" and len(parts) == 3:
            acked["tab"].extend(range(int(parts[1]), int(parts[1]) + int(parts[2])))
    return acked


def run_and_kill(directory: Path, mode: str, round_no: int, delay: float) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), mode, str(round_no)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait until the writer is open and writing
    if not first:
        raise AssertionError(f"writer failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    rest, errors = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, errors.decode()
    return first.decode() + rest.decode()


def check(directory: Path, acked: dict[str, list[int]]) -> int:
    with Engine.open(directory, default_settings()) as engine:
        for device, stamps in acked.items():
            a = engine.query(f"root.sg.{device}.a")
            b = engine.query(f"root.sg.{device}.b")
            assert bool(np.all(np.diff(a.timestamps) > 0)), f"{device}: duplicate or unordered timestamps"
            assert a.timestamps.tolist() == b.timestamps.tolist(), f"{device}: a torn row"
            assert bool(np.all(a.values == a.timestamps * 0.5)), f"{device}: wrong values"
            assert bool(np.all(b.values == a.timestamps % 1000)), f"{device}: wrong values"
            wanted = np.array(stamps, dtype=np.int64)
            found = np.searchsorted(a.timestamps, wanted)
            present = found < len(a.timestamps)
            present[present] = a.timestamps[found[present]] == wanted[present]
            missing = wanted[~present]
            assert len(missing) == 0, f"{device}: {len(missing)} acknowledged points lost, e.g. {missing[:5]}"
        return sum(len(stamps) for stamps in acked.values())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["SYNC", "ASYNC"])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, mode: str) -> None:
    rng = random.Random(f"crash-{mode}")
    directory = tmp_path / "data"
    acked: dict[str, list[int]] = {"rec": [], "rows": [], "tab": []}
    for round_no in range(1, ROUNDS + 1):
        output = run_and_kill(directory, mode, round_no, rng.uniform(0.05, 1.2))
        for device, stamps in acknowledged(output).items():
            acked[device].extend(stamps)
        snapshot = tmp_path / f"check-{round_no}"
        shutil.copytree(directory, snapshot)
        assert check(snapshot, acked) > 0
        shutil.rmtree(snapshot)
    files = list((directory / "sequence").glob("*.tsfile"))
    assert files, "no flush happened before the kills; the test does not cover flushes"
