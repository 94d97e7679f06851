"""Dead-letter ids, lookup and discard (used by the console to re-ingest or drop a record), on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_core.deadletter import DeadLetter, DeadLetterChanged, DeadLetterLog


def _letter(n: int) -> DeadLetter:
    return DeadLetter.of(client_id=f"c{n}", username=None, topic=f"t/{n}", qos=1, reason="bad", payload=b"x%d" % n)


def test_ids_find_their_record_and_discard_removes_only_it(tmp_path: Path) -> None:
    log = DeadLetterLog(tmp_path, 1 << 20)
    log.append([_letter(n) for n in range(3)])
    ids = [letter_id for letter_id, _ in log.entries()]
    assert [log.get(letter_id).client_id for letter_id in ids] == ["c0", "c1", "c2"]
    assert log.discard(ids[1]).client_id == "c1"
    assert [letter.client_id for letter in log.read()] == ["c0", "c2"]
    assert log.get(ids[0]).client_id == "c0"
    with pytest.raises(DeadLetterChanged, match="no longer in the log"):
        log.discard(ids[1])
    log.append([_letter(3)])
    assert [letter.client_id for _, letter in log.entries()] == ["c0", "c2", "c3"]


def test_a_stale_id_after_a_rewrite_never_hits_another_record(tmp_path: Path) -> None:
    log = DeadLetterLog(tmp_path, 1 << 20)
    log.append([_letter(n) for n in range(3)])
    ids = [letter_id for letter_id, _ in log.entries()]
    log.discard(ids[0])
    for stale in ids[1:]:  # the later records moved up in the rewritten file
        with pytest.raises(DeadLetterChanged):
            log.get(stale)
    assert [letter.client_id for letter in log.read()] == ["c1", "c2"]


@pytest.mark.parametrize("bad", ["", "1-2", "x-0-00000000", "1-0-zzzzzzzz"])
def test_a_malformed_id_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DeadLetterChanged, match="not a dead-letter id"):
        DeadLetterLog(tmp_path, 1 << 20).get(bad)
