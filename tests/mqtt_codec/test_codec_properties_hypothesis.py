"""Property-based tests: round trips, chunked streams, and random bytes."""

from __future__ import annotations

from contextlib import suppress
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_mqtt.codec import Connect, MQTTProtocolError, Packet, PacketReader, decode, encode

from .strategies import any_packet, connects, packets_for

LEVELS = (3, 4, 5)
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(packet: Packet, level: int) -> None:
    wire = encode(packet, level)
    decoded = decode(wire, level)
    assert decoded == packet
    assert encode(decoded, level) == wire
    reader = PacketReader(level)
    assert reader.feed(wire) == [packet]
    assert reader.buffered == 0


@pytest.mark.parametrize("level", LEVELS)
@_SETTINGS
@given(data=st.data())
def test_connect_round_trip(level: int, data: st.DataObject) -> None:
    packet = data.draw(connects(level))
    wire = encode(packet)
    assert decode(wire) == packet
    assert encode(decode(wire)) == wire
    reader = PacketReader()
    assert reader.feed(wire) == [packet]
    assert reader.protocol_level == level


@pytest.mark.parametrize(
    ("level", "name"), [(level, name) for level in LEVELS for name in packets_for(level)]
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(level: int, name: str, data: st.DataObject) -> None:
    _round_trip(data.draw(packets_for(level)[name]), level)


def _split(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(wire) + 1) for c in cuts})
    edges = [0, *points, len(wire)]
    return [wire[a:b] for a, b in pairwise(edges)]


@pytest.mark.parametrize("level", LEVELS)
@_SETTINGS
@given(data=st.data(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_stream_split_anywhere_decodes_the_same(level: int, data: st.DataObject, cuts: list[int]) -> None:
    connect = data.draw(connects(level))
    packets: list[Packet] = [connect, *data.draw(st.lists(any_packet(level), max_size=8))]
    wire = encode(connect) + b"".join(encode(p, level) for p in packets[1:])
    whole = PacketReader().feed(wire)
    assert whole == packets
    reader = PacketReader()
    pieces: list[Packet] = []
    for chunk in _split(wire, cuts):
        pieces.extend(reader.feed(chunk))
    assert pieces == packets
    assert reader.buffered == 0


@pytest.mark.parametrize("level", [None, *LEVELS])
@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=64), cuts=st.lists(st.integers(0, 64), max_size=6))
def test_random_bytes_raise_only_protocol_errors(level: int | None, blob: bytes, cuts: list[int]) -> None:
    reader = PacketReader(level, max_packet_size=_limit_for(blob))
    with suppress(MQTTProtocolError):
        for chunk in _split(blob, cuts):
            reader.feed(chunk)
    with suppress(MQTTProtocolError):
        decode(blob, level)


def _limit_for(blob: bytes) -> int | None:
    """Vary the reader's size limit with the input so both limited and unlimited readers are fuzzed."""
    return None if not blob or blob[0] & 1 else 16


@pytest.mark.parametrize("level", LEVELS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_packets_raise_only_protocol_errors(level: int, data: st.DataObject) -> None:
    packet = data.draw(st.one_of(any_packet(level), connects(level)))
    wire = bytearray(encode(packet, None if isinstance(packet, Connect) else level))
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    try:
        decoded = decode(bytes(wire), level)
    except MQTTProtocolError:
        pass
    else:
        # Whatever the decoder accepts, the encoder can write back.
        again = encode(decoded, None if isinstance(decoded, Connect) else level)
        assert decode(again, level) == decoded
    with suppress(MQTTProtocolError):
        PacketReader(level).feed(bytes(wire))


@st.composite
def _publish_like(draw: st.DrawFn) -> bytes:
    """PUBLISH-typed bytes that are mostly well-framed, sometimes subtly wrong."""
    flags = draw(st.one_of(st.sampled_from([0, 1, 2, 3, 4, 10]), st.integers(0, 15)))
    topic = draw(
        st.sampled_from([b"root/sg/d1", b"a", b"", b"a/+", b"#", b"a\x00b", b"\xed\xa0\x80", b"\xff"])
    )
    declared = len(topic) + draw(st.sampled_from([0, 0, 0, 0, 0, -1, 1, 200]))
    body = declared.to_bytes(2, "big", signed=True)[-2:] + topic
    body += draw(st.sampled_from([b"", b"\x00\x00", b"\x00\x07", b"\x12"]))
    body += draw(st.binary(max_size=8))
    wire = bytes((0x30 | flags, len(body))) + body
    return wire[: draw(st.one_of(st.just(len(wire)), st.integers(2, len(wire))))]


@pytest.mark.parametrize("level", [3, 4])
@settings(max_examples=300, deadline=None)
@given(wire=_publish_like())
def test_publish_fast_path_agrees_with_decode(level: int, wire: bytes) -> None:
    """The stream reader's inlined PUBLISH path yields what the general decoder yields, or the same error."""
    wire = bytes((wire[0], len(wire) - 2)) + wire[2:]
    try:
        expected: Packet | type[MQTTProtocolError] = decode(wire, level)
    except MQTTProtocolError as exc:
        expected = type(exc)
    try:
        got: list[Packet] | type[MQTTProtocolError] = PacketReader(level).feed(wire)
    except MQTTProtocolError as exc:
        got = type(exc)
    assert got == (expected if isinstance(expected, type) else [expected])
