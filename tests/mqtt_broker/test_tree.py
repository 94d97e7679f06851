"""The subscription tree: matching rules of MQTT 5.0 4.7 and 4.8.2, merging, shares, removal."""

from __future__ import annotations

import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotdb_mqtt.broker.tree import (
    Delivery,
    InvalidTopicFilter,
    Subscription,
    SubscriptionOptions,
    SubscriptionTree,
    parse_filter,
)
from iotdb_mqtt.codec import errors as codec_errors
from iotdb_mqtt.codec.reason_codes import ReasonCode

QOS1 = SubscriptionOptions(qos=1)


def sub(
    client_id: str, topic_filter: str, qos: int = 1, identifier: int | None = None, **options: object
) -> Subscription:
    return Subscription(client_id, topic_filter, SubscriptionOptions(qos=qos, **options), identifier)  # type: ignore[arg-type]


def matched_clients(tree: SubscriptionTree, topic: str, publisher: str | None = None) -> set[str]:
    return {delivery.client_id for delivery in tree.match(topic, publisher)}


def reference_match(topic_filter: str, topic: str) -> bool:
    """The spec's rules written as directly as possible, level against level."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels) or (
        len(filter_levels) == len(topic_levels) + 1 and filter_levels[-1] == "#"
    )


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "sport/tennis", True),
        ("#", "/", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("+/tennis/#", "sport/tennis", True),
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        ("a/b", "a/b/", False),
        ("A/b", "a/b", False),
        ("#", "$SYS/broker", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("$SYS/#", "$SYS", True),
        ("a/$x/#", "a/$x/y", True),
        ("+/$x", "a/$x", True),
    ],
)
def test_spec_examples(topic_filter: str, topic: str, expected: bool) -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", topic_filter))
    assert (matched_clients(tree, topic) == {"c"}) is expected
    assert reference_match(topic_filter, topic) is expected


@pytest.mark.parametrize(
    "topic_filter",
    [
        "",
        "a/#/b",
        "+x",
        "x+",
        "x#",
        "a/b#",
        "##",
        "a\x00b",
        "$share/",
        "$share/g",
        "$share/g/",
        "$share//a",
        "$share/+/a",
        "$share/g#/a",
        "$share/g/a/#/b",
    ],
)
def test_invalid_filters_are_refused_with_reason(topic_filter: str) -> None:
    with pytest.raises(InvalidTopicFilter) as caught:
        parse_filter(topic_filter)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, codec_errors.InvalidTopicFilter)
    assert caught.value.reason_code == ReasonCode.TOPIC_FILTER_INVALID
    assert "topic filter" in str(caught.value) or "shared subscription" in str(caught.value)
    tree = SubscriptionTree()
    with pytest.raises(InvalidTopicFilter):
        tree.subscribe(sub("c", topic_filter))
    assert len(tree) == 0


def test_invalid_filter_messages_say_what_is_wrong() -> None:
    with pytest.raises(InvalidTopicFilter, match=r"'a/#/b'.*'#' must be the whole last level"):
        parse_filter("a/#/b")
    with pytest.raises(InvalidTopicFilter, match=r"'\+x'.*'\+' must occupy a whole level"):
        parse_filter("+x")
    with pytest.raises(InvalidTopicFilter, match="empty"):
        parse_filter("")
    with pytest.raises(InvalidTopicFilter, match="U\\+0000"):
        parse_filter("a\x00")
    with pytest.raises(InvalidTopicFilter, match="invalid share name ''"):
        parse_filter("$share//a")


def test_parse_filter_splits_shares() -> None:
    assert parse_filter("$share/g/a/+/#").levels == ("a", "+", "#")
    assert parse_filter("$share/g/a/+/#").share_name == "g"
    assert parse_filter("/a//").levels == ("", "a", "", "")
    assert parse_filter("$share").share_name is None  # an ordinary filter: no "/" follows


def test_match_rejects_invalid_topic_names() -> None:
    tree = SubscriptionTree()
    for topic in ("", "a/+", "a/#", "a\x00"):
        with pytest.raises(ValueError):
            tree.match(topic, None)


def test_overlapping_subscriptions_merge_into_one_delivery() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "a/+", qos=0, identifier=1))
    tree.subscribe(sub("c", "a/#", qos=2, identifier=2))
    tree.subscribe(sub("c", "a/b", qos=1, retain_as_published=True))
    tree.subscribe(sub("d", "#", qos=0))
    deliveries = sorted(tree.match("a/b", "p"), key=lambda d: d.client_id)
    assert len(deliveries) == 2
    first, second = deliveries
    assert (first.client_id, first.qos, first.retain_as_published, sorted(first.identifiers)) == ("c", 2, True, [1, 2])
    assert second == Delivery("d", 0, False, [])


def test_subscribe_replaces_the_same_clients_same_filter() -> None:
    tree = SubscriptionTree()
    assert tree.subscribe(sub("c", "a/+", qos=0)) is True
    assert tree.subscribe(sub("c", "a/+", qos=2, identifier=7)) is False
    assert tree.subscribe(sub("d", "a/+", qos=1)) is True
    assert len(tree) == 2
    assert tree.subscriptions_of("c") == [sub("c", "a/+", qos=2, identifier=7)]
    delivery = next(d for d in tree.match("a/x", None) if d.client_id == "c")
    assert (delivery.qos, delivery.identifiers) == (2, [7])


def test_no_local_skips_only_the_publishers_own_subscription() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "a/#", no_local=True))
    tree.subscribe(sub("d", "a/#", no_local=True))
    tree.subscribe(sub("e", "a/#"))
    assert matched_clients(tree, "a/b", "c") == {"d", "e"}
    assert matched_clients(tree, "a/b", "e") == {"c", "d", "e"}
    assert matched_clients(tree, "a/b", None) == {"c", "d", "e"}


def test_no_local_with_an_overlapping_subscription_still_delivers_through_the_other() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "a/#", no_local=True, identifier=1))
    tree.subscribe(sub("c", "a/+", identifier=2))
    [delivery] = tree.match("a/b", "c")
    assert delivery.identifiers == [2]


def test_no_local_on_a_shared_subscription_is_refused() -> None:
    tree = SubscriptionTree()
    with pytest.raises(ValueError, match=r"No Local.*MQTT-3.8.3-4"):
        tree.subscribe(sub("c", "$share/g/a", no_local=True))
    assert len(tree) == 0


@pytest.mark.parametrize(("field", "value"), [("qos", 3), ("qos", -1), ("retain_handling", 3)])
def test_out_of_range_options_are_refused(field: str, value: int) -> None:
    options = {"qos": 1, field: value}
    with pytest.raises(ValueError, match=field.replace("_", " ").title().replace("Qos", "QoS")):
        SubscriptionTree().subscribe(Subscription("c", "a", SubscriptionOptions(**options)))  # type: ignore[arg-type]


def test_shared_subscription_round_robin_one_member_per_share() -> None:
    tree = SubscriptionTree()
    for member in ("m1", "m2", "m3"):
        tree.subscribe(sub(member, "$share/g/jobs/+"))
    tree.subscribe(sub("m1", "$share/h/jobs/#"))
    tree.subscribe(sub("x", "$share/h/jobs/#"))
    received: list[list[str]] = []
    for _ in range(6):
        deliveries = tree.match("jobs/1", None)
        received.append(sorted(d.client_id for d in deliveries))
    # Group g rotates m1, m2, m3; group h rotates m1, x. A client chosen by both groups gets one delivery.
    assert received == [["m1"], ["m2", "x"], ["m1", "m3"], ["m1", "x"], ["m1", "m2"], ["m3", "x"]]


def test_shared_choice_skips_unavailable_members_and_falls_back() -> None:
    tree = SubscriptionTree()
    for member in ("m1", "m2", "m3"):
        tree.subscribe(sub(member, "$share/g/t"))
    online = {"m2", "m3"}
    picks = [tree.match("t", None, lambda c: c in online)[0].client_id for _ in range(4)]
    assert picks == ["m2", "m3", "m2", "m3"]
    online.clear()
    picks = [tree.match("t", None, lambda c: c in online)[0].client_id for _ in range(3)]
    assert picks == ["m1", "m2", "m3"]  # no one available: plain rotation


def test_shared_and_plain_subscriptions_of_one_client_merge() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "$share/g/t", qos=2, identifier=5))
    tree.subscribe(sub("c", "t", qos=0, identifier=6))
    [delivery] = tree.match("t", None)
    assert (delivery.qos, sorted(delivery.identifiers)) == (2, [5, 6])


def test_shares_are_per_group_and_filter() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("a", "$share/g/t/+"))
    tree.subscribe(sub("b", "$share/g/t/#"))
    assert matched_clients(tree, "t/1") == {"a", "b"}


def test_shared_member_leaving_keeps_rotation_fair() -> None:
    tree = SubscriptionTree()
    for member in ("m1", "m2", "m3"):
        tree.subscribe(sub(member, "$share/g/t"))
    assert tree.match("t", None)[0].client_id == "m1"
    assert tree.unsubscribe("m1", "$share/g/t")
    assert [tree.match("t", None)[0].client_id for _ in range(3)] == ["m2", "m3", "m2"]
    tree.remove_client("m2")
    tree.remove_client("m3")
    assert tree.match("t", None) == []


def test_dollar_rule_applies_to_shared_filters() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "$share/g/#"))
    tree.subscribe(sub("d", "$share/g/$SYS/#"))
    assert matched_clients(tree, "$SYS/x") == {"d"}


def test_unsubscribe_and_remove_client() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "a/b"))
    tree.subscribe(sub("c", "a/#"))
    tree.subscribe(sub("c", "$share/g/a/b"))
    tree.subscribe(sub("d", "a/b"))
    assert len(tree) == 4
    assert tree.unsubscribe("c", "a/+") is False  # filters compare character by character
    assert tree.unsubscribe("x", "a/b") is False
    assert tree.unsubscribe("c", "a/b") is True
    assert tree.unsubscribe("c", "a/b") is False
    assert matched_clients(tree, "a/b") == {"c", "d"}
    assert tree.remove_client("c") == 2
    assert tree.remove_client("c") == 0
    assert tree.subscriptions_of("c") == []
    assert matched_clients(tree, "a/b") == {"d"}
    assert len(tree) == 1


def test_empty_nodes_are_pruned() -> None:
    tree = SubscriptionTree()
    tree.subscribe(sub("c", "a/b/c/d"))
    tree.subscribe(sub("c", "a/b"))
    tree.subscribe(sub("d", "$share/g/a/b/x"))
    tree.unsubscribe("c", "a/b/c/d")
    tree.unsubscribe("d", "$share/g/a/b/x")
    root = tree._root
    assert root.children is not None and list(root.children) == ["a"]
    node_b = root.children["a"].children["b"]  # type: ignore[index]
    assert node_b.children is None and node_b.shares is None
    tree.remove_client("c")
    assert root.children is None and root.is_empty()


def test_subscriptions_of_lists_every_kind() -> None:
    tree = SubscriptionTree()
    subs = [sub("c", "a", identifier=1), sub("c", "$share/g/a", qos=0), sub("c", "b/#", qos=2)]
    for subscription in subs:
        tree.subscribe(subscription)
    assert tree.subscriptions_of("c") == subs


def test_ten_thousand_subscriptions_of_one_client() -> None:
    tree = SubscriptionTree()
    for index in range(10_000):
        tree.subscribe(sub("big", f"dev/{index}/+"))
    assert len(tree) == 10_000
    [delivery] = tree.match("dev/4321/temp", None)
    assert delivery.client_id == "big"
    assert tree.remove_client("big") == 10_000
    assert tree._root.children is None


def test_memory_of_a_thousand_clients_with_ten_subscriptions_each() -> None:
    """The tree's own structures (nodes, dicts), not counting the Subscription objects the caller made."""
    options = SubscriptionOptions(qos=1)
    subs = [
        Subscription(f"client-{c}", f"site/{c % 50}/dev-{c}/{kind}/+", options)
        for c in range(1000)
        for kind in range(10)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tree = SubscriptionTree()
    for subscription in subs:
        tree.subscribe(subscription)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(tree) == 10_000
    assert used < 12 * 1024 * 1024, f"{used} bytes for 10,000 subscriptions"
    print(f"tree structures for 10,000 subscriptions: {used / 1024 / 1024:.1f} MiB", file=sys.stderr)


# --- the tree against the brute-force reference over random filters and topics -------------------------

LEVELS = st.sampled_from(["a", "b", "", "$x", "c"])
FILTER_LEVELS = st.one_of(LEVELS, st.just("+"))


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVELS, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    text = "/".join(levels) or "a"
    if draw(st.integers(0, 5)) == 0:
        text = f"$share/{draw(st.sampled_from(['g', 'h']))}/{text}"
    return text


@st.composite
def topics(draw: st.DrawFn) -> str:
    return "/".join(draw(st.lists(LEVELS, min_size=1, max_size=5))) or "/"


@settings(max_examples=300, deadline=None)
@given(
    subscriptions=st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), filters(), st.integers(0, 2), st.booleans()),
        max_size=25,
    ),
    removals=st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), filters()), max_size=5),
    probes=st.lists(st.tuples(topics(), st.sampled_from([None, "c1", "c2"])), min_size=1, max_size=10),
)
def test_match_equals_brute_force_reference(
    subscriptions: list[tuple[str, str, int, bool]],
    removals: list[tuple[str, str]],
    probes: list[tuple[str, str | None]],
) -> None:
    tree = SubscriptionTree()
    model: dict[tuple[str, str], Subscription] = {}
    for ident, (client_id, topic_filter, qos, no_local) in enumerate(subscriptions, start=1):
        shared = topic_filter.startswith("$share/")
        subscription = sub(client_id, topic_filter, qos=qos, identifier=ident, no_local=no_local and not shared)
        assert tree.subscribe(subscription) is ((client_id, topic_filter) not in model)
        model[(client_id, topic_filter)] = subscription
    for client_id, topic_filter in removals:
        assert tree.unsubscribe(client_id, topic_filter) is ((client_id, topic_filter) in model)
        model.pop((client_id, topic_filter), None)
    assert len(tree) == len(model)
    for topic, publisher in probes:
        deliveries = tree.match(topic, publisher)
        by_client = {d.client_id: d for d in deliveries}
        assert len(by_client) == len(deliveries), "one delivery per client"
        plain_expected: dict[str, list[Subscription]] = {}
        shares: dict[tuple[str, str], list[Subscription]] = {}
        for (client_id, topic_filter), subscription in model.items():
            if topic_filter.startswith("$share/"):
                _, group, inner = topic_filter.split("/", 2)
                if reference_match(inner, topic):
                    shares.setdefault((group, inner), []).append(subscription)
            elif reference_match(topic_filter, topic) and not (
                subscription.options.no_local and client_id == publisher
            ):
                plain_expected.setdefault(client_id, []).append(subscription)
        # Every plain match is delivered with its QoS and identifier; each share adds exactly one member.
        for client_id, matching in plain_expected.items():
            delivery = by_client[client_id]
            assert delivery.qos >= max(s.options.qos for s in matching)
            assert {s.identifier for s in matching} <= set(delivery.identifiers)
        plain_identifiers = {s.identifier for matching in plain_expected.values() for s in matching}
        shared_identifiers = [i for d in deliveries for i in d.identifiers if i not in plain_identifiers]
        assert len(shared_identifiers) == len(shares)
        for members in shares.values():
            chosen = [s for s in members if s.identifier in shared_identifiers]
            assert len(chosen) == 1
        expected_clients = set(plain_expected) | {
            s.client_id for members in shares.values() for s in members if s.identifier in shared_identifiers
        }
        assert set(by_client) == expected_clients
        for delivery in deliveries:
            contributing = [s for s in model.values() if s.identifier in delivery.identifiers]
            assert delivery.qos == max(s.options.qos for s in contributing)
