"""PacketReader's ``publish_type``: the fast path builds the receiver's own objects, with Publish's fields."""

from __future__ import annotations

from dataclasses import dataclass

from iotdb_mqtt.codec import PacketReader, Properties, PubAck, Publish, encode


@dataclass
class Mine:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None
    properties: Properties


def test_publishes_without_properties_come_as_the_given_type_with_every_field() -> None:
    stream = (encode(Publish("root/sg/d1", b'{"a": 1}', 1, packet_id=7), 5)
              + encode(Publish("root/sg/d2", b"x", 0, retain=True), 5)
              + encode(Publish("a/b", b"y", 2, dup=True, packet_id=9), 5))
    packets = PacketReader(5, publish_type=Mine).feed(stream)
    assert packets == [Mine("root/sg/d1", b'{"a": 1}', 1, False, False, 7, Properties()),
                       Mine("root/sg/d2", b"x", 0, True, False, None, Properties()),
                       Mine("a/b", b"y", 2, False, True, 9, Properties())]


def test_split_reads_and_other_packets_keep_their_order_and_types() -> None:
    stream = encode(Publish("t/1", b"p1", 1, packet_id=1), 4) + encode(PubAck(3), 4) + encode(
        Publish("t/2", b"p2" * 300, 1, packet_id=2), 4)
    reader = PacketReader(4, publish_type=Mine)
    packets = [packet for i in range(0, len(stream), 5) for packet in reader.feed(stream[i:i + 5])]
    assert packets == [Mine("t/1", b"p1", 1, False, False, 1, Properties()),
                       PubAck(3), Mine("t/2", b"p2" * 300, 1, False, False, 2, Properties())]


def test_a_publish_with_properties_is_left_to_the_general_decoder() -> None:
    with_properties = Publish("t", b"p", 1, packet_id=4, properties=Properties(message_expiry_interval=5))
    packets = PacketReader(5, publish_type=Mine).feed(encode(with_properties, 5))
    assert packets == [with_properties]
