"""Hypothesis strategies producing valid packets for a given protocol level."""

from __future__ import annotations

from hypothesis import strategies as st

from iotdb_mqtt.codec import (
    PROPERTY_SPECS,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    Properties,
    PropertyId,
    PropertyOwner,
    PropertySpec,
    PropertyType,
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
    Will,
)
from iotdb_mqtt.codec import reason_codes as rc
from iotdb_mqtt.codec.primitives import MAX_U16, MAX_U32, MAX_VARINT

_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
_LEVEL_CHARS = st.characters(codec="utf-8", exclude_characters="\x00/+#")

texts = st.text(_CHARS, max_size=12)
"""Valid MQTT UTF-8 strings: no U+0000, no surrogates."""

_levels = st.text(_LEVEL_CHARS, max_size=6)
topic_names = st.lists(_levels, min_size=1, max_size=4).map("/".join).filter(bool)
packet_ids = st.integers(1, MAX_U16)
qos_levels = st.integers(0, 2)


def _plain_filters() -> st.SearchStrategy[str]:
    level = st.one_of(_levels, st.just("+"))
    body = st.lists(level, min_size=1, max_size=4).map("/".join)
    with_hash = st.lists(level, max_size=3).map(lambda levels: "/".join([*levels, "#"]))
    return st.one_of(body, with_hash).filter(lambda f: bool(f) and not f.startswith("$share/"))


def topic_filters(level: int) -> st.SearchStrategy[str]:
    plain = _plain_filters()
    if level < 5:
        return plain
    share_names = st.text(_LEVEL_CHARS, min_size=1, max_size=5)
    shared = st.builds(lambda name, f: f"$share/{name}/{f}", share_names, plain)
    return st.one_of(plain, shared)


def _value(spec: PropertySpec, owner: PropertyOwner) -> st.SearchStrategy[object]:
    kind = spec.type
    if kind is PropertyType.UTF8_STRING_PAIR:
        return st.lists(st.tuples(texts, texts), min_size=1, max_size=3).map(tuple)
    if kind is PropertyType.VARIABLE_BYTE_INTEGER:
        most = 3 if owner in spec.repeatable_in else 1
        return st.lists(st.integers(1, MAX_VARINT), min_size=1, max_size=most).map(tuple)
    if kind is PropertyType.UTF8_STRING:
        return topic_names if spec.id is PropertyId.RESPONSE_TOPIC else texts
    if kind is PropertyType.BINARY_DATA:
        return st.binary(max_size=16)
    top = {
        PropertyType.BYTE: 0xFF,
        PropertyType.TWO_BYTE_INTEGER: MAX_U16,
        PropertyType.FOUR_BYTE_INTEGER: MAX_U32,
    }
    low, high = spec.valid_range or (0, top[kind])
    return st.integers(low, high)


def properties(
    owner: PropertyOwner, level: int = 5, **forced: st.SearchStrategy[object]
) -> st.SearchStrategy[Properties]:
    """Any valid property set for ``owner`` (always empty below level 5)."""
    if level < 5:
        return st.just(Properties())
    optional = {spec.attr: _value(spec, owner) for spec in PROPERTY_SPECS if owner in spec.owners}
    for name in forced:
        optional.pop(name)
    return st.fixed_dictionaries(forced, optional=optional).map(lambda values: Properties(**values))


def _codes(allowed: frozenset[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(allowed))


@st.composite
def connects(draw: st.DrawFn, level: int) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(
            draw(topic_names),
            draw(st.binary(max_size=16)),
            draw(qos_levels),
            draw(st.booleans()),
            draw(properties(PropertyOwner.WILL, level)),
        )
    username = draw(st.none() | texts)
    password = draw(st.none() | st.binary(max_size=12))
    if level < 5 and username is None:
        password = None
    return Connect(
        draw(texts),
        level,
        draw(st.booleans()),
        draw(st.integers(0, MAX_U16)),
        username,
        password,
        will,
        draw(properties(PropertyOwner.CONNECT, level)),
    )


@st.composite
def connacks(draw: st.DrawFn, level: int) -> ConnAck:
    code = draw(_codes(rc.CONNACK_CODES if level == 5 else rc.CONNACK_V3_CODES))
    present = draw(st.booleans()) if code == 0 else False
    return ConnAck(present, code, draw(properties(PropertyOwner.CONNACK, level)))


@st.composite
def publishes(draw: st.DrawFn, level: int) -> Publish:
    qos = draw(qos_levels)
    packet_id = draw(packet_ids) if qos else None
    dup = draw(st.booleans()) if qos else False
    if level == 5 and draw(st.booleans()):
        topic = draw(st.just("") | topic_names)
        props = draw(properties(PropertyOwner.PUBLISH, level, topic_alias=st.integers(1, MAX_U16)))
    else:
        topic = draw(topic_names)
        props = draw(properties(PropertyOwner.PUBLISH, level))
    return Publish(topic, draw(st.binary(max_size=64)), qos, draw(st.booleans()), dup, packet_id, props)


def acks(cls: type[PubAck | PubRec | PubRel | PubComp], level: int) -> st.SearchStrategy[Packet]:
    owner = PropertyOwner.of(cls.packet_type)
    allowed = {
        PubAck: rc.PUBACK_CODES,
        PubRec: rc.PUBREC_CODES,
        PubRel: rc.PUBREL_CODES,
        PubComp: rc.PUBCOMP_CODES,
    }[cls]
    if level < 5:
        return st.builds(cls, packet_ids)
    return st.builds(cls, packet_ids, _codes(allowed), properties(owner))


@st.composite
def subscriptions(draw: st.DrawFn, level: int) -> Subscription:
    topic_filter = draw(topic_filters(level))
    qos = draw(qos_levels)
    if level < 5:
        return Subscription(topic_filter, qos)
    no_local = False if topic_filter.startswith("$share/") else draw(st.booleans())
    return Subscription(topic_filter, qos, no_local, draw(st.booleans()), draw(st.integers(0, 2)))


def subscribes(level: int) -> st.SearchStrategy[Subscribe]:
    subs = st.lists(subscriptions(level), min_size=1, max_size=4).map(tuple)
    return st.builds(Subscribe, packet_ids, subs, properties(PropertyOwner.SUBSCRIBE, level))


def subacks(level: int) -> st.SearchStrategy[SubAck]:
    codes = st.lists(_codes(rc.SUBACK_CODES if level == 5 else rc.SUBACK_V3_CODES), min_size=1, max_size=4)
    return st.builds(SubAck, packet_ids, codes.map(tuple), properties(PropertyOwner.SUBACK, level))


def unsubscribes(level: int) -> st.SearchStrategy[Unsubscribe]:
    filters = st.lists(topic_filters(level), min_size=1, max_size=4).map(tuple)
    return st.builds(Unsubscribe, packet_ids, filters, properties(PropertyOwner.UNSUBSCRIBE, level))


def unsubacks(level: int) -> st.SearchStrategy[UnsubAck]:
    if level < 5:
        return st.builds(UnsubAck, packet_ids)
    codes = st.lists(_codes(rc.UNSUBACK_CODES), min_size=1, max_size=4).map(tuple)
    return st.builds(UnsubAck, packet_ids, codes, properties(PropertyOwner.UNSUBACK))


def disconnects(level: int) -> st.SearchStrategy[Disconnect]:
    if level < 5:
        return st.just(Disconnect())
    return st.builds(Disconnect, _codes(rc.DISCONNECT_CODES), properties(PropertyOwner.DISCONNECT))


def auths() -> st.SearchStrategy[Auth]:
    return st.builds(Auth, _codes(rc.AUTH_CODES), properties(PropertyOwner.AUTH))


def packets_for(level: int) -> dict[str, st.SearchStrategy[Packet]]:
    """One strategy per packet type that exists at ``level`` (CONNECT excluded: it sets the level)."""
    table: dict[str, st.SearchStrategy[Packet]] = {
        "CONNACK": connacks(level),
        "PUBLISH": publishes(level),
        "PUBACK": acks(PubAck, level),
        "PUBREC": acks(PubRec, level),
        "PUBREL": acks(PubRel, level),
        "PUBCOMP": acks(PubComp, level),
        "SUBSCRIBE": subscribes(level),
        "SUBACK": subacks(level),
        "UNSUBSCRIBE": unsubscribes(level),
        "UNSUBACK": unsubacks(level),
        "PINGREQ": st.just(PingReq()),
        "PINGRESP": st.just(PingResp()),
        "DISCONNECT": disconnects(level),
    }
    if level == 5:
        table["AUTH"] = auths()
    return table


def any_packet(level: int) -> st.SearchStrategy[Packet]:
    return st.one_of(*packets_for(level).values())
