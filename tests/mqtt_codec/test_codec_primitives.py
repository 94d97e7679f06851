from __future__ import annotations

import pytest

from iotdb_mqtt.codec import MalformedPacket
from iotdb_mqtt.codec.primitives import Cursor, decode_utf8, decode_varint, encode_string, encode_varint

VARINTS = [
    (0, "00"),
    (127, "7f"),
    (128, "8001"),
    (16_383, "ff7f"),
    (16_384, "808001"),
    (2_097_151, "ffff7f"),
    (2_097_152, "80808001"),
    (268_435_455, "ffffff7f"),
]


@pytest.mark.parametrize(("value", "wire"), VARINTS)
def test_varint_spec_boundaries(value: int, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert encode_varint(value) == raw
    assert decode_varint(raw, 0, len(raw)) == (value, len(raw))


def test_varint_incomplete_returns_none() -> None:
    assert decode_varint(b"\x80\x80", 0, 2) is None
    assert decode_varint(b"", 0, 0) is None


def test_varint_fifth_byte_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="longer than 4 bytes"):
        decode_varint(b"\xff\xff\xff\xff\x01", 0, 5)


@pytest.mark.parametrize("wire", ["8000", "808000", "ff8000", "80808000"])
def test_varint_non_minimal_is_malformed(wire: str) -> None:
    raw = bytes.fromhex(wire)
    with pytest.raises(MalformedPacket, match="not minimally encoded"):
        decode_varint(raw, 0, len(raw))


@pytest.mark.parametrize("value", [-1, 268_435_456])
def test_varint_encode_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="variable byte integer"):
        encode_varint(value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff", "not well-formed UTF-8"),
        (b"\xc0\x80", "not well-formed UTF-8"),  # overlong U+0000
        (b"\xed\xa0\x80", "not well-formed UTF-8"),  # UTF-16 surrogate U+D800
        (b"\xf4\x90\x80\x80", "not well-formed UTF-8"),  # above U+10FFFF
        (b"ab\x00", "contains U\\+0000"),
    ],
)
def test_utf8_rules(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message) as info:
        decode_utf8(raw, 10, "client identifier", "CONNECT")
    assert info.value.offset is not None
    assert info.value.offset >= 10
    assert "client identifier" in str(info.value)


def test_utf8_accepts_non_ascii_and_bom() -> None:
    text = "\ufeffé水🌡"
    assert decode_utf8(text.encode(), 0, "f", "P") == text


@pytest.mark.parametrize("text", ["a\x00", "\ud800", "x" * 65_536])
def test_encode_string_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="topic"):
        encode_string(text, "topic")


def test_cursor_reports_field_and_packet_relative_offset() -> None:
    data = b"junk" + b"\x30\x04\x00\x05ab"
    cur = Cursor(data, 6, len(data), 4, "PUBLISH")
    with pytest.raises(MalformedPacket) as info:
        cur.utf8("topic name")
    assert info.value.offset == 4
    assert "PUBLISH: topic name needs 5 bytes but only 2 remain" in str(info.value)
    assert "offset 4" in str(info.value)
