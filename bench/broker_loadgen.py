"""Subscriber and topic-spread publisher workers of the broker benchmark, over raw non-blocking sockets.

Both run in worker processes spawned by ``bench/broker_bench.py`` and speak MQTT 3.1.1.

* ``subscribe_worker`` connects its clients, sends each one's SUBSCRIBE (pipelined behind the CONNECT) and waits
  for every CONNACK and SUBACK; it sends ``("ready", connected, granted, refused, seconds, errors)``. The parent
  then sends ``("go", warm_end, end)`` (``time.monotonic()`` values, system-wide on Linux) or ``("stop",)``.
  After "go" one :mod:`selectors` loop reads every socket; a minimal frame scanner walks the fixed headers
  (type byte and Remaining Length), counts PUBLISH frames, and answers a QoS 1 delivery with PUBACK (QoS 2:
  PUBREC, and PUBCOMP for the PUBREL). Deliveries are counted in the measured window ``[warm_end, end)`` by
  the time of the ``recv`` that brought them. On ``("stop",)`` the worker sends a result ``dict`` and closes.
* ``topic_publish_worker`` is ``mqtt_loadgen.publish_worker`` with publishes spread over a list of topics
  (a small fixed payload each), for the matching workload, where the topic decides which subscriptions match.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import time
from multiprocessing.connection import Connection

from bench.mqtt_loadgen import _PIDS, _Client, _publish_loop, _varint, raise_nofile_limit
from iotdb_mqtt.codec import Connect, Subscribe, Subscription, encode

_PUBACK = b"\x40\x02"
_PUBREC = b"\x50\x02"
_PUBCOMP = b"\x70\x02"
_PUBLISH, _PUBREL = 3, 6


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One whole packet (blocking): its first byte and its body."""
    first = _read_exact(sock, 1)[0]
    remaining, shift = 0, 0
    while True:
        byte = _read_exact(sock, 1)[0]
        remaining |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return first, _read_exact(sock, remaining)


def _open_subscriber(host: str, port: int, client_id: str, filters: list[tuple[str, int]],
                     keep_alive: int) -> tuple[socket.socket, int, int]:
    """Connect and subscribe; returns the socket, the subscriptions granted and those refused."""
    sock = socket.create_connection((host, port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    packets = [encode(Connect(client_id=client_id, keep_alive=keep_alive, clean_start=True))]
    for start in range(0, len(filters), 100):  # at most 100 filters per SUBSCRIBE
        chunk = filters[start:start + 100]
        packets.append(encode(Subscribe(start // 100 + 1, tuple(Subscription(f, qos) for f, qos in chunk)), 4))
    sock.sendall(b"".join(packets))
    first, body = _read_packet(sock)
    if first != 0x20 or body[1] != 0:
        raise ConnectionError(f"{client_id}: CONNACK refused: {bytes([first]).hex()}{body.hex()}")
    granted = refused = 0
    for _ in range(len(packets) - 1):
        first, body = _read_packet(sock)
        while first >> 4 == _PUBLISH:  # a retained message may come before a later SUBACK; not counted
            first, body = _read_packet(sock)
        if first != 0x90:
            raise ConnectionError(f"{client_id}: expected SUBACK, got packet {first:#04x}")
        codes = body[2:]
        refused += sum(1 for code in codes if code >= 0x80)
        granted += sum(1 for code in codes if code < 0x80)
    sock.setblocking(False)
    return sock, granted, refused


def subscribe_worker(conn: Connection, host: str, port: int, clients: list[tuple[str, list[tuple[str, int]]]],
                     keep_alive: int = 300) -> None:
    """Hold ``clients`` (client id, [(filter, QoS)]) subscribed and count their deliveries; see the docstring."""
    raise_nofile_limit()
    started = time.monotonic()
    socks: list[socket.socket] = []
    errors: list[str] = []
    granted = refused = 0
    for client_id, filters in clients:
        try:
            sock, ok, bad = _open_subscriber(host, port, client_id, filters, keep_alive)
        except (OSError, ConnectionError) as exc:
            errors.append(f"{client_id}: {exc}")
            continue
        socks.append(sock)
        granted += ok
        refused += bad
    conn.send(("ready", len(socks), granted, refused, time.monotonic() - started, errors[:20]))
    message = conn.recv()
    result: dict = {"received": 0, "received_window": 0, "acks_sent": 0, "cpu_s": 0.0, "errors": []}
    if message[0] == "go":
        _, warm_end, end = message
        result = _receive_loop(conn, socks, warm_end, end)
    for sock in socks:
        sock.close()
    conn.send(result)


def _receive_loop(conn: Connection, socks: list[socket.socket], warm_end: float, end: float) -> dict:
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, bytes] = {}
    unsent: dict[socket.socket, bytearray] = {}
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        pending[sock] = b""
    selector.register(conn, selectors.EVENT_READ)
    cpu0 = os.times()
    received = window = acks = 0
    errors: list[str] = []
    stopping = False
    while not stopping:
        for key, events in selector.select(0.5):
            sock = key.fileobj
            if sock is conn:
                conn.recv()  # ("stop",)
                stopping = True
                continue
            assert isinstance(sock, socket.socket)
            if events & selectors.EVENT_WRITE:
                _flush(selector, sock, unsent)
                if not events & selectors.EVENT_READ:
                    continue
            try:
                data = sock.recv(262_144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                errors.append(str(exc))
                data = b""
            if not data:
                errors.append("connection closed by the server")
                selector.unregister(sock)
                unsent.pop(sock, None)
                continue
            now = time.monotonic()
            if pending[sock]:
                data = pending[sock] + data
            count, replies, rest = scan_frames(data)
            pending[sock] = rest
            received += count
            if warm_end <= now < end:
                window += count
            if replies:
                acks += sum(len(reply) for reply in replies) // 4
                out = unsent.get(sock)
                if out is None:
                    out = unsent[sock] = bytearray()
                out += b"".join(replies)
                _flush(selector, sock, unsent)
    cpu1 = os.times()
    selector.close()
    return {"received": received, "received_window": window, "acks_sent": acks,
            "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), "errors": errors[:20]}


def _flush(selector: selectors.BaseSelector, sock: socket.socket, unsent: dict[socket.socket, bytearray]) -> None:
    """Send what is queued for ``sock``; watch for writability only while something is left."""
    out = unsent[sock]
    try:
        sent = sock.send(out)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        out.clear()
        sent = 0
    del out[:sent]
    wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
    if selector.get_key(sock).events != wanted:
        selector.modify(sock, wanted)


def scan_frames(data: bytes) -> tuple[int, list[bytes], bytes]:
    """Walk the whole MQTT packets at the start of ``data``.

    Returns the number of PUBLISH packets, the acknowledgements to send (PUBACK for QoS 1, PUBREC for QoS 2,
    PUBCOMP for a PUBREL; each item one or more 4-byte packets), and the bytes of an incomplete last packet.

    A fan-out delivers runs of publishes with the same first byte, Remaining Length and topic length. Such a
    run is recognised with strided slices (one byte of every frame, compared in C) and counted, and its packet
    ids copied into the acknowledgements, without a Python step per frame. The check is exact: when the first
    byte and the one-byte Remaining Length of every frame of the run agree, each frame does end where the next
    one is looked at. Anything else goes frame by frame.
    """
    size = len(data)
    pos = 0
    count = 0
    replies: list[bytes] = []
    slow_until = 0
    while size - pos >= 2:
        first = data[pos]
        byte = data[pos + 1]
        if byte < 0x80:
            remaining, header = byte, 2
        else:
            remaining, shift, header = byte & 0x7F, 7, 2
            while True:
                if pos + header >= size:
                    return count, replies, data[pos:]
                byte = data[pos + header]
                remaining |= (byte & 0x7F) << shift
                header += 1
                shift += 7
                if byte < 0x80:
                    break
        frame = header + remaining
        end = pos + frame
        if end > size:
            break
        kind = first >> 4
        if kind == _PUBLISH and header == 2 and pos >= slow_until and remaining >= 4:
            run = _uniform_run(data, pos, frame, (size - pos) // frame, (first >> 1) & 3)
            if run is not None:
                frames, acks = run
                count += frames
                if acks:
                    replies.append(acks)
                pos += frames * frame
                continue
            slow_until = pos + 64 * frame  # not uniform here: go frame by frame for a while
        if kind == _PUBLISH:
            count += 1
            qos = (first >> 1) & 3
            if qos:
                topic_at = pos + header
                pid_at = topic_at + 2 + ((data[topic_at] << 8) | data[topic_at + 1])
                replies.append((_PUBACK if qos == 1 else _PUBREC) + data[pid_at:pid_at + 2])
        elif kind == _PUBREL:
            replies.append(_PUBCOMP + data[pos + header:pos + header + 2])
        pos = end
    return count, replies, data[pos:]


def _uniform_run(data: bytes, pos: int, frame: int, frames: int, qos: int) -> tuple[int, bytes] | None:
    """``frames`` publishes of ``frame`` bytes each from ``pos`` if they all agree in their first four bytes
    (type and flags, one-byte Remaining Length, topic length): their count and acknowledgements."""
    if frames < 2:
        return None
    limit = pos + frames * frame
    for offset in range(4):
        column = data[pos + offset:limit:frame]
        if column.count(column[0]) != frames:
            return None
    if not qos:
        return frames, b""
    pid_at = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
    if pid_at + 2 > pos + frame:
        return None
    acks = bytearray(4 * frames)
    acks[0::4] = (_PUBACK if qos == 1 else _PUBREC)[:1] * frames
    acks[1::4] = b"\x02" * frames
    acks[2::4] = data[pid_at:limit:frame]
    acks[3::4] = data[pid_at + 1:limit:frame]
    return frames, bytes(acks)


class TopicSpread:
    """QoS 1 publishes of a small fixed payload to topics drawn at random (seeded) from a list."""

    points_per_message = 0

    def __init__(self, topics: list[str], seed: int, payload: bytes = b"21.5") -> None:
        rng = random.Random(seed)
        chosen = [topics[rng.randrange(len(topics))] for _ in range(4096)]
        self.parts = []
        for topic in chosen:
            name = topic.encode()
            head = b"\x32" + _varint(2 + len(name) + 2 + len(payload)) + len(name).to_bytes(2, "big") + name
            self.parts.append((head, payload))

    def packet(self, pid: int, seq: int) -> bytes:
        head, payload = self.parts[seq & 4095]
        return head + _PIDS[pid] + payload


def topic_publish_worker(conn: Connection, host: str, port: int, topics: list[str], inflight: int,
                         client_id: str, seed: int = 1) -> None:
    """One publisher spreading QoS 1 publishes over ``topics``; the protocol of ``publish_worker``."""
    raise_nofile_limit()
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(encode(Connect(client_id=client_id, keep_alive=300, clean_start=True)))
    first, body = _read_packet(sock)
    if first != 0x20 or body[1] != 0:
        raise ConnectionError(f"CONNACK refused: {body.hex()}")
    sock.setblocking(False)
    client = _Client(0, sock, TopicSpread(topics, seed))  # type: ignore[arg-type]
    conn.send(("ready", 1))
    message = conn.recv()
    if message[0] != "go":
        sock.close()
        return
    _, warm_end, end, drain_s = message
    result = _publish_loop([client], inflight, warm_end, end, drain_s)
    sock.close()
    conn.send(result)
