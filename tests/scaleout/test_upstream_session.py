"""The client side of an upstream connection, driven in process: the test plays the broker with the project's
codec and a recording output port, so every rule is checked deterministically, without sockets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from iotdb_core.backoff import Backoff
from iotdb_mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    encode,
)
from iotdb_mqtt.upstream.session import BACKLOG_BYTES, ClientSession, SessionOptions, State, UpstreamBatch


@dataclass
class Recorder:
    """The output port: what the session asked for, with the bytes it sent decoded as the broker reads them."""

    level: int
    sent: list[Packet] = field(default_factory=list)
    batches: list[UpstreamBatch] = field(default_factory=list)
    closed: int = 0
    paused: bool = False
    accepted: list[bool] = field(default_factory=list)
    refused: list[list[tuple[str, int]]] = field(default_factory=list)
    timers: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reader = PacketReader(None)

    def send(self, data: bytes) -> None:
        self.sent.extend(self.reader.feed(data))

    def close(self) -> None:
        self.closed += 1

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def submit(self, batch: UpstreamBatch) -> None:
        self.batches.append(batch)

    def call_later(self, delay: float) -> None:
        self.timers.append(delay)

    def connected(self, session_present: bool) -> None:
        self.accepted.append(session_present)

    def subscribed(self, refused: list[tuple[str, int]]) -> None:
        self.refused.append(refused)

    def take(self) -> list[Packet]:
        out, self.sent = self.sent, []
        return out


def options(level: int = 5, **changes: object) -> SessionOptions:
    values: dict[str, object] = {"client_id": "edge-1", "subscriptions": ("$share/g/root/#",), "qos": 1,
                                 "protocol_level": level, "receive_maximum": 3, "keep_alive": 10}
    values.update(changes)
    return SessionOptions(**values)  # type: ignore[arg-type]


def connected(level: int = 5, session_present: bool = False, **changes: object) -> tuple[ClientSession, Recorder]:
    out = Recorder(level)
    session = ClientSession(options(level, **changes), out, now=0.0)
    session.start(0.0)
    session.receive_data(encode(ConnAck(session_present), level), 0.0)
    return session, out


def publish(packet_id: int | None, qos: int = 1, topic: str = "root/sg/d1", payload: bytes = b"x",
            level: int = 5, **flags: object) -> bytes:
    return encode(Publish(topic, payload, qos, packet_id=packet_id, **flags), level)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [4, 5])
def test_connect_asks_for_a_persistent_session_then_subscribes(level: int) -> None:
    out = Recorder(level)
    session = ClientSession(options(level, username="u", password=b"p", session_expiry=600), out, now=0.0)
    session.start(0.0)
    [connect] = out.take()
    assert isinstance(connect, Connect)
    assert (connect.client_id, connect.protocol_level, connect.clean_start) == ("edge-1", level, False)
    assert (connect.username, connect.password, connect.keep_alive) == ("u", b"p", 10)
    if level == 5:
        assert connect.properties.session_expiry_interval == 600
        assert connect.properties.receive_maximum == 3
        assert connect.properties.topic_alias_maximum is None  # no aliases towards this client
    session.receive_data(encode(ConnAck(True), level), 0.1)
    assert out.accepted == [True]
    [subscribe] = out.take()
    assert isinstance(subscribe, Subscribe)
    assert [(s.topic_filter, s.qos) for s in subscribe.subscriptions] == [("$share/g/root/#", 1)]
    session.receive_data(encode(SubAck(subscribe.packet_id, (1,)), level), 0.2)
    assert out.refused == [[]]
    assert session.state is State.CONNECTED


def test_refused_connack_closes_with_the_reason() -> None:
    out = Recorder(5)
    session = ClientSession(options(), out, now=0.0)
    session.start(0.0)
    session.receive_data(encode(ConnAck(False, 0x86), 5), 0.0)
    assert out.closed == 1 and session.state is State.CLOSED
    assert session.close_reason is not None and "0x86" in session.close_reason and "password" in session.close_reason


def test_refused_subscription_is_reported() -> None:
    session, out = connected()
    _connect, subscribe = out.take()
    assert isinstance(subscribe, Subscribe)
    session.receive_data(encode(SubAck(subscribe.packet_id, (0x9E,)), 5), 0.0)
    assert out.refused == [[("$share/g/root/#", 0x9E)]]


@pytest.mark.parametrize("level", [4, 5])
def test_acknowledgements_wait_for_durability_and_keep_arrival_order(level: int) -> None:
    session, out = connected(level, receive_maximum=100)
    out.take()
    session.receive_data(publish(1, level=level) + publish(2, qos=2, level=level), 0.0)
    [first] = out.batches
    assert [p.packet_id for p in first.publishes] == [1, 2]
    assert out.take() == []  # nothing acknowledged before the write is durable
    session.batch_logged(first)
    session.receive_data(publish(3, level=level) + publish(None, qos=0, level=level), 0.1)
    second = out.batches[1]
    assert [p.packet_id for p in second.publishes] == [3, None]
    session.batch_logged(second)
    session.batch_durable(second, 0.2)  # later batch durable first: still waits behind the first
    assert out.take() == []
    session.batch_durable(first, 0.3)
    assert out.take() == [PubAck(1), PubRec(2), PubAck(3)]
    session.receive_data(encode(PubRel(2), level), 0.4)
    assert out.take() == [PubComp(2)]
    assert session.in_flight == 0


def test_publishes_arriving_while_a_batch_is_written_form_the_next_batch() -> None:
    session, out = connected(receive_maximum=100)
    session.receive_data(publish(1), 0.0)
    session.receive_data(publish(2), 0.0)
    session.receive_data(publish(3), 0.0)
    assert [[p.packet_id for p in b.publishes] for b in out.batches] == [[1]]
    session.batch_logged(out.batches[0])
    assert [[p.packet_id for p in b.publishes] for b in out.batches] == [[1], [2, 3]]


def test_a_failed_write_acknowledges_nothing_and_closes() -> None:
    session, out = connected(receive_maximum=100)
    out.take()
    session.receive_data(publish(1) + publish(2), 0.0)
    batch = out.batches[0]
    session.batch_failed(batch, OSError("disk full"))
    assert out.closed == 1 and session.state is State.CLOSED
    assert session.close_reason is not None and "disk full" in session.close_reason
    session.batch_durable(batch, 0.1)
    assert out.take() == []


def test_receive_maximum_pauses_reading_until_acknowledged() -> None:
    session, out = connected(receive_maximum=3)
    session.receive_data(publish(1) + publish(2), 0.0)
    assert not out.paused
    session.receive_data(publish(3), 0.0)
    assert out.paused
    session.batch_logged(out.batches[0])  # the third publish is the next batch
    session.batch_durable(out.batches[0], 0.1)
    assert not out.paused  # two acknowledged: room again
    session.batch_logged(out.batches[1])
    session.batch_durable(out.batches[1], 0.2)
    assert session.in_flight == 0


def test_payload_backlog_pauses_reading() -> None:
    session, out = connected(receive_maximum=1000, max_packet_size=BACKLOG_BYTES)
    big = b"x" * (BACKLOG_BYTES // 2 + 1)
    session.receive_data(publish(1, payload=big) + publish(2, payload=big), 0.0)
    assert out.paused


def test_keep_alive_pings_and_closes_without_an_answer() -> None:
    session, out = connected(keep_alive=10)
    out.take()
    session.tick(5.0)
    assert out.take() == []
    session.tick(10.0)
    assert out.take() == [PingReq()]
    session.receive_data(encode(PingResp(), 5), 11.0)
    session.tick(20.0)
    assert out.take() == [PingReq()]
    session.tick(30.5)
    assert out.closed == 1 and session.close_reason is not None and "PINGRESP" in session.close_reason


def test_missing_connack_times_out() -> None:
    out = Recorder(5)
    session = ClientSession(options(connect_timeout=2.0), out, now=0.0)
    session.start(0.0)
    session.tick(1.0)
    assert out.closed == 0
    session.tick(2.0)
    assert out.closed == 1 and session.close_reason is not None and "CONNACK" in session.close_reason


def test_broker_disconnect_is_named() -> None:
    session, out = connected()
    session.receive_data(encode(Disconnect(0x8B, Properties(reason_string="maintenance")), 5), 0.0)
    assert out.closed == 1
    assert session.close_reason is not None and "0x8B" in session.close_reason and "maintenance" in session.close_reason


def test_invalid_bytes_close_the_connection() -> None:
    session, out = connected()
    session.receive_data(b"\x00\x00", 0.0)  # packet type 0 is reserved
    assert out.closed == 1 and session.close_reason is not None and "invalid packet" in session.close_reason


def test_packets_before_connack_are_a_protocol_error() -> None:
    out = Recorder(5)
    session = ClientSession(options(), out, now=0.0)
    session.start(0.0)
    session.receive_data(publish(1), 0.0)
    assert out.closed == 1 and out.batches == []


def test_topic_alias_from_the_broker_is_refused() -> None:
    session, out = connected()
    session.receive_data(publish(1, topic="", properties=Properties(topic_alias=1)), 0.0)
    assert out.closed == 1 and out.batches == []


def test_disconnect_finishes_acknowledging_before_it_leaves() -> None:
    session, out = connected(receive_maximum=100)
    out.take()
    session.receive_data(publish(1), 0.0)
    session.disconnect(0.1)
    assert out.paused and out.closed == 0
    batch = out.batches[0]
    session.batch_logged(batch)
    session.batch_durable(batch, 0.2)
    assert out.take() == [PubAck(1), Disconnect()]
    assert out.closed == 1


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    low = Backoff(0.5, 4.0, uniform=lambda: 0.0)
    high = Backoff(0.5, 4.0, uniform=lambda: 1.0)
    assert [low.next_delay() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert [high.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    high.reset()
    assert high.next_delay() == 0.5


def test_disconnect_before_connack_just_closes() -> None:
    out = Recorder(5)
    session = ClientSession(options(), out, now=0.0)
    session.start(0.0)
    out.take()
    session.disconnect(0.1)
    assert out.closed == 1 and out.take() == [] and session.state is State.CLOSED


def ids(out: Recorder) -> list[list[int | None]]:
    return [[p.packet_id for p in batch.publishes] for batch in out.batches]


def test_batch_delay_gathers_a_trickle_into_one_batch() -> None:
    session, out = connected(receive_maximum=100, batch_delay=0.02)
    session.receive_data(publish(1), 1.0)
    assert out.batches == [] and out.timers == [pytest.approx(0.02)]
    session.receive_data(publish(2), 1.01)
    session.receive_data(publish(3), 1.015)
    assert out.batches == [] and len(out.timers) == 1  # one timer for the batch, from its first message
    session.batch_due(1.02)
    assert ids(out) == [[1, 2, 3]]
    session.receive_data(publish(4), 1.021)  # written while the first is being logged: waits for its own delay
    session.batch_logged(out.batches[0], 1.025)
    assert ids(out) == [[1, 2, 3]] and out.timers[-1] == pytest.approx(0.016)
    session.batch_due(1.041)
    assert ids(out) == [[1, 2, 3], [4]]


def test_batch_delay_does_not_hold_a_batch_of_half_the_receive_maximum() -> None:
    session, out = connected(receive_maximum=8, batch_delay=1.0)
    session.receive_data(publish(1) + publish(2) + publish(3), 0.0)
    assert out.batches == []
    session.receive_data(publish(4), 0.001)
    assert ids(out) == [[1, 2, 3, 4]]  # half the Receive Maximum: written at once
    session.batch_due(1.0)  # the timer of the first message finds nothing left to wait for
    assert len(out.batches) == 1


def test_batch_delay_waits_no_longer_once_a_batch_was_logged_late() -> None:
    session, out = connected(receive_maximum=100, batch_delay=0.02)
    session.receive_data(publish(1), 0.0)
    session.batch_due(0.02)
    session.receive_data(publish(2), 0.021)
    session.batch_logged(out.batches[0], 0.05)  # the write took longer than the delay: the next batch goes now
    assert ids(out) == [[1], [2]]


def test_batch_delay_gives_way_to_a_paused_socket_and_to_disconnect() -> None:
    session, out = connected(receive_maximum=6, batch_delay=1.0)
    session.receive_data(publish(1) + publish(2) + publish(3), 0.0)
    session.batch_logged(out.batches[0], 0.05)
    session.receive_data(publish(4), 0.1)
    session.batch_due(1.1)
    session.receive_data(publish(5) + publish(6), 1.2)
    assert out.paused and ids(out) == [[1, 2, 3], [4]]
    session.batch_logged(out.batches[1], 1.25)  # the broker sends nothing more until acknowledged: no waiting
    assert ids(out) == [[1, 2, 3], [4], [5, 6]]
    session.batch_logged(out.batches[2], 1.3)
    for batch in out.batches:
        session.batch_durable(batch, 1.3)
    assert not out.paused and session.in_flight == 0
    out.take()
    session.receive_data(publish(7), 2.0)
    assert ids(out)[-1] == [5, 6]
    session.disconnect(2.0)  # leaving writes what arrived at once
    assert ids(out)[-1] == [7]
    session.batch_logged(out.batches[-1], 2.1)
    session.batch_durable(out.batches[-1], 2.1)
    assert out.take() == [PubAck(7), Disconnect()]
