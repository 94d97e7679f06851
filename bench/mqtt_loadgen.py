"""A cheap MQTT 3.1.1 load generator over raw non-blocking sockets, run in worker processes.

Each worker process drives a few clients with one :mod:`selectors` loop. A client keeps ``inflight``
QoS 1 PUBLISH packets outstanding; every PUBACK frees its packet id, which is reused at once for the
next publish (with the next timestamp). Packets are built from pre-encoded pieces: only the packet id
and the timestamp(s) are patched in, so a publish costs about a microsecond of Python.

The parent talks to a worker over a :class:`multiprocessing.connection.Connection`:

* ``publish`` workers: worker sends ``("ready", n_connected)``; parent sends ``("go", warm_end, end, drain_s)``
  (``time.monotonic()`` values, which are system-wide on Linux); worker publishes until ``end``, then only
  collects acks until none is outstanding or ``drain_s`` passed, and sends a result ``dict``.
* ``idle`` workers: worker connects its clients (CONNECT, waits for CONNACK), sends ``("connected", n, s)``,
  then holds the sockets until the parent sends ``("close",)``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import socket
import struct
import time
from array import array
from dataclasses import dataclass, field

from iotdb_mqtt.codec import Connect, encode

#: First timestamp; 13 digits for the next ~8,000 years of ms, so single-row payloads keep one length.
BASE_TS = 1_700_000_000_000
BATCH_ROWS = 100
BATCH_MEASUREMENTS = 10
_PUBACK = struct.Struct(">BBH")
_PIDS = [i.to_bytes(2, "big") for i in range(65_536)]


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows; return the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _values_for(client: int, count: int) -> list[bytes]:
    """``count`` distinct fixed-width floats (9 characters each), varying by client."""
    return [b"%9.5f" % (10.0 + ((client * 7919 + i * 104_729) % 8_999_999) / 100_000.0) for i in range(count)]


class SingleRow:
    """The seed's payload: one timestamp, measurements s1 and s2, two DOUBLE values."""

    points_per_message = 2

    def __init__(self, client: int) -> None:
        device = f"root.sg.d{client}".encode()
        topic = f"root/sg/d{client}".encode()
        self.prefix = b'{"device":"' + device + b'","timestamp":'
        values = _values_for(client, 64)
        self.suffixes = [
            b',"measurements":["s1","s2"],"values":[' + values[i] + b"," + values[(i * 13 + 7) % 64] + b"]}"
            for i in range(64)
        ]
        payload_len = len(self.prefix) + 13 + len(self.suffixes[0])
        remaining = 2 + len(topic) + 2 + payload_len
        self.head = b"\x32" + _varint(remaining) + len(topic).to_bytes(2, "big") + topic

    def packet(self, pid: int, seq: int) -> bytes:
        """The publish of message number ``seq`` (its timestamp is ``BASE_TS + seq``)."""
        return b"".join((self.head, _PIDS[pid], self.prefix, b"%d" % (BASE_TS + seq), self.suffixes[seq & 63]))


class BatchRows:
    """100 timestamps x 10 DOUBLE measurements in one ``timestamps``/``values`` document."""

    points_per_message = BATCH_ROWS * BATCH_MEASUREMENTS

    def __init__(self, client: int) -> None:
        device = f"root.sg.d{client}".encode()
        topic = f"root/sg/d{client}".encode()
        names = b",".join(b'"s%d"' % i for i in range(BATCH_MEASUREMENTS))
        values = _values_for(client, BATCH_ROWS * BATCH_MEASUREMENTS)
        rows = [b"[" + b",".join(values[r * BATCH_MEASUREMENTS:(r + 1) * BATCH_MEASUREMENTS]) + b"]"
                for r in range(BATCH_ROWS)]
        self.prefix = b'{"device":"' + device + b'","timestamps":['
        self.suffix = b'],"measurements":[' + names + b'],"values":[' + b",".join(rows) + b"]}"
        self.topic_part = len(topic).to_bytes(2, "big") + topic

    def packet(self, pid: int, seq: int) -> bytes:
        """Message ``seq`` carries timestamps ``BASE_TS + seq*100 ... + 99``."""
        first = BASE_TS + seq * BATCH_ROWS
        stamps = b",".join(b"%d" % t for t in range(first, first + BATCH_ROWS))
        body_len = len(self.topic_part) + 2 + len(self.prefix) + len(stamps) + len(self.suffix)
        return b"".join((b"\x32", _varint(body_len), self.topic_part, _PIDS[pid], self.prefix, stamps, self.suffix))


SHAPES = {"single": SingleRow, "batch": BatchRows}


@dataclass
class _Client:
    index: int
    sock: socket.socket
    shape: SingleRow | BatchRows
    sent_at: list[float] = field(default_factory=lambda: [0.0] * 65_536)
    outstanding: int = 0
    seq: int = 0
    rbuf: bytes = b""
    wbuf: bytearray = field(default_factory=bytearray)
    open: bool = True


def _connect(host: str, port: int, client_id: str, keep_alive: int, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(encode(Connect(client_id=client_id, keep_alive=keep_alive, clean_start=True)))
    return sock


def _read_connack(sock: socket.socket) -> None:
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise ConnectionError("connection closed before CONNACK")
        data += chunk
    if data[0] != 0x20 or data[3] != 0:
        raise ConnectionError(f"CONNACK refused: {data.hex()}")


def publish_worker(conn, host: str, port: int, clients: list[int], shape_name: str, inflight: int,
                   tag: str) -> None:
    """Drive ``clients`` (device numbers) publishing ``shape_name`` payloads; see the module docstring."""
    raise_nofile_limit()
    shape_cls = SHAPES[shape_name]
    state: list[_Client] = []
    for index in clients:
        sock = _connect(host, port, f"bench-{tag}-{index}", keep_alive=60)
        _read_connack(sock)
        sock.setblocking(False)
        state.append(_Client(index, sock, shape_cls(index)))
    conn.send(("ready", len(state)))
    message = conn.recv()
    if message[0] != "go":
        for client in state:
            client.sock.close()
        return
    _, warm_end, end, drain_s = message
    result = _publish_loop(state, inflight, warm_end, end, drain_s)
    for client in state:
        client.sock.close()
    conn.send(result)


def _publish_loop(state: list[_Client], inflight: int, warm_end: float, end: float, drain_s: float) -> dict:
    selector = selectors.DefaultSelector()
    by_fd = {}
    cpu0 = os.times()
    now = time.monotonic()
    for client in state:
        shape = client.shape
        parts = []
        for pid in range(1, inflight + 1):
            parts.append(shape.packet(pid, client.seq))
            client.seq += 1
            client.sent_at[pid] = now
        client.outstanding = inflight
        client.wbuf += b"".join(parts)
        selector.register(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        by_fd[client.sock.fileno()] = client
    latencies = array("d")
    acked_total = 0
    acked_window = 0
    errors: list[str] = []
    sending = True
    deadline = end + drain_s
    unpack = _PUBACK.iter_unpack
    while True:
        now = time.monotonic()
        if sending and now >= end:
            sending = False
        if not sending and (now >= deadline or all(c.outstanding == 0 or not c.open for c in state)):
            break
        for key, events in selector.select(0.05):
            client = key.data
            if events & selectors.EVENT_READ:
                try:
                    data = client.sock.recv(262_144)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError as exc:
                    errors.append(f"client {client.index}: {exc}")
                    data = b""
                if data == b"":
                    if client.open:
                        errors.append(f"client {client.index}: connection closed by the server")
                    client.open = False
                    selector.unregister(client.sock)
                    continue
                if data:
                    now = time.monotonic()
                    if client.rbuf:
                        data = client.rbuf + data
                    usable = len(data) & ~3
                    client.rbuf = data[usable:]
                    sent_at = client.sent_at
                    measuring = warm_end <= now < end
                    count = 0
                    pids = []
                    for first, length, pid in unpack(data[:usable] if usable != len(data) else data):
                        if first != 0x40 or length != 2:
                            errors.append(f"client {client.index}: unexpected packet {first:#04x} (not a PUBACK)")
                            client.open = False
                            break
                        if measuring:
                            latencies.append(now - sent_at[pid])
                        pids.append(pid)
                        count += 1
                    if not client.open:
                        selector.unregister(client.sock)
                        continue
                    client.outstanding -= count
                    acked_total += count
                    if measuring:
                        acked_window += count
                    if sending and pids:
                        shape = client.shape
                        seq = client.seq
                        parts = []
                        for pid in pids:
                            parts.append(shape.packet(pid, seq))
                            sent_at[pid] = now
                            seq += 1
                        client.seq = seq
                        client.outstanding += len(pids)
                        client.wbuf += b"".join(parts)
            if client.wbuf and client.open:
                try:
                    sent = client.sock.send(client.wbuf)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    errors.append(f"client {client.index}: {exc}")
                    client.open = False
                    selector.unregister(client.sock)
                    continue
                del client.wbuf[:sent]
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.wbuf else 0)
            if client.open and key.events != wanted:
                selector.modify(client.sock, wanted, client)
    cpu1 = os.times()
    selector.close()
    sent_total = sum(c.seq for c in state)
    return {
        "sent": sent_total,
        "acked": acked_total,
        "acked_window": acked_window,
        "outstanding": sum(c.outstanding for c in state),
        "per_client_sent": {c.index: c.seq for c in state},
        "latencies": latencies.tobytes(),
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "errors": errors[:20],
    }


def idle_worker(conn, host: str, port: int, clients: list[int], tag: str, keep_alive: int = 60) -> None:
    """Connect ``clients`` (CONNECT, then wait for every CONNACK), report, and hold them until told to close."""
    raise_nofile_limit()
    started = time.monotonic()
    socks: list[socket.socket] = []
    errors: list[str] = []
    for index in clients:
        try:
            socks.append(_connect(host, port, f"idle-{tag}-{index}", keep_alive=keep_alive))
        except OSError as exc:
            errors.append(f"client {index}: {exc}")
    connected = 0
    for sock in socks:
        try:
            _read_connack(sock)
            connected += 1
        except (OSError, ConnectionError) as exc:
            errors.append(str(exc))
    conn.send(("connected", connected, time.monotonic() - started, errors[:20]))
    conn.recv()
    for sock in socks:
        sock.close()
    conn.send(("closed",))
