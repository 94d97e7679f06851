"""Micro-benchmark of the MQTT codec's hot path: decoding a stream of QoS 1 PUBLISH packets.

Builds 100,000 MQTT 3.1.1 QoS 1 publishes to ``root/sg/d1`` with an ~80-byte JSON payload,
then feeds them to a ``PacketReader`` the way a server would (64 KiB reads) and as one buffer,
and prints the decoded packets per second (best of several rounds). Also reports encode speed.

    python bench/codec_bench.py [--count N] [--rounds R] [--chunk BYTES]
"""

from __future__ import annotations

import argparse
import json
import time

from iotdb_mqtt.codec import PacketReader, Publish, encode

TOPIC = "root/sg/d1"


def make_payload() -> bytes:
    sample = {"ts": 1_700_000_000_000, "temperature": 23.57, "humidity": 61.2, "status": "ok", "seq": 1}
    return json.dumps(sample, separators=(",", ":")).encode()


def make_packets(count: int, payload: bytes) -> list[Publish]:
    return [Publish(TOPIC, payload, 1, packet_id=i % 65_535 + 1) for i in range(count)]


def bench_decode(stream: bytes, chunk: int, rounds: int, expected: int) -> float:
    best = 0.0
    for _ in range(rounds):
        reader = PacketReader(protocol_level=4)
        decoded = 0
        started = time.perf_counter()
        for offset in range(0, len(stream), chunk):
            decoded += len(reader.feed(stream[offset : offset + chunk]))
        elapsed = time.perf_counter() - started
        if decoded != expected:
            raise SystemExit(f"decoded {decoded} packets, expected {expected}")
        best = max(best, decoded / elapsed)
    return best


def bench_encode(packets: list[Publish], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for packet in packets:
            encode(packet, 4)
        best = max(best, len(packets) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=65_536)
    args = parser.parse_args()

    payload = make_payload()
    packets = make_packets(args.count, payload)
    stream = b"".join(encode(packet, 4) for packet in packets)
    size = len(stream) // args.count
    print(f"{args.count} QoS 1 PUBLISH to {TOPIC!r}, payload {len(payload)} B, packet {size} B")
    chunked = bench_decode(stream, args.chunk, args.rounds, args.count)
    whole = bench_decode(stream, len(stream), args.rounds, args.count)
    encoded = bench_encode(packets, args.rounds)
    print(f"decode, {args.chunk}-byte chunks: {chunked:,.0f} packets/s")
    print(f"decode, one {len(stream)}-byte buffer: {whole:,.0f} packets/s")
    print(f"encode: {encoded:,.0f} packets/s")


if __name__ == "__main__":
    main()
