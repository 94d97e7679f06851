"""MQTT data representations (spec section 1.5): integers, Variable Byte Integers, UTF-8 strings,
binary data and string pairs, read through a bounds-checked :class:`Cursor` and written by small
encoder functions.
"""

from __future__ import annotations

import struct
from typing import Final, NoReturn

from .errors import MalformedPacket, MQTTProtocolError

MAX_VARINT: Final = 268_435_455
"""Largest value a Variable Byte Integer (at most four bytes) can hold."""
MAX_U16: Final = 0xFFFF
MAX_U32: Final = 0xFFFF_FFFF

U16: Final = struct.Struct("!H")
U32: Final = struct.Struct("!I")
_u16_from = U16.unpack_from
_u32_from = U32.unpack_from


def decode_varint(
    data: bytes, pos: int, end: int, field: str = "variable byte integer", base: int = 0
) -> tuple[int, int] | None:
    """Decode a Variable Byte Integer starting at ``data[pos]``; bytes past ``end`` are not read.

    Returns ``(value, position after it)``, or ``None`` when the integer runs past ``end``
    (incomplete input). Raises :class:`MalformedPacket` (naming ``field``, offset relative to
    ``base``) for a fifth byte or for a non-minimal encoding, both forbidden by [MQTT-1.5.5-1].
    """
    value = 0
    shift = 0
    for i in range(4):
        if pos + i >= end:
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i:
                raise MalformedPacket(f"{field} is not minimally encoded", offset=pos - base)
            return value, pos + i + 1
        shift += 7
    raise MalformedPacket(f"{field} is longer than 4 bytes", offset=pos - base)


def encode_varint(value: int) -> bytes:
    """Encode ``value`` (0..268435455) as a minimal Variable Byte Integer."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"variable byte integer must be >= 0, got {value}")
        return bytes((value,))
    if value > MAX_VARINT:
        raise ValueError(f"variable byte integer must be <= {MAX_VARINT}, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def utf8_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as an MQTT UTF-8 Encoded String, or ``None`` if it can."""
    if "\x00" in text:
        return "contains U+0000"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a surrogate code point"
    if len(raw) > MAX_U16:
        return f"is {len(raw)} bytes long in UTF-8, more than {MAX_U16}"
    return None


def encode_string(text: str, field: str) -> bytes:
    """Encode a UTF-8 Encoded String (2-byte length prefix); ``field`` names it in errors."""
    if "\x00" in text:
        raise ValueError(f"{field} contains U+0000")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a surrogate code point") from None
    if len(raw) > MAX_U16:
        raise ValueError(f"{field} is {len(raw)} bytes long in UTF-8, more than {MAX_U16}")
    return U16.pack(len(raw)) + raw


def encode_binary(data: bytes, field: str) -> bytes:
    """Encode Binary Data (2-byte length prefix)."""
    if len(data) > MAX_U16:
        raise ValueError(f"{field} is {len(data)} bytes long, more than {MAX_U16}")
    return U16.pack(len(data)) + bytes(data)


def check_range(value: int, low: int, high: int, field: str) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise ``ValueError`` naming ``field``."""
    if not low <= value <= high:
        raise ValueError(f"{field} must be in {low}..{high}, got {value}")
    return value


def decode_utf8(raw: bytes, offset: int, field: str, packet: str) -> str:
    """Decode the bytes of a UTF-8 Encoded String, enforcing [MQTT-1.5.4-1] and [MQTT-1.5.4-2].

    Python's strict UTF-8 codec already rejects overlong forms, encoded surrogates and code
    points above U+10FFFF; U+0000 is checked separately.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(
            f"{packet}: {field} is not well-formed UTF-8 ({exc.reason})", offset=offset + exc.start
        ) from None
    if "\x00" in text:
        raise MalformedPacket(f"{packet}: {field} contains U+0000", offset=offset + raw.index(b"\x00"))
    return text


class Cursor:
    """Reads MQTT fields from ``data[pos:end]``, raising :class:`MalformedPacket` on overruns.

    ``base`` is the index of the packet's first byte in ``data``, so error offsets are packet
    relative even when ``data`` is a larger stream buffer. ``packet`` names the packet type in
    messages.
    """

    __slots__ = ("base", "data", "end", "packet", "pos")

    def __init__(self, data: bytes, pos: int, end: int, base: int, packet: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.base = base
        self.packet = packet

    @property
    def offset(self) -> int:
        """Current position relative to the packet start."""
        return self.pos - self.base

    def fail(
        self, message: str, *, offset: int | None = None, error: type[MQTTProtocolError] = MalformedPacket
    ) -> NoReturn:
        """Raise ``error`` for the current packet at ``offset`` (default: current position)."""
        raise error(f"{self.packet}: {message}", offset=self.offset if offset is None else offset)

    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, size: int, field: str) -> None:
        if self.pos + size > self.end:
            have = self.end - self.pos
            self.fail(f"{field} needs {size} bytes but only {have} remain")

    def u8(self, field: str) -> int:
        if self.pos >= self.end:
            self.fail(f"{field} is missing: no bytes remain")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self, field: str) -> int:
        self._need(2, field)
        value: int = _u16_from(self.data, self.pos)[0]
        self.pos += 2
        return value

    def u32(self, field: str) -> int:
        self._need(4, field)
        value: int = _u32_from(self.data, self.pos)[0]
        self.pos += 4
        return value

    def varint(self, field: str) -> int:
        result = decode_varint(self.data, self.pos, self.end, f"{self.packet}: {field}", self.base)
        if result is None:
            self.fail(f"{field} is a truncated variable byte integer")
        value, self.pos = result
        return value

    def binary(self, field: str) -> bytes:
        size = self.u16(f"length of {field}")
        self._need(size, field)
        start = self.pos
        self.pos = start + size
        return self.data[start : self.pos]

    def utf8(self, field: str) -> str:
        size = self.u16(f"length of {field}")
        self._need(size, field)
        start = self.pos
        self.pos = start + size
        return decode_utf8(self.data[start : self.pos], start - self.base, field, self.packet)

    def rest(self) -> bytes:
        """All remaining bytes (e.g. a PUBLISH payload)."""
        start = self.pos
        self.pos = self.end
        return self.data[start : self.end]

    def expect_end(self) -> None:
        """Trailing bytes after a packet's last field make it malformed."""
        if self.pos != self.end:
            self.fail(f"{self.end - self.pos} unexpected trailing byte(s) after the last field")
