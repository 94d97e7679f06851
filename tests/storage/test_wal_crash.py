"""Records acknowledged by a process killed with SIGKILL are replayed after a restart."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iotdb_core.storage.wal import WalMode, WriteAheadLog
from iotdb_core.testing.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5

WRITER = """
import sys
from pathlib import Path
from iotdb_core.storage.wal import WalMode, WriteAheadLog

directory, mode, round_no = Path(sys.argv[1]), WalMode[sys.argv[2]], sys.argv[3]
for _ in WriteAheadLog.replay(directory):
    pass
wal = WriteAheadLog(directory, mode, segment_size=64 * 1024)
i = 0
while True:
    if i % 10 == 9:
        last = wal.append_many([f"{round_no}:{j}:".encode() * (1 + j % 7) for j in range(i, i + 3)])
        for k in range(3):
            print(last - 2 + k, round_no, i + k, flush=True)
        i += 3
    else:
        seq = wal.append(f"{round_no}:{i}:".encode() * (1 + i % 7))
        print(seq, round_no, i, flush=True)
        i += 1
"""


def expected_payload(round_no: str, i: int) -> bytes:
    return f"{round_no}:{i}:".encode() * (1 + i % 7)


def run_and_kill(wal_dir: Path, mode: WalMode, round_no: int, out_path: Path, delay: float) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(wal_dir), mode.name, str(round_no)],
            stdout=out,
            cwd=ROOT,
            env=env,
        )
    try:
        started = wait_until(lambda: proc.poll() is not None or out_path.stat().st_size > 0, 10, interval=0.01)
        assert proc.poll() is None, "writer exited early"
        assert started, "writer did not start"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    text = out_path.read_text()
    return text.splitlines()[:-1] if not text.endswith("\n") else text.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [WalMode.ASYNC, WalMode.SYNC])
def test_acknowledged_records_survive_sigkill(tmp_path: Path, mode: WalMode) -> None:
    wal_dir = tmp_path / "wal"
    rng = random.Random(f"wal-kill-{mode.name}")
    acknowledged: dict[int, bytes] = {}
    for round_no in range(ROUNDS):
        lines = run_and_kill(wal_dir, mode, round_no, tmp_path / f"out-{round_no}.txt", rng.uniform(0.05, 0.6))
        for line in lines:
            seq, rnd, i = line.split()
            acknowledged[int(seq)] = expected_payload(rnd, int(i))
        replayed = dict(WriteAheadLog.replay(wal_dir))
        missing = [seq for seq in acknowledged if replayed.get(seq) != acknowledged[seq]]
        assert not missing, f"round {round_no}: {len(missing)} acknowledged records lost, first {missing[:5]}"
    assert len(acknowledged) > ROUNDS
