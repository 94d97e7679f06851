"""The retained-message store: replace, delete, expiry, bounds, matching, reopen, SIGKILL and torn tails."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from iotdb_mqtt.broker.record_log import LogFailed
from iotdb_mqtt.broker.retained import LOG_NAME, RetainedMessage, RetainedStore, RetainedStoreFull
from iotdb_mqtt.broker.tree import InvalidTopicFilter

BIG = 1 << 30


def message(
    topic: str, payload: bytes = b"v", qos: int = 1, at: float | None = None, **properties: object
) -> RetainedMessage:
    return RetainedMessage(topic, payload, qos, dict(properties), time.time() if at is None else at)


def topics(messages: list[RetainedMessage]) -> set[str]:
    return {m.topic for m in messages}


@pytest.fixture
def store(tmp_path: Path) -> RetainedStore:
    opened = RetainedStore.open(tmp_path / "retained", max_count=1000, max_bytes=BIG)
    yield opened  # type: ignore[misc]
    opened.close()


def test_put_replace_delete(store: RetainedStore) -> None:
    store.put(message("a/b", b"1"))
    store.put(message("a/b", b"2", qos=2))
    assert len(store) == 1
    [kept] = store.matching("a/b")
    assert (kept.payload, kept.qos) == (b"2", 2)
    store.put(message("a/b", b""))
    assert len(store) == 0 and store.total_bytes == 0
    assert store.matching("#") == []
    store.put(message("never/retained", b""))  # deleting what is not there is a no-op
    assert len(store) == 0


def test_properties_round_trip_through_reopen(tmp_path: Path) -> None:
    properties = {
        "payload_format_indicator": 1,
        "content_type": "application/json",
        "response_topic": "reply/here",
        "correlation_data": b"\x00\x01",
        "user_properties": [("k", "v"), ("k", "w")],
        "message_expiry_interval": 3600,
    }
    now = time.time()
    stored = RetainedMessage("dev/1/state", b"{}", 1, properties, now)
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    store.put(stored)
    store.close()
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    assert store.matching("dev/+/state", now=now + 1) == [stored]
    store.close()


def test_invalid_messages_are_refused_and_change_nothing(store: RetainedStore) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        store.put(message("a/+"))
    with pytest.raises(ValueError, match="empty"):
        store.put(message(""))
    with pytest.raises(ValueError, match="QoS 3"):
        store.put(message("a", qos=3))
    with pytest.raises(ValueError, match="topic_alias"):
        store.put(message("a", topic_alias=3))
    with pytest.raises(ValueError, match="Payload Format Indicator"):
        store.put(message("a", payload_format_indicator=7))
    assert len(store) == 0


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("#", {"a", "a/b", "a/b/c", "a//c", "x/b"}),
        ("a/#", {"a", "a/b", "a/b/c", "a//c"}),
        ("a/+", {"a/b"}),
        ("a/+/c", {"a/b/c", "a//c"}),
        ("+/b", {"a/b", "x/b"}),
        ("+", {"a"}),
        ("a/b/c", {"a/b/c"}),
        ("a/b/c/#", {"a/b/c"}),
        ("nothing/#", set()),
        ("$SYS/#", {"$SYS/uptime"}),
        ("+/uptime", set()),
        ("$share/g/#", set()),
    ],
)
def test_matching_filters(store: RetainedStore, topic_filter: str, expected: set[str]) -> None:
    for topic in ("a", "a/b", "a/b/c", "a//c", "x/b", "$SYS/uptime"):
        store.put(message(topic))
    assert topics(store.matching(topic_filter)) == expected


def test_matching_rejects_invalid_filters(store: RetainedStore) -> None:
    with pytest.raises(InvalidTopicFilter):
        store.matching("a/#/b")


def test_matching_follows_literal_levels_only(store: RetainedStore) -> None:
    """A filter with a literal prefix visits only that branch: the other topics' subtrees are not walked."""
    for index in range(500):
        store.put(message(f"other/{index}"))
    store.put(message("site/1/temp"))
    visited: list[object] = []
    original = store._collect_below

    def counting(node: object, *, skip_dollar: bool, into: list[RetainedMessage]) -> None:
        visited.append(node)
        original(node, skip_dollar=skip_dollar, into=into)  # type: ignore[arg-type]

    store._collect_below = counting  # type: ignore[method-assign]
    assert topics(store.matching("site/#")) == {"site/1/temp"}
    assert len(visited) == 1


def test_expired_messages_are_excluded_and_dropped(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    store.put(message("short", at=1000.0, message_expiry_interval=10))
    store.put(message("long", at=1000.0, message_expiry_interval=1000))
    store.put(message("forever", at=1000.0))
    assert topics(store.matching("#", now=1009.0)) == {"short", "long", "forever"}
    [short] = [m for m in store.matching("short", now=1009.0)]
    assert short.remaining_expiry(1009.0) == 1
    assert topics(store.matching("#", now=1010.0)) == {"long", "forever"}
    assert len(store) == 2
    store.close()
    # Reopened much later (wall clock): the expiry counted on while the server was down.
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    assert topics(store.matching("#")) == {"forever"}
    assert store.get("long") is None and store.get("forever") is not None
    store.close()


def test_count_bound(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=2, max_bytes=BIG)
    store.put(message("a"))
    store.put(message("b"))
    with pytest.raises(RetainedStoreFull, match="maximum count") as caught:
        store.put(message("c"))
    assert caught.value.bound == "count"
    store.put(message("a", b"replaced"))  # replacing works at the bound
    store.put(message("b", b""))
    store.put(message("c"))  # room again after a delete
    assert topics(store.matching("#")) == {"a", "c"}
    store.close()


def test_bytes_bound(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=200)
    store.put(message("a", b"x" * 100))
    used = store.total_bytes
    assert 100 < used <= 200
    with pytest.raises(RetainedStoreFull, match="more than its maximum of 200 bytes") as caught:
        store.put(message("b", b"x" * 100))
    assert caught.value.bound == "bytes"
    store.put(message("a", b"y" * 100))  # same size: within the bound
    with pytest.raises(RetainedStoreFull):
        store.put(message("a", b"y" * 250))  # a replacement beyond the bound is refused too
    assert store.matching("a")[0].payload == b"y" * 100
    assert store.total_bytes == used
    store.close()


def test_reopen_restores_state_and_compaction_keeps_it(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=BIG)
    payload = b"p" * 1000
    for round_index in range(200):  # 200 KB of log for about 10 KB of live data: compaction must run
        store.put(message(f"t/{round_index % 10}", payload + str(round_index).encode()))
    store.put(message("t/9", b""))
    log_size = (tmp_path / LOG_NAME).stat().st_size
    assert log_size < 100_000, f"log of {log_size} bytes was not compacted"
    expected = {m.topic: m.payload for m in store.matching("#")}
    assert len(expected) == 9
    store.close()
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=BIG)
    assert {m.topic: m.payload for m in store.matching("#")} == expected
    assert expected["t/0"] == payload + b"190"
    store.close()


def test_two_opens_of_one_directory_are_refused(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    with pytest.raises(RuntimeError, match="in use"):
        RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    store.close()
    RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG).close()


def test_a_failed_write_refuses_the_put_and_stops_the_store(tmp_path: Path) -> None:
    """A disk that refuses writes (here /dev/full, ENOSPC): the put fails, nothing is claimed retained."""
    (tmp_path / LOG_NAME).symlink_to("/dev/full")
    store = RetainedStore.open(tmp_path, max_count=10, max_bytes=BIG)
    with pytest.raises(LogFailed, match="No space left on device"):
        store.put(message("a"))
    assert len(store) == 0 and store.matching("#") == []
    with pytest.raises(LogFailed, match="earlier write failed"):
        store.put(message("b"))
    assert isinstance(LogFailed("x"), OSError)
    store.close()


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=BIG)
    for index in range(5):
        store.put(message(f"t/{index}", b"payload-%d" % index))
    store.close()
    log = tmp_path / LOG_NAME
    whole = log.stat().st_size
    with open(log, "r+b") as handle:
        handle.truncate(whole - 3)  # the last record loses its end, as if the process died mid-write
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=BIG)
    assert topics(store.matching("#")) == {"t/0", "t/1", "t/2", "t/3"}
    store.put(message("t/after", b"new"))
    store.close()
    with open(log, "ab") as handle:
        handle.write(b"\x00" * 4096)  # zeros after the last record (allocated, never written)
    store = RetainedStore.open(tmp_path, max_count=100, max_bytes=BIG)
    assert topics(store.matching("#")) == {"t/0", "t/1", "t/2", "t/3", "t/after"}
    store.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from iotdb_mqtt.broker.retained import RetainedMessage, RetainedStore

    store = RetainedStore.open(Path(sys.argv[1]), max_count=100_000, max_bytes=1 << 30)
    index = int(sys.argv[2])
    while True:
        payload = (b"%d" % index).ljust(300)
        store.put(RetainedMessage(f"dev/{index % 300}", payload, 1, {"content_type": "n"}, time.time()))
        if index % 7 == 0:
            store.put(RetainedMessage(f"dev/{(index + 150) % 300}", b"", 0, {}, time.time()))
        print(index, flush=True)
        index += 1
    """
)


def apply_put(state: dict[str, int], index: int) -> None:
    state[f"dev/{index % 300}"] = index


def apply_delete(state: dict[str, int], index: int) -> None:
    if index % 7 == 0:
        state.pop(f"dev/{(index + 150) % 300}", None)


@pytest.mark.slow
def test_sigkill_keeps_every_put_that_returned(tmp_path: Path) -> None:
    """Writers killed with SIGKILL at arbitrary moments: the store holds exactly what they reported, or the
    one operation in flight on top; each attempt continues from the state the previous one left. Payloads
    are padded so that the log is compacted during the run, and a kill may land in a compaction."""
    directory = tmp_path / "retained"
    state: dict[str, int] = {}
    for attempt in range(3):
        first = attempt * 1_000_000
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(first)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        last = first - 1
        deadline = time.monotonic() + 30
        target = first + 200 + attempt * 100
        while last < target and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            last = int(line)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        for line in process.stdout:  # what it reported between our last read and the kill
            if line.endswith("\n"):
                last = int(line)
        process.stdout.close()
        assert last >= first, "the writer reported no put"
        for index in range(first, last + 1):
            apply_put(state, index)
            apply_delete(state, index)
        in_flight_put = dict(state)
        apply_put(in_flight_put, last + 1)
        in_flight_both = dict(in_flight_put)
        apply_delete(in_flight_both, last + 1)
        store = RetainedStore.open(directory, max_count=100_000, max_bytes=1 << 30)
        found = {m.topic: int(m.payload) for m in store.matching("#")}
        store.close()
        assert found in (state, in_flight_put, in_flight_both), f"attempt {attempt}: store differs after index {last}"
        state = found
