"""WriteAheadLog on real files: framing, segments, recovery, corruption handling and group commit."""

from __future__ import annotations

import logging
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

from iotdb_core.storage.wal import (
    DEFAULT_SEGMENT_SIZE,
    PREALLOCATE_BYTES,
    WalCorruptionError,
    WalError,
    WalMode,
    WriteAheadLog,
)
from iotdb_core.testing.waiting import wait_until

HEADER = struct.Struct("<IIQ")


def replay_all(directory: Path, *, skip_corrupt: bool = False) -> list[tuple[int, bytes]]:
    return list(WriteAheadLog.replay(directory, skip_corrupt=skip_corrupt))


def segment_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.wal"))


def write_records(directory: Path, payloads: list[bytes], mode: WalMode = WalMode.SYNC) -> list[int]:
    with WriteAheadLog(directory, mode) as wal:
        return [wal.append(p) for p in payloads]


def record_offsets(payloads: list[bytes]) -> list[int]:
    offsets, pos = [], 0
    for payload in payloads:
        offsets.append(pos)
        pos += HEADER.size + len(payload)
    return offsets


def flip_byte(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1 :]


def only_segment(directory: Path) -> Path:
    nonempty = [p for p in sorted(directory.glob("*.wal")) if p.stat().st_size > 0]
    assert len(nonempty) == 1
    return nonempty[0]


def test_record_format_on_disk(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    seqs = write_records(wal_dir, [b"hello", b""])
    assert seqs == [1, 2]
    data = (wal_dir / f"{1:020d}.wal").read_bytes()
    length, crc, seq = HEADER.unpack_from(data, 0)
    assert (length, seq) == (5, 1)
    assert crc == zlib.crc32(struct.pack("<Q", 1) + b"hello")
    assert data[16:21] == b"hello"
    length, crc, seq = HEADER.unpack_from(data, 21)
    assert (length, seq, crc) == (0, 2, zlib.crc32(struct.pack("<Q", 2)))
    assert len(data) == 21 + 16


def test_append_and_replay_round_trip_in_order(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    payloads = [bytes([i % 256]) * (i * 37 % 300) for i in range(200)]
    seqs = write_records(wal_dir, payloads, WalMode.ASYNC)
    assert seqs == list(range(1, 201))
    assert replay_all(wal_dir) == list(zip(seqs, payloads, strict=True))


def test_append_many_is_one_write(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    batch = [f"point-{i}".encode() for i in range(1000)]
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        assert wal.append(b"first") == 1
        assert wal.append_many(batch) == 1001
        assert wal.append_many([]) == 1001
        stats = wal.stats()
        assert (stats.records, stats.writes) == (1001, 2)
        assert wal.append(b"last") == 1002
    assert replay_all(wal_dir) == [(1, b"first"), *zip(range(2, 1002), batch, strict=True), (1002, b"last")]


def test_reopen_continues_numbering_in_a_new_segment(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    write_records(wal_dir, [b"a", b"b", b"c"])
    assert [seq for seq, _ in replay_all(wal_dir)] == [1, 2, 3]
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        assert wal.next_seq == 4
        assert wal.append(b"d") == 4
    assert segment_files(wal_dir) == [f"{1:020d}.wal", f"{4:020d}.wal"]
    assert replay_all(wal_dir) == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]


def test_reopen_without_appends_reuses_the_empty_segment(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    write_records(wal_dir, [b"a"])
    for _ in range(3):
        WriteAheadLog(wal_dir, WalMode.SYNC).close()
    assert segment_files(wal_dir) == [f"{1:020d}.wal", f"{2:020d}.wal"]
    assert write_records(wal_dir, [b"b"]) == [2]


def test_segments_roll_when_full(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    payload = b"x" * 84  # 100 bytes framed
    with WriteAheadLog(wal_dir, WalMode.ASYNC, segment_size=350) as wal:
        seqs = [wal.append(payload) for _ in range(10)]
        assert wal.append_many([payload] * 5) == 15
    names = segment_files(wal_dir)
    assert names == [f"{first:020d}.wal" for first in (1, 4, 7, 10, 11)]
    sizes = [(wal_dir / name).stat().st_size for name in names]
    assert sizes == [300, 300, 300, 100, 500]
    assert replay_all(wal_dir) == [(seq, payload) for seq in [*seqs, 11, 12, 13, 14, 15]]


def test_roll_and_release_delete_the_right_segments(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        for i in range(3):
            wal.append(b"a%d" % i)
        assert wal.roll() == 4
        assert wal.roll() == 4
        wal.append(b"b0")
        wal.append(b"b1")
        assert wal.roll() == 6
        wal.append(b"c0")
        assert segment_files(wal_dir) == [f"{n:020d}.wal" for n in (1, 4, 6)]

        assert wal.release(3) == 0
        assert wal.release(4) == 1
        assert segment_files(wal_dir) == [f"{n:020d}.wal" for n in (4, 6)]
        assert wal.release(5) == 0
        assert wal.release(6) == 1
        assert wal.release(1000) == 0
        assert segment_files(wal_dir) == [f"{6:020d}.wal"]
        wal.append(b"c1")
    assert replay_all(wal_dir) == [(6, b"c0"), (7, b"c1")]


def test_numbering_survives_releasing_everything(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        wal.append_many([b"x"] * 10)
        assert wal.roll() == 11
        assert wal.release(11) == 1
    assert replay_all(wal_dir) == []
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        assert wal.append(b"y") == 11


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_torn_tail_at_every_offset_is_truncated_and_logged(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    payloads = [b"first record", b"second", b"the last record, torn"]
    source = tmp_path / "source"
    write_records(source, payloads)
    data = only_segment(source).read_bytes()
    start = record_offsets(payloads)[-1]
    name = f"{1:020d}.wal"
    cuts = range(start + 1, len(data)) if damage == "truncate" else range(start, len(data))
    for cut in cuts:
        wal_dir = tmp_path / f"{damage}-{cut}"
        wal_dir.mkdir()
        damaged = data[:cut] if damage == "truncate" else flip_byte(data, cut)
        (wal_dir / name).write_bytes(damaged)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="iotdb.wal"):
            assert replay_all(wal_dir) == [(1, payloads[0]), (2, payloads[1])]
        warnings = [r for r in caplog.records if r.name == "iotdb.wal"]
        assert len(warnings) == 1, cut
        message = warnings[0].getMessage()
        assert name in message
        assert f"{len(damaged) - start} bytes" in message
        assert (wal_dir / name).stat().st_size == start
        with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
            assert wal.append(b"after recovery") == 3
        assert replay_all(wal_dir) == [(1, payloads[0]), (2, payloads[1]), (3, b"after recovery")]


def test_opening_truncates_a_torn_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal_dir = tmp_path / "wal"
    write_records(wal_dir, [b"kept", b"torn"])
    segment = only_segment(wal_dir)
    segment.write_bytes(segment.read_bytes()[:-2])
    with caplog.at_level(logging.WARNING, logger="iotdb.wal"), WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        assert wal.append(b"new") == 2
        assert replay_all(wal_dir) == [(1, b"kept"), (2, b"new")]
    assert len([r for r in caplog.records if r.name == "iotdb.wal"]) == 1
    assert "18 bytes" in caplog.records[0].getMessage()


@pytest.mark.parametrize("mode", [WalMode.SYNC, WalMode.ASYNC])
def test_the_segment_being_written_is_allocated_ahead_and_cut_to_its_records_on_close(
    tmp_path: Path, mode: WalMode
) -> None:
    wal_dir = tmp_path / "wal"
    payloads = [b"r%d" % i for i in range(100)]
    with WriteAheadLog(wal_dir, mode) as wal:
        for payload in payloads:
            wal.append(payload)
        segment = only_segment(wal_dir)
        records_size = sum(map(len, payloads)) + 100 * HEADER.size
        assert segment.stat().st_size > PREALLOCATE_BYTES > records_size
    assert segment.stat().st_size == records_size
    assert replay_all(wal_dir) == list(enumerate(payloads, start=1))


def test_a_crash_copy_with_allocated_space_replays_everything_and_logs_no_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    payloads = [bytes([i]) * i for i in range(1, 200)]
    with WriteAheadLog(live, WalMode.SYNC) as wal:
        for payload in payloads:
            wal.append(payload)
        shutil.copytree(live, crashed)  # as a SIGKILL leaves it: records, then zero bytes allocated ahead
    records_size = sum(map(len, payloads)) + len(payloads) * HEADER.size
    segment = only_segment(crashed)
    assert segment.stat().st_size > records_size
    with caplog.at_level(logging.INFO, logger="iotdb.wal"):
        assert replay_all(crashed) == list(enumerate(payloads, start=1))
        with WriteAheadLog(crashed, WalMode.SYNC) as wal:
            assert wal.append(b"after") == len(payloads) + 1
    assert not [r for r in caplog.records if r.name == "iotdb.wal"]
    assert segment.stat().st_size == records_size
    assert replay_all(crashed)[-1] == (len(payloads) + 1, b"after")


def test_a_torn_record_before_allocated_space_is_dropped_with_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with WriteAheadLog(live, WalMode.SYNC) as wal:
        wal.append(b"kept")
        wal.append(b"torn record")
        shutil.copytree(live, crashed)
    segment = only_segment(crashed)
    data = bytearray(segment.read_bytes())
    torn_at = HEADER.size + len(b"kept")
    data[torn_at + HEADER.size + 3] ^= 0xFF  # damage the second record's payload
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="iotdb.wal"), WriteAheadLog(crashed, WalMode.SYNC) as wal:
        assert wal.append(b"new") == 2
    [warning] = [r.getMessage() for r in caplog.records if r.name == "iotdb.wal"]
    assert f"torn tail of {len(data) - torn_at} bytes at byte offset {torn_at}" in warning
    assert segment.stat().st_size == torn_at
    assert replay_all(crashed) == [(1, b"kept"), (2, b"new")]


def test_mid_log_corruption_names_segment_and_offset(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    payloads = [b"one", b"two", b"three", b"four"]
    write_records(wal_dir, payloads)
    segment = only_segment(wal_dir)
    data = bytearray(segment.read_bytes())
    offset = record_offsets(payloads)[1]
    data[offset + HEADER.size + 1] ^= 0xFF
    segment.write_bytes(bytes(data))

    with pytest.raises(WalCorruptionError) as caught:
        replay_all(wal_dir)
    message = str(caught.value)
    assert segment.name in message
    assert f"byte offset {offset}" in message
    assert "wal_skip_corrupt_records=true" in message
    assert (caught.value.path, caught.value.offset, caught.value.size) == (segment, offset, 19)

    WriteAheadLog(wal_dir, WalMode.SYNC).close()
    assert segment.read_bytes() == bytes(data)
    with pytest.raises(WalCorruptionError):
        replay_all(wal_dir)


def test_skip_corrupt_resumes_at_the_next_valid_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal_dir = tmp_path / "wal"
    payloads = [b"one", b"two", b"three", b"four", b"five"]
    write_records(wal_dir, payloads)
    segment = only_segment(wal_dir)
    data = bytearray(segment.read_bytes())
    offsets = record_offsets(payloads)
    data[offsets[1] + 5] ^= 0x01
    data[offsets[2] + 9] ^= 0x01
    segment.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="iotdb.wal"):
        assert replay_all(wal_dir, skip_corrupt=True) == [(1, b"one"), (4, b"four"), (5, b"five")]
    messages = [r.getMessage() for r in caplog.records if r.name == "iotdb.wal"]
    assert len(messages) == 1
    assert segment.name in messages[0]
    assert f"byte offset {offsets[1]}" in messages[0]
    assert f"{offsets[3] - offsets[1]} corrupt bytes" in messages[0]
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        assert wal.append(b"six") == 6


def test_damage_in_a_non_last_segment_is_corruption(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.SYNC) as wal:
        wal.append_many([b"a", b"b", b"c"])
        wal.roll()
        wal.append_many([b"d", b"e"])
    first = wal_dir / f"{1:020d}.wal"
    first.write_bytes(first.read_bytes()[:-1])

    with pytest.raises(WalCorruptionError) as caught:
        replay_all(wal_dir)
    assert first.name in str(caught.value)
    assert f"byte offset {2 * 17}" in str(caught.value)
    assert replay_all(wal_dir, skip_corrupt=True) == [(1, b"a"), (2, b"b"), (4, b"d"), (5, b"e")]


@pytest.mark.parametrize("segment_size", [DEFAULT_SEGMENT_SIZE, 2048])
def test_group_commit_gives_every_writer_distinct_increasing_seqs(tmp_path: Path, segment_size: int) -> None:
    wal_dir = tmp_path / "wal"
    threads, per_thread = 8, 150
    results: dict[int, list[tuple[int, bytes]]] = {}
    with WriteAheadLog(wal_dir, WalMode.SYNC, segment_size=segment_size) as wal:

        def writer(index: int) -> None:
            mine = []
            for i in range(per_thread):
                payload = f"t{index}-{i}".encode()
                mine.append((wal.append(payload), payload))
            results[index] = mine

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stats = wal.stats()

    total = threads * per_thread
    for mine in results.values():
        seqs = [seq for seq, _ in mine]
        assert seqs == sorted(seqs)
    expected = sorted(item for mine in results.values() for item in mine)
    assert [seq for seq, _ in expected] == list(range(1, total + 1))
    assert replay_all(wal_dir) == expected
    assert stats.records == total
    assert stats.fsyncs < total


def test_lone_writer_does_not_wait_for_company(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.SYNC, sync_delay_ms=100) as wal:
        started = time.monotonic()
        for i in range(50):
            wal.append(b"%d" % i)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0


def test_async_mode_fsyncs_in_the_background(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path / "wal", WalMode.ASYNC, async_delay_ms=10) as wal:
        wal.append(b"x")
        assert wait_until(lambda: wal.stats().fsyncs >= 1, 5, interval=0.005)


def test_disable_mode_numbers_records_but_writes_nothing(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.DISABLE) as wal:
        assert wal.append(b"a") == 1
        assert wal.append_many([b"b", b"c"]) == 3
        assert wal.roll() == 4
    assert segment_files(wal_dir) == []
    assert replay_all(wal_dir) == []


def test_one_open_log_per_directory(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, WalMode.SYNC), pytest.raises(WalError, match="in use"):
        WriteAheadLog(wal_dir, WalMode.SYNC)
    WriteAheadLog(wal_dir, WalMode.SYNC).close()


def test_closed_log_rejects_writes_and_close_is_idempotent(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal", WalMode.ASYNC)
    wal.append(b"x")
    wal.close()
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append(b"y")
    with pytest.raises(WalError, match="closed"):
        wal.append_many([b"y"])
    assert replay_all(tmp_path / "wal") == [(1, b"x")]


def test_replay_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert replay_all(tmp_path / "nowhere") == []


@pytest.mark.parametrize("mode", [WalMode.SYNC, WalMode.ASYNC])
def test_deferred_appends_are_durable_after_wait_and_kept_by_roll_and_close(tmp_path: Path, mode: WalMode) -> None:
    wal_dir = tmp_path / "wal"
    with WriteAheadLog(wal_dir, mode) as wal:
        tickets = [wal.append_deferred(b"a%d" % i) for i in range(3)]
        wal.wait_durable(tickets[-1])
        assert replay_all(wal_dir) == [(1, b"a0"), (2, b"a1"), (3, b"a2")]
        wal.append_deferred(b"b0")
        assert wal.roll() == 5  # the record not waited for goes into the segment being closed
        wal.append_deferred(b"c0")  # and this one is made durable by close
    assert segment_files(wal_dir) == [f"{1:020d}.wal", f"{5:020d}.wal"]
    assert replay_all(wal_dir) == [(1, b"a0"), (2, b"a1"), (3, b"a2"), (4, b"b0"), (5, b"c0")]
