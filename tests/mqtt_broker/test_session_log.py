"""The session log: replay equals the state built in memory, durability under SIGKILL, expiry, bounds."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from iotdb_mqtt.broker.record_log import LogFailed
from iotdb_mqtt.broker.session_log import (
    LOG_NAME,
    NEVER_EXPIRES,
    QueuedMessage,
    SessionLog,
    StoredSession,
    UnknownSession,
)
from iotdb_mqtt.broker.tree import Subscription, SubscriptionOptions

from . import session_writer

PROPERTY_SETS: list[dict[str, object]] = [
    {},
    {"subscription_identifiers": [1, 268_435_455]},
    {
        "message_expiry_interval": 60,
        "user_properties": [("a", "b"), ("a", "c")],
        "correlation_data": b"\x00id",
        "response_topic": "reply/1",
        "content_type": "text/plain",
        "payload_format_indicator": 1,
    },
]


def queued(message_id: int, qos: int = 1, payload: bytes = b"p", **properties: object) -> QueuedMessage:
    return QueuedMessage(message_id, f"t/{message_id}", payload, qos, message_id % 2 == 0, dict(properties), 1000.5)


def open_log(directory: Path, max_messages: int = 100, compact_min_bytes: int = 1 << 20) -> SessionLog:
    return SessionLog.open(directory, max_messages_per_session=max_messages, compact_min_bytes=compact_min_bytes)


# --- the state machine: a dict model against the log, with reopen steps ------------------------------------

CLIENTS = st.sampled_from(["a", "b", "ç/c"])
MAX_MESSAGES = 4


class SessionLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="session-log-"))
        self.log = open_log(self.directory, MAX_MESSAGES, compact_min_bytes=2048)
        self.model: dict[str, StoredSession] = {}
        self.next_id = 1

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory)

    @rule(client=CLIENTS, expiry=st.sampled_from([0, 10_000_000, NEVER_EXPIRES]))
    def begin(self, client: str, expiry: int) -> None:
        self.log.begin(client, expiry)
        session = self.model.get(client)
        if session is None:
            self.model[client] = StoredSession(client, expiry, None, [], [], set())
        else:
            session.expiry_interval = expiry
            session.disconnected_at = None

    @rule(client=CLIENTS, expiry=st.sampled_from([0, 10_000_000, NEVER_EXPIRES]))
    def set_expiry(self, client: str, expiry: int) -> None:
        if client not in self.model:
            with pytest.raises(UnknownSession):
                self.log.set_expiry(client, expiry)
            return
        self.log.set_expiry(client, expiry)
        self.model[client].expiry_interval = expiry

    @rule(client=CLIENTS)
    def disconnected(self, client: str) -> None:
        at = time.time()
        if client not in self.model:
            with pytest.raises(UnknownSession):
                self.log.disconnected(client, at)
            return
        self.log.disconnected(client, at)
        self.model[client].disconnected_at = at

    @rule(client=CLIENTS)
    def end(self, client: str) -> None:
        self.log.end(client)
        self.model.pop(client, None)

    @rule(
        client=CLIENTS,
        topic_filter=st.sampled_from(["a/#", "+/b", "$share/g/x", "a/+/c"]),
        qos=st.integers(0, 2),
        identifier=st.one_of(st.none(), st.integers(1, 268_435_455)),
        flags=st.tuples(st.booleans(), st.booleans(), st.integers(0, 2)),
    )
    def subscribe(
        self, client: str, topic_filter: str, qos: int, identifier: int | None, flags: tuple[bool, bool, int]
    ) -> None:
        options = SubscriptionOptions(qos, flags[0], flags[1], flags[2])
        subscription = Subscription(client, topic_filter, options, identifier)
        if client not in self.model:
            with pytest.raises(UnknownSession):
                self.log.subscribe(subscription)
            return
        self.log.subscribe(subscription)
        subs = self.model[client].subscriptions
        for index, existing in enumerate(subs):
            if existing.topic_filter == topic_filter:
                subs[index] = subscription
                break
        else:
            subs.append(subscription)

    @rule(client=CLIENTS, topic_filter=st.sampled_from(["a/#", "+/b", "$share/g/x", "never"]))
    def unsubscribe(self, client: str, topic_filter: str) -> None:
        if client not in self.model:
            with pytest.raises(UnknownSession):
                self.log.unsubscribe(client, topic_filter)
            return
        self.log.unsubscribe(client, topic_filter)
        session = self.model[client]
        session.subscriptions = [s for s in session.subscriptions if s.topic_filter != topic_filter]

    @rule(
        client=CLIENTS, qos=st.sampled_from([1, 2]), properties=st.sampled_from(PROPERTY_SETS), size=st.integers(0, 300)
    )
    def enqueue(self, client: str, qos: int, properties: dict[str, object], size: int) -> None:
        message = queued(self.next_id, qos, b"z" * size, **properties)
        self.next_id += 1
        if client not in self.model:
            with pytest.raises(UnknownSession):
                self.log.enqueue(client, message)
            return
        session = self.model[client]
        fits = len(session.messages) < MAX_MESSAGES
        assert self.log.enqueue(client, message) is fits
        if fits:
            session.messages.append(message)

    @rule(client=CLIENTS, pick=st.integers(0, 5))
    def released(self, client: str, pick: int) -> None:
        session = self.model.get(client)
        if session is None:
            return
        message_id = session.messages[pick % len(session.messages)].message_id if session.messages else 999_999
        self.log.released(client, message_id)
        if session.messages:
            session.released.add(message_id)

    @rule(client=CLIENTS, pick=st.integers(0, 5))
    def acknowledged(self, client: str, pick: int) -> None:
        session = self.model.get(client)
        if session is None:
            return
        if not session.messages:
            self.log.acknowledged(client, 999_999)  # a stray PUBACK: ignored
            return
        message = session.messages.pop(pick % len(session.messages))
        session.released.discard(message.message_id)
        self.log.acknowledged(client, message.message_id)

    @rule()
    def expire(self) -> None:
        now = time.time()
        expired = sorted(
            client
            for client, session in self.model.items()
            if (expires_at := session.expires_at()) is not None and now >= expires_at
        )
        assert sorted(self.log.expire(now)) == expired
        for client in expired:
            del self.model[client]

    @rule()
    def durable(self) -> None:
        self.log.durable()

    @rule()
    def reopen(self) -> None:
        self.log.close()
        before = time.time()
        self.log = open_log(self.directory, MAX_MESSAGES, compact_min_bytes=2048)
        after = time.time()
        recovered = self.log.sessions()
        for client, session in list(self.model.items()):
            if session.disconnected_at is None:  # connected when the server stopped: disconnected at the open
                if session.expiry_interval == 0:
                    del self.model[client]
                    continue
                at = recovered[client].disconnected_at
                assert at is not None and before <= at <= after
                session.disconnected_at = at
            elif (expires_at := session.expires_at()) is not None and expires_at <= after:
                if client in recovered:  # expired at the open, unless the open came just before the instant
                    assert expires_at > before
                else:
                    del self.model[client]

    @invariant()
    def log_equals_model(self) -> None:
        assert self.log.sessions() == self.model
        assert len(self.log) == len(self.model)


TestSessionLogStateMachine = SessionLogMachine.TestCase
TestSessionLogStateMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


# --- deterministic tests -----------------------------------------------------------------------------------


def test_state_survives_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.begin("dev", 3600)
    subscription = Subscription("dev", "cmd/dev/#", SubscriptionOptions(2, True, True, 1), 42)
    log.subscribe(subscription)
    for message_id in (1, 2, 3):
        assert log.enqueue("dev", queued(message_id, qos=2, **PROPERTY_SETS[2]))
    log.released("dev", 2)
    log.acknowledged("dev", 1)
    log.disconnected("dev", 1_000_000_000_000.0)
    log.close()
    log = open_log(tmp_path)
    [session] = log.sessions().values()
    assert session == StoredSession(
        "dev",
        3600,
        1_000_000_000_000.0,
        [subscription],
        [queued(2, 2, **PROPERTY_SETS[2]), queued(3, 2, **PROPERTY_SETS[2])],
        {2},
    )
    assert log.get("dev") == session and "dev" in log and log.get("other") is None
    log.close()


def test_user_and_pubrel_packet_ids_survive_reopen_and_compaction(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_min_bytes=2048)
    log.begin("dev", 3600, "alice")
    log.begin("anon", 3600, None)
    log.begin("old", 3600)  # user not told: stays unknown
    assert log.enqueue("dev", queued(1, qos=2))
    log.released("dev", 1, packet_id=17)
    for message_id in range(2, 200):  # enough churn for the log to be rewritten from the live state
        assert log.enqueue("dev", queued(message_id, payload=b"x" * 100))
        log.acknowledged("dev", message_id)
    log.durable()
    log.close()
    log = open_log(tmp_path)
    sessions = log.sessions()
    assert (sessions["dev"].user, sessions["anon"].user, sessions["old"].user) == ("alice", None, "")
    assert sessions["dev"].released == {1} and sessions["dev"].released_packet_ids == {1: 17}
    log.begin("dev", 3600, "bob")  # a later connection of another user: its rights apply from now on
    log.close()
    log = open_log(tmp_path)
    assert log.sessions()["dev"].user == "bob"
    log.close()


def test_expiry_counts_across_reopen(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    now = time.time()
    log.begin("short", 5)
    log.disconnected("short", now - 10)  # expired while the server was down
    log.begin("long", 3600)
    log.disconnected("long", now - 10)
    log.begin("never", NEVER_EXPIRES)
    log.disconnected("never", 0.0)
    log.begin("connected", 0)  # connected with expiry 0 when the server stops: ends with the connection
    log.begin("connected-kept", 100_000)
    log.close()
    log = open_log(tmp_path)
    sessions = log.sessions()
    assert set(sessions) == {"long", "never", "connected-kept"}
    kept = sessions["connected-kept"]
    assert kept.disconnected_at is not None and abs(kept.disconnected_at - time.time()) < 60
    assert log.expire(now + 3589) == []
    assert log.expire(now + 3590) == ["long"]
    assert sorted(log.sessions()) == ["connected-kept", "never"]
    log.close()
    log = open_log(tmp_path)
    assert sorted(log.sessions()) == ["connected-kept", "never"]
    log.close()


def test_resume_clears_disconnected_at_and_end_forgets_everything(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.begin("c", 60)
    log.subscribe(Subscription("c", "a", SubscriptionOptions(1)))
    log.enqueue("c", queued(1))
    log.disconnected("c", time.time())
    log.begin("c", 120)
    session = log.get("c")
    assert session is not None and session.disconnected_at is None and session.expiry_interval == 120
    assert len(session.messages) == 1 and len(session.subscriptions) == 1
    log.end("c")
    log.end("c")  # again: nothing to do
    log.begin("c", 60)
    assert log.get("c") == StoredSession("c", 60, None, [], [], set())
    log.close()


def test_bounds_and_invalid_changes(tmp_path: Path) -> None:
    log = open_log(tmp_path, max_messages=2)
    log.begin("c", 60)
    assert log.enqueue("c", queued(1))
    assert log.enqueue("c", queued(2))
    assert not log.enqueue("c", queued(3))
    log.acknowledged("c", 1)
    assert log.enqueue("c", queued(4))
    with pytest.raises(ValueError, match="not above the last queued one, 4"):
        log.enqueue("c", queued(3))
    with pytest.raises(ValueError, match="QoS 0 is not 1 or 2"):
        log.enqueue("c", queued(9, qos=0))
    with pytest.raises(ValueError, match="topic_alias"):
        log.enqueue("c", queued(9, topic_alias=1))
    with pytest.raises(ValueError, match="expiry interval"):
        log.begin("c", -1)
    with pytest.raises(UnknownSession, match="no stored session for client 'x'"):
        log.enqueue("x", queued(1))
    log.close()
    log = open_log(tmp_path, max_messages=2)
    assert [m.message_id for m in log.sessions()["c"].messages] == [2, 4]
    log.close()


def test_log_is_compacted_and_stays_bounded(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_min_bytes=64 * 1024)
    log.begin("c", NEVER_EXPIRES)
    payload = b"x" * 500
    sizes = []
    for message_id in range(1, 2001):
        assert log.enqueue("c", queued(message_id, payload=payload))
        if message_id > 5:
            log.acknowledged("c", message_id - 5)
        if message_id % 50 == 0:
            log.durable()
            sizes.append((tmp_path / LOG_NAME).stat().st_size)
    assert max(sizes) < 200 * 1024, f"log grew to {max(sizes)} bytes for about 3 KB of live state"
    log.close()
    log = open_log(tmp_path)
    assert [m.message_id for m in log.sessions()["c"].messages] == [1996, 1997, 1998, 1999, 2000]
    log.close()


def test_concurrent_durable_calls_with_appends(tmp_path: Path) -> None:
    """Appends from one thread while four others call durable(): nothing is lost or reordered."""
    log = open_log(tmp_path)
    log.begin("c", NEVER_EXPIRES)
    errors: list[BaseException] = []
    stop = threading.Event()

    def syncer() -> None:
        try:
            while not stop.is_set():
                log.durable()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=syncer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for message_id in range(1, 501):
        log.subscribe(Subscription("c", f"f/{message_id % 7}", SubscriptionOptions(message_id % 3)))
        log.enqueue("c", queued(message_id))
        log.acknowledged("c", message_id)
    log.disconnected("c", session_writer.FAR_FUTURE)
    log.durable()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    expected = log.sessions()
    log.close()
    log = open_log(tmp_path)
    assert log.sessions() == expected
    log.close()


def test_a_failed_write_fails_durable_and_every_later_change(tmp_path: Path) -> None:
    (tmp_path / LOG_NAME).symlink_to("/dev/full")  # a disk that refuses writes: ENOSPC
    log = open_log(tmp_path)
    log.begin("c", 60)
    with pytest.raises(LogFailed, match="No space left on device"):
        log.durable()
    with pytest.raises(LogFailed, match="earlier write failed"):
        log.enqueue("c", queued(1))
    with pytest.raises(LogFailed):
        log.durable()
    log.close()


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.begin("c", NEVER_EXPIRES)
    log.enqueue("c", queued(1))
    log.durable()
    log.enqueue("c", queued(2, payload=b"y" * 100))
    log.close()
    path = tmp_path / LOG_NAME
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 50)
    log = open_log(tmp_path)
    assert [m.message_id for m in log.sessions()["c"].messages] == [1]
    assert log.enqueue("c", queued(3))
    log.close()
    log = open_log(tmp_path)
    assert [m.message_id for m in log.sessions()["c"].messages] == [1, 3]
    log.close()


# --- SIGKILL -----------------------------------------------------------------------------------------------


def as_compared(model: session_writer.Model, opened_after: float) -> session_writer.Model:
    """``model`` with the disconnection times an open gave to connected sessions put back to None."""
    result: session_writer.Model = {}
    for client, (expiry, at, subs, messages, released) in model.items():
        connected = at is not None and opened_after <= at < session_writer.FAR_FUTURE
        result[client] = (expiry, None if connected else at, subs, messages, released)
    return result


@pytest.mark.slow
def test_sigkill_keeps_everything_before_a_returned_durable(tmp_path: Path) -> None:
    """A writer killed with SIGKILL: the log holds the state after the last durable() it reported, or after
    some of the operations that followed it; each attempt continues from what the previous one left."""
    directory = tmp_path / "sessions"
    writer = Path(session_writer.__file__)
    model: session_writer.Model = {}
    done = 0
    for attempt in range(3):
        process = subprocess.Popen(
            [sys.executable, str(writer), str(directory), str(done)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        reported = done
        deadline = time.monotonic() + 30
        target = done + 400 + 150 * attempt
        while reported < target and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            reported = int(line)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        for line in process.stdout:
            if line.endswith("\n"):
                reported = int(line)
        process.stdout.close()
        assert reported > done, f"attempt {attempt}: the writer reported no durable()"
        # The states after each operation from the last report to one batch beyond it.
        for n in range(done, reported):
            session_writer.step(n, model, None)
        probe = session_writer.copy_model(model)
        candidates = [(reported, session_writer.copy_model(probe))]
        for n in range(reported, reported + session_writer.BATCH):
            session_writer.step(n, probe, None)
            candidates.append((n + 1, session_writer.copy_model(probe)))
        opened_at = time.time()
        log = SessionLog.open(
            directory,
            max_messages_per_session=session_writer.MAX_MESSAGES,
            compact_min_bytes=session_writer.COMPACT_MIN_BYTES,
        )
        sessions = log.sessions()
        log.close()
        for session in sessions.values():
            ids = [m.message_id for m in session.messages]
            assert ids == sorted(ids), "queued messages out of order"
        found = as_compared(session_writer.model_of(sessions), opened_at)
        matching = [count for count, state in candidates if state == found]
        assert matching, f"attempt {attempt}: the log matches no state from operation {reported} on"
        done = matching[0]
        model = session_writer.model_of(sessions)
