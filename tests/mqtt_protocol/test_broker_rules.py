"""Broker rules of a session, in process: subscribe, route after durability, QoS flows, windows, ACL."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.broker.retained import RetainedStore
from iotdb_mqtt.broker.session_log import SessionLog
from iotdb_mqtt.codec import (
    EMPTY_PROPERTIES,
    ConnAck,
    Disconnect,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    Subscription,
    UnsubAck,
    Unsubscribe,
)
from iotdb_mqtt.codec.packets import Will
from iotdb_mqtt.delivery import ApplicationMessage, QueueLimits
from iotdb_mqtt.ingest import STORED, PublishOutcome
from iotdb_mqtt.router import Router

from .harness import Client, Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def subscriber(host: Host, client_id: str = "sub", *filters: tuple[str, int], level: int = 5,
               properties: Properties = EMPTY_PROPERTIES, clean_start: bool = True,
               subscribe_properties: Properties = EMPTY_PROPERTIES) -> Client:
    client = Client(host, level)
    assert isinstance(client.connect(client_id, properties=properties, clean_start=clean_start), ConnAck)
    subscriptions = tuple(Subscription(name, qos) for name, qos in filters)
    client.send(Subscribe(1, subscriptions, subscribe_properties))
    ack = client.received()
    assert isinstance(ack[0], SubAck)
    return client


def publisher(host: Host, client_id: str = "pub", level: int = 5, username: str | None = "root") -> Client:
    client = Client(host, level)
    client.connect(client_id, username=username)
    return client


def publishes(client: Client) -> list[Publish]:
    return [packet for packet in client.received() if isinstance(packet, Publish)]


def test_a_publish_is_routed_only_once_its_batch_is_durable(host: Host) -> None:
    sub = subscriber(host, "sub", ("sensors/+/temp", 1))
    pub = publisher(host)
    pub.send(Publish("sensors/a/temp", b"21.5", qos=1, packet_id=7))
    assert publishes(sub) == []  # submitted, not durable yet
    pub.complete_writes()
    [delivered] = publishes(sub)
    assert (delivered.topic, delivered.payload, delivered.qos, delivered.retain) == (
        "sensors/a/temp", b"21.5", 1, False)
    assert [type(p) for p in pub.received()] == [PubAck]


def test_granted_qos_caps_the_delivery_and_the_publish_qos_caps_it_too(host: Host) -> None:
    low = subscriber(host, "low", ("t", 0))
    high = subscriber(host, "high", ("t", 2))
    pub = publisher(host)
    pub.send(Publish("t", b"x", qos=1, packet_id=1))
    pub.complete_writes()
    assert [p.qos for p in publishes(low)] == [0]
    assert [p.qos for p in publishes(high)] == [1]


def test_overlapping_subscriptions_give_one_copy_at_the_highest_qos_with_every_identifier(host: Host) -> None:
    sub = Client(host, 5)
    sub.connect("sub")
    sub.send(Subscribe(1, (Subscription("a/#", 0),), Properties(subscription_identifiers=(3,))))
    sub.send(Subscribe(2, (Subscription("a/+", 1),), Properties(subscription_identifiers=(9,))))
    sub.received()
    pub = publisher(host)
    pub.send(Publish("a/b", b"x", qos=1, packet_id=1))
    pub.complete_writes()
    [delivered] = publishes(sub)
    assert delivered.qos == 1
    assert sorted(delivered.properties.subscription_identifiers) == [3, 9]


def test_a_mqtt311_subscriber_gets_one_copy_of_overlapping_subscriptions(host: Host) -> None:
    sub = subscriber(host, "sub", ("a/#", 1), ("a/b", 0), ("+/b", 2), level=4)
    pub = publisher(host, level=4)
    pub.send(Publish("a/b", b"x", qos=2, packet_id=1))
    pub.complete_writes()
    assert [p.qos for p in publishes(sub)] == [2]


def test_wildcards_do_not_match_dollar_topics(host: Host) -> None:
    sub = subscriber(host, "sub", ("#", 0), ("+/x", 0))
    pub = publisher(host)
    pub.send(Publish("$internal/x", b"1"), Publish("plain/x", b"2"))
    pub.complete_writes()
    assert [p.topic for p in publishes(sub)] == ["plain/x"]


def test_no_local_keeps_a_client_from_receiving_its_own_publishes(host: Host) -> None:
    client = Client(host, 5)
    client.connect("both")
    client.send(Subscribe(1, (Subscription("chat", 0, no_local=True),)))
    client.received()
    client.send(Publish("chat", b"mine"))
    client.complete_writes()
    assert publishes(client) == []
    other = publisher(host, "other")
    other.send(Publish("chat", b"theirs"))
    other.complete_writes()
    assert [p.payload for p in publishes(client)] == [b"theirs"]


def test_retain_as_published_keeps_the_flag_otherwise_it_is_cleared(host: Host) -> None:
    keep = Client(host, 5)
    keep.connect("keep")
    keep.send(Subscribe(1, (Subscription("r", 0, retain_as_published=True),)))
    clear = subscriber(host, "clear", ("r", 0))
    keep.received()
    pub = publisher(host)
    pub.send(Publish("r", b"v", retain=True))
    pub.complete_writes()
    assert [p.retain for p in publishes(keep)] == [True]
    assert [p.retain for p in publishes(clear)] == [False]


def test_shared_subscription_gives_each_message_to_one_member(host: Host) -> None:
    members = [subscriber(host, f"m{i}", ("$share/g/jobs/#", 1)) for i in range(3)]
    plain = subscriber(host, "plain", ("jobs/#", 0))
    pub = publisher(host)
    for index in range(9):
        pub.send(Publish(f"jobs/{index}", b"x", qos=1, packet_id=index + 1))
    pub.complete_writes()
    per_member = [len(publishes(member)) for member in members]
    assert sum(per_member) == 9 and per_member == [3, 3, 3]
    assert len(publishes(plain)) == 9


def test_receive_maximum_bounds_what_is_in_flight_and_a_puback_opens_the_window(host: Host) -> None:
    sub = subscriber(host, "sub", ("w", 1), properties=Properties(receive_maximum=2))
    pub = publisher(host)
    for index in range(5):
        pub.send(Publish("w", str(index).encode(), qos=1, packet_id=index + 1))
    pub.complete_writes()
    first = publishes(sub)
    assert [p.payload for p in first] == [b"0", b"1"]
    sub.send(PubAck(first[0].packet_id))  # type: ignore[arg-type]
    assert [p.payload for p in publishes(sub)] == [b"2"]


def test_qos2_delivery_runs_pubrec_pubrel_pubcomp_and_counts_until_pubcomp(host: Host) -> None:
    sub = subscriber(host, "sub", ("q", 2), properties=Properties(receive_maximum=1))
    pub = publisher(host)
    pub.send(Publish("q", b"a", qos=2, packet_id=1), Publish("q", b"b", qos=2, packet_id=2))
    pub.complete_writes()
    [first] = publishes(sub)
    sub.send(PubRec(first.packet_id))  # type: ignore[arg-type]
    [pubrel] = sub.received()
    assert isinstance(pubrel, PubRel) and pubrel.packet_id == first.packet_id
    sub.send(PubComp(first.packet_id))  # type: ignore[arg-type]
    assert [p.payload for p in publishes(sub)] == [b"b"]


def test_unacknowledged_messages_are_resent_with_dup_after_reconnect(host: Host) -> None:
    sub = subscriber(host, "sub", ("p", 1), properties=Properties(session_expiry_interval=60), clean_start=False)
    pub = publisher(host)
    pub.send(Publish("p", b"1", qos=1, packet_id=1))
    pub.complete_writes()
    [first] = publishes(sub)
    assert not first.dup
    sub.session.connection_lost()
    pub.send(Publish("p", b"2", qos=1, packet_id=2), Publish("p", b"qos0", qos=0))
    pub.complete_writes()
    again = Client(host, 5)
    connack = again.connect("sub", clean_start=False, properties=Properties(session_expiry_interval=60))
    assert isinstance(connack, ConnAck) and connack.session_present
    resent = publishes(again)
    assert [(p.payload, p.dup) for p in resent] == [(b"1", True), (b"2", False)]


def test_a_clean_start_ends_the_stored_session_and_its_subscriptions(host: Host) -> None:
    sub = subscriber(host, "sub", ("p", 1), properties=Properties(session_expiry_interval=60), clean_start=False)
    sub.session.connection_lost()
    again = Client(host, 5)
    connack = again.connect("sub", clean_start=True)
    assert isinstance(connack, ConnAck) and not connack.session_present
    pub = publisher(host)
    pub.send(Publish("p", b"x", qos=1, packet_id=1))
    pub.complete_writes()
    assert publishes(again) == []


def test_unsubscribe_answers_success_or_no_subscription_existed(host: Host) -> None:
    sub = subscriber(host, "sub", ("a", 0))
    sub.send(Unsubscribe(5, ("a", "never")))
    [ack] = sub.received()
    assert isinstance(ack, UnsubAck) and ack.reason_codes == (0x00, 0x11)
    pub = publisher(host)
    pub.send(Publish("a", b"x"))
    pub.complete_writes()
    assert publishes(sub) == []


def test_a_message_larger_than_the_clients_maximum_packet_size_is_not_sent(host: Host) -> None:
    sub = subscriber(host, "sub", ("big", 0), properties=Properties(maximum_packet_size=64))
    pub = publisher(host)
    pub.send(Publish("big", b"x" * 100), Publish("big", b"small"))
    pub.complete_writes()
    assert [p.payload for p in publishes(sub)] == [b"small"]
    assert host.counters.get("mqtt_messages_dropped") == 1


def test_message_expiry_is_forwarded_counting_down(host: Host) -> None:
    sub = subscriber(host, "sub", ("e", 0))
    pub = publisher(host)
    forwarded = Properties(message_expiry_interval=30, content_type="text/plain", response_topic="reply",
                           correlation_data=b"\x01", user_properties=(("k", "v"),), payload_format_indicator=1)
    pub.send(Publish("e", b"x", properties=forwarded))
    pub.complete_writes()
    [delivered] = publishes(sub)
    properties = delivered.properties
    assert 29 <= (properties.message_expiry_interval or 0) <= 30
    assert (properties.content_type, properties.response_topic, properties.correlation_data,
            properties.user_properties, properties.payload_format_indicator) == (
        "text/plain", "reply", b"\x01", (("k", "v"),), 1)


def test_a_subscriber_that_does_not_read_has_a_bounded_queue_and_qos0_goes_first(tmp_path: Path) -> None:
    host = Host(tmp_path, QueueLimits(max_queued=10, max_queued_bytes=1 << 20, max_inflight=20))
    slow = subscriber(host, "slow", ("s", 1))
    fast = subscriber(host, "fast", ("s", 1))
    slow.session.writable(False)
    pub = publisher(host)
    for _ in range(10):
        pub.send(Publish("s", b"q0"))
    for index in range(20):
        pub.send(Publish("s", b"q1", qos=1, packet_id=index + 1))
    pub.complete_writes()
    assert len(publishes(fast)) == 30
    assert slow.session.subscriber is not None and slow.session.subscriber.queue.queued == 10
    slow.session.writable(True)
    delivered = publishes(slow)
    assert [p.payload for p in delivered] == [b"q1"] * 10
    assert host.counters.get("mqtt_messages_dropped") == 20


def test_acl_refuses_subscribe_with_0x87_and_0x80_and_publish_with_0x87(tmp_path: Path) -> None:
    host = Host(tmp_path)
    TopicAcl(tmp_path).grant("alice", "readwrite", "devices/%u/#")
    host.acl.reload()
    for level, refused in ((5, 0x87), (4, 0x80)):
        alice = Client(host, level)
        alice.connect(f"alice-{level}", username="alice")
        alice.send(Subscribe(1, (Subscription("devices/alice/#", 1), Subscription("#", 1),
                                 Subscription("devices/bob/x", 0))))
        [ack] = alice.received()
        assert isinstance(ack, SubAck) and ack.reason_codes == (1, refused, refused)
    watcher = subscriber(host, "watch", ("#", 0))
    alice = Client(host, 5)
    alice.connect("alice", username="alice")
    alice.send(Publish("devices/bob/x", b"no", qos=1, packet_id=1), Publish("devices/alice/x", b"yes", qos=1,
                                                                           packet_id=2))
    batch = alice.output.submitted[0]
    assert [p.refusal for p in batch.publishes] == [0x87, 0]
    # What the ingestor answers for a refused publish (it writes nothing for it).
    alice.complete_writes([PublishOutcome(0x87, "not authorized"), STORED])
    acks = alice.received()
    assert [(a.packet_id, a.reason_code) for a in acks if isinstance(a, PubAck)] == [(1, 0x87), (2, 0)]
    assert [p.payload for p in publishes(watcher)] == [b"yes"]


def test_disconnect_setting_a_session_expiry_after_connect_had_none_is_a_protocol_error(host: Host) -> None:
    client = Client(host, 5)
    client.connect("c", will=Will("wills/c", b"gone"))
    client.send(Disconnect(0, Properties(session_expiry_interval=30)))
    [disconnect] = client.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82
    assert client.output.closed
    [batch] = client.output.submitted
    assert [(p.topic, p.payload) for p in batch.publishes] == [("wills/c", b"gone")]


def test_a_publish_carrying_a_subscription_identifier_is_a_protocol_error(host: Host) -> None:
    client = Client(host, 5)
    client.connect("c")
    client.send(Publish("t", b"x", properties=Properties(subscription_identifiers=(4,))))
    [disconnect] = client.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82
    assert client.output.submitted == []


def test_a_will_is_routed_once_durable(host: Host) -> None:
    watcher = subscriber(host, "watch", ("wills/#", 0))
    client = Client(host, 4)
    client.connect("dev", will=Will("wills/dev", b"offline", qos=1))
    client.session.connection_lost()
    client.complete_writes()
    assert [(p.topic, p.payload) for p in publishes(watcher)] == [("wills/dev", b"offline")]


def test_topics_outside_the_ingest_filter_are_routed_without_being_written(host: Host) -> None:
    host.ingest_filter = {"data"}
    watcher = subscriber(host, "watch", ("#", 0))
    pub = publisher(host)
    pub.send(Publish("data", b"1"), Publish("commands/x", b"2"))
    [batch] = pub.output.submitted
    assert [p.ingest for p in batch.publishes] == [True, False]
    pub.complete_writes()
    assert [p.topic for p in publishes(watcher)] == ["data", "commands/x"]


def test_a_refused_subscribe_has_a_reason_string_only_when_problem_information_is_requested(tmp_path: Path) -> None:
    host = Host(tmp_path)
    TopicAcl(tmp_path).grant("carol", "read", "mine/#")
    host.acl.reload()
    for request, expect_reason in ((0, False), (1, True)):
        client = Client(host, 5)
        client.connect(f"carol-{request}", username="carol",
                       properties=Properties(request_problem_information=request))
        client.send(Subscribe(1, (Subscription("theirs/#", 0),)))
        [ack] = client.received()
        assert isinstance(ack, SubAck) and ack.reason_codes == (0x87,)
        assert (ack.properties.reason_string is not None) is expect_reason


def test_a_persistent_session_and_its_queued_messages_survive_a_restart(tmp_path: Path) -> None:
    def host_with_log() -> Host:
        host = Host(tmp_path)
        host.router = Router(QueueLimits(), host.counters,
                             session_log=SessionLog.open(tmp_path / "sessions", max_messages_per_session=100))
        return host

    first = host_with_log()
    sub = subscriber(first, "keeper", ("k/#", 2), properties=Properties(session_expiry_interval=3600),
                     clean_start=False)
    pub = publisher(first)
    pub.send(Publish("k/1", b"sent", qos=1, packet_id=1))
    pub.complete_writes()
    assert [p.payload for p in publishes(sub)] == [b"sent"]  # in flight, never acknowledged
    sub.session.connection_lost()
    pub.send(Publish("k/2", b"queued", qos=2, packet_id=2), Publish("k/3", b"qos0", qos=0))
    pub.complete_writes()
    first.router.close()  # as after a crash: only what sync() made durable is read back

    second = host_with_log()
    again = Client(second, 5)
    connack = again.connect("keeper", clean_start=False, properties=Properties(session_expiry_interval=3600))
    assert isinstance(connack, ConnAck) and connack.session_present
    resent = publishes(again)
    assert [(p.topic, p.payload, p.qos, p.dup) for p in resent] == [("k/1", b"sent", 1, True),
                                                                    ("k/2", b"queued", 2, True)]
    again.send(PubAck(resent[0].packet_id))  # type: ignore[arg-type]
    again.send(PubRec(resent[1].packet_id))  # type: ignore[arg-type]
    again.send(PubComp(resent[1].packet_id))  # type: ignore[arg-type]
    live = publisher(second)
    live.send(Publish("k/4", b"new", qos=1, packet_id=1))
    live.complete_writes()
    assert [p.payload for p in publishes(again) if isinstance(p, Publish)] == [b"new"]  # the restored subscription
    second.router.close()
    third = host_with_log()  # acknowledged messages are gone from the log; the unacknowledged one is back
    last = Client(third, 5)
    last.connect("keeper", clean_start=False, properties=Properties(session_expiry_interval=3600))
    assert [(p.payload, p.dup) for p in publishes(last)] == [(b"new", True)]
    third.router.close()


def test_a_released_qos2_message_gets_its_pubrel_again_after_a_restart(tmp_path: Path) -> None:
    def host_with_log() -> Host:
        host = Host(tmp_path)
        host.router = Router(QueueLimits(), host.counters,
                             session_log=SessionLog.open(tmp_path / "sessions", max_messages_per_session=100))
        return host

    persistent = Properties(session_expiry_interval=3600)
    first = host_with_log()
    sub = subscriber(first, "keeper", ("k/#", 2), properties=persistent, clean_start=False)
    pub = publisher(first)
    pub.send(Publish("k/1", b"once", qos=2, packet_id=1))
    pub.complete_writes()
    [delivered] = publishes(sub)
    sub.send(PubRec(delivered.packet_id))  # type: ignore[arg-type]
    assert [type(p) for p in sub.received()] == [PubRel]
    first.router.sync()
    first.router.close()  # a crash before the PUBCOMP

    second = host_with_log()
    again = Client(second, 5)
    assert isinstance(again.connect("keeper", clean_start=False, properties=persistent), ConnAck)
    resent = again.received()
    assert resent == [PubRel(delivered.packet_id)]  # type: ignore[arg-type]  # not the PUBLISH again
    again.send(PubComp(delivered.packet_id))  # type: ignore[arg-type]
    second.router.sync()
    second.router.close()
    third = host_with_log()
    last = Client(third, 5)
    last.connect("keeper", clean_start=False, properties=persistent)
    assert last.received() == []  # the exchange finished: nothing left to resend
    third.router.close()


def test_subscriptions_past_the_quotas_are_refused_per_filter(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.router = Router(QueueLimits(), host.counters, max_subscriptions=5, max_subscriptions_per_client=3)
    five = Client(host, 5)
    five.connect("five")
    five.send(Subscribe(1, tuple(Subscription(f"a/{index}", 1) for index in range(4))))
    [ack] = five.received()
    assert isinstance(ack, SubAck) and ack.reason_codes == (1, 1, 1, 0x97)
    assert ack.properties.reason_string and "mqtt_max_subscriptions_per_client" in ack.properties.reason_string
    five.send(Subscribe(2, (Subscription("a/0", 2),)))  # replacing one it holds still fits
    assert five.received()[0].reason_codes == (2,)  # type: ignore[union-attr]
    five.send(Unsubscribe(3, ("a/1",)), Subscribe(4, (Subscription("b", 0),)))
    assert [type(p) for p in five.received()] == [UnsubAck, SubAck]
    old = Client(host, 4)
    old.connect("old")
    old.send(Subscribe(1, (Subscription("c/1", 1), Subscription("c/2", 1), Subscription("c/3", 1))))
    [ack] = old.received()
    assert isinstance(ack, SubAck) and ack.reason_codes == (1, 1, 0x80)  # the server-wide quota of 5; 3.1.1: 0x80
    assert host.counters.get("mqtt_subscriptions_current") == 5


def test_ten_thousand_subscriptions_on_one_client_match_as_one(host: Host) -> None:
    client = Client(host, 4)
    client.connect("many")
    filters = tuple(Subscription(f"fleet/{index}/+", 1) for index in range(10_000))
    client.send(Subscribe(1, filters))
    [ack] = client.received()
    assert isinstance(ack, SubAck) and len(ack.reason_codes) == 10_000 and set(ack.reason_codes) == {1}
    assert host.counters.get("mqtt_subscriptions_current") == 10_000
    pub = publisher(host)
    pub.send(Publish("fleet/9999/temp", b"x", qos=1, packet_id=1), Publish("fleet/x/temp", b"none"))
    pub.complete_writes()
    assert [p.topic for p in publishes(client)] == ["fleet/9999/temp"]
    client.session.connection_lost()
    assert host.counters.get("mqtt_subscriptions_current") == 0  # a clean session's subscriptions end with it


def test_a_retained_flood_is_bounded_and_replacing_a_kept_topic_still_works(tmp_path: Path) -> None:
    store = RetainedStore.open(tmp_path / "retained", max_count=5, max_bytes=1 << 20)
    router = Router(QueueLimits(), Host(tmp_path).counters, store)
    refusals = [router.store_retained(ApplicationMessage(f"flood/{index}", b"v", 1, True)) for index in range(50)]
    assert refusals[:5] == [None] * 5 and all(refusals[5:])
    assert router.retained_count == 5
    assert router.store_retained(ApplicationMessage("flood/0", b"newer", 1, True)) is None
    assert router.store_retained(ApplicationMessage("flood/1", b"", 1, True)) is None  # deletes
    assert sorted((m.topic, m.payload) for m in router.retained_matching("flood/+"))[:2] == [
        ("flood/0", b"newer"), ("flood/2", b"v")]
    router.close()
