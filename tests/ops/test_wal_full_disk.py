"""The WAL on a real tmpfs that fills up: a failed write leaves only whole, fsynced records, and resume() goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_core.storage.wal import WalError, WalMode, WriteAheadLog

from .test_full_disk import fill, tmpfs  # noqa: F401 - the fixture


@pytest.mark.parametrize("mode", [WalMode.SYNC, WalMode.ASYNC])
def test_a_full_disk_leaves_whole_records_and_resume_goes_on(tmpfs: Path, mode: WalMode) -> None:  # noqa: F811
    directory = tmpfs / "wal"
    payload = b"p" * 2000
    acknowledged: list[int] = []
    with WriteAheadLog(directory, mode, segment_size=1024 * 1024) as wal:
        filler = fill(tmpfs)
        failed = 0
        for _ in range(5000):  # the segment's allocated space runs out, then the next segment cannot grow
            try:
                acknowledged.append(wal.append(payload))
            except WalError:
                failed += 1
                break
        assert failed, "the disk never filled"
        filler.unlink()
        wal.resume()
        acknowledged.extend(wal.append(payload) for _ in range(10))
    replayed = [seq for seq, data in WriteAheadLog.replay(directory) if data == payload]
    assert replayed == acknowledged  # every acknowledged record once, nothing else, no damage
