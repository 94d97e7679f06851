"""The dead-letter log: durable records, rotation within a budget, and `iotdb deadletter`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from iotdb_core.deadletter import DeadLetter, DeadLetterLog


def letter(index: int, payload: bytes = b'{"bad": json') -> DeadLetter:
    return DeadLetter.of(client_id=f"c{index}", username="root", topic="root/sg", qos=1,
                         reason=f"reason {index}", payload=payload)


def test_records_round_trip_including_binary_payloads(tmp_path: Path) -> None:
    log = DeadLetterLog(tmp_path, 1 << 20)
    log.append([letter(1), letter(2, b"\xff\x00\xfe")])
    kept = list(DeadLetterLog(tmp_path, 1 << 20).read())
    assert [item.client_id for item in kept] == ["c1", "c2"]
    assert kept[0].payload_bytes() == b'{"bad": json'
    assert kept[1].payload_encoding == "base64"
    assert kept[1].payload_bytes() == b"\xff\x00\xfe"
    assert kept[0].reason == "reason 1" and kept[0].topic == "root/sg" and kept[0].qos == 1


def test_log_rotates_and_stays_within_its_budget(tmp_path: Path) -> None:
    budget = 8192
    log = DeadLetterLog(tmp_path, budget)
    for index in range(400):
        log.append([letter(index, b"x" * 100)])
    files = sorted((tmp_path / "deadletter").iterdir())
    assert len(files) > 1
    assert sum(path.stat().st_size for path in files) <= budget + 1024
    kept = list(log.read())
    assert kept[-1].client_id == "c399"
    assert [int(item.client_id[1:]) for item in kept] == sorted(int(item.client_id[1:]) for item in kept)


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    log = DeadLetterLog(tmp_path, 1 << 20)
    log.append([letter(1)])
    next((tmp_path / "deadletter").iterdir()).open("a").write('{"time": "torn')
    assert [item.client_id for item in log.read()] == ["c1"]


def test_cli_shows_records(tmp_path: Path) -> None:
    DeadLetterLog(tmp_path, 1 << 20).append([letter(1), letter(2)])
    command = [sys.executable, "-m", "iotdb_core.cli.main", "deadletter", "--data-dir", str(tmp_path)]
    table = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    assert table.splitlines()[0].split() == ["TIME", "CLIENT", "TOPIC", "REASON", "PAYLOAD"]
    assert "reason 2" in table
    lines = subprocess.run([*command, "--json", "--tail", "1"], capture_output=True, text=True,
                           timeout=60, check=True).stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["client_id"] == "c2"
