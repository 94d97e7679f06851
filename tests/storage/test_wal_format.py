"""Record framing and scanning of WAL segment bytes, checked by property-based tests."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from iotdb_core.storage.wal_format import (
    HEADER_SIZE,
    BadRegion,
    Record,
    Unused,
    encode,
    encode_many,
    scan,
    segment_name,
)

payload_lists = st.lists(st.binary(max_size=200), min_size=1, max_size=12)


def offsets_of(payloads: list[bytes]) -> list[int]:
    offsets, pos = [], 0
    for payload in payloads:
        offsets.append(pos)
        pos += HEADER_SIZE + len(payload)
    return offsets


def records_of(payloads: list[bytes]) -> list[Record]:
    """The records :func:`scan` finds in ``encode_many(1, payloads)``."""
    pairs = zip(offsets_of(payloads), payloads, strict=True)
    return [Record(offset, seq, payload) for seq, (offset, payload) in enumerate(pairs, start=1)]


def test_segment_names_sort_in_sequence_order() -> None:
    assert segment_name(42) == "00000000000000000042.wal"
    assert sorted([segment_name(10), segment_name(9), segment_name(100)]) == [
        segment_name(9),
        segment_name(10),
        segment_name(100),
    ]


@given(payloads=payload_lists, first_seq=st.integers(min_value=1, max_value=2**62))
def test_framing_round_trip(payloads: list[bytes], first_seq: int) -> None:
    single = b"".join(encode(first_seq + i, p) for i, p in enumerate(payloads))
    assert encode_many(first_seq, payloads) == single
    records = list(scan(single, first_seq - 1))
    expected = [
        Record(off, first_seq + i, p) for i, (off, p) in enumerate(zip(offsets_of(payloads), payloads, strict=True))
    ]
    assert records == expected


@given(payloads=payload_lists, data=st.data())
def test_one_damaged_record_is_isolated(payloads: list[bytes], data: st.DataObject) -> None:
    """Flipping bits in one record loses exactly that record; only the last one is a trailing region."""
    encoded = bytearray(encode_many(1, payloads))
    offsets = [*offsets_of(payloads), len(encoded)]
    victim = data.draw(st.integers(0, len(payloads) - 1), label="victim")
    position = data.draw(st.integers(offsets[victim], offsets[victim + 1] - 1), label="position")
    encoded[position] ^= data.draw(st.integers(1, 255), label="mask")

    items = list(scan(bytes(encoded)))
    last = victim == len(payloads) - 1
    bad = BadRegion(offsets[victim], offsets[victim + 1] - offsets[victim], trailing=last)
    survivors = [Record(offsets[i], i + 1, p) for i, p in enumerate(payloads) if i != victim]
    assert items == [*survivors[:victim], bad, *survivors[victim:]]


def test_sequence_numbers_must_increase() -> None:
    data = encode(5, b"a") + encode(5, b"b") + encode(4, b"c") + encode(9, b"d")
    items = list(scan(data))
    assert items == [
        Record(0, 5, b"a"),
        BadRegion(17, 34, trailing=False),
        Record(51, 9, b"d"),
    ]
    assert list(scan(encode(3, b"x"), after_seq=3)) == [BadRegion(0, 17, trailing=True)]


def test_garbage_and_zeros_are_bad_regions() -> None:
    good = encode(1, b"payload")
    assert list(scan(b"\0" * 40 + good)) == [BadRegion(0, 40, trailing=False), Record(40, 1, b"payload")]
    assert list(scan(good + b"\xff" * 7)) == [Record(0, 1, b"payload"), BadRegion(23, 7, trailing=True)]
    assert list(scan(b"")) == []


@given(payloads=payload_lists, zeros=st.integers(min_value=1, max_value=5000))
def test_zero_bytes_after_the_records_are_unused_space(payloads: list[bytes], zeros: int) -> None:
    data = encode_many(1, payloads)
    items = list(scan(data + bytes(zeros)))
    assert items == [*records_of(payloads), Unused(len(data), zeros)]


@given(payloads=payload_lists, cut=st.integers(min_value=1, max_value=HEADER_SIZE + 199), zeros=st.integers(0, 3000))
def test_a_torn_record_before_unused_space_is_one_trailing_bad_region(
    payloads: list[bytes], cut: int, zeros: int
) -> None:
    data = encode_many(1, payloads)
    last = offsets_of(payloads)[-1]
    torn_at = min(last + cut, len(data) - 1)
    damaged = data[:torn_at] + bytes(zeros)
    assume(damaged[last : len(data)] != data[last:])  # the lost bytes were not all zeros
    items = list(scan(damaged))
    assert items[:-1] == records_of(payloads)[:-1]
    assert items[-1] in (BadRegion(last, len(damaged) - last, trailing=True), Unused(last, len(damaged) - last))
