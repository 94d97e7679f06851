"""Thrift's framed transport on asyncio: one :class:`FramedConnection` per client socket.

A frame is a 4-byte big-endian length and that many bytes holding one Thrift message. The length is checked
against ``thrift_max_frame_size`` as soon as its 4 bytes arrive — before any of the body is buffered — and a
frame that is empty, negative or too large closes the connection with one log line. Complete frames are
handled one at a time per connection, in order, on the RPC thread pool (the generated ``Processor`` decodes
the message, calls the handler, encodes the reply); the event loop only moves bytes, so a slow insert or a
client that stops mid-frame holds up nobody else. A frame that stays incomplete for ``FRAME_TIMEOUT`` seconds
closes its connection.

The protocol is chosen per message by its first byte, as a Thrift server that accepts both does: ``0x80``
(strict binary protocol, the default) or ``0x82`` (compact protocol, the client's ``enable_rpc_compression``).
A message that cannot be decoded closes the connection with one log line (no traceback): the stream is no
longer in step.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, cast

from iotdb.thrift.rpc.IClientRPCService import Processor
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TTransport

from iotdb_core.rpc.handler import ConnectionHandler, RpcContext

__all__ = ["FRAME_TIMEOUT", "FramedConnection"]

log = logging.getLogger("iotdb.rpc")

#: Seconds a started frame may take to arrive completely.
FRAME_TIMEOUT = 60.0
_BINARY, _COMPACT = 0x80, 0x82
#: Complete frames queued per connection before reading from it pauses.
_QUEUED_FRAMES = 4


class MalformedMessage(Exception):
    """A frame whose bytes are not a Thrift message of a known protocol."""


def handle_frame(processor: Processor, frame: bytes) -> bytes:
    """Decode one message, run it, and return the framed reply; MalformedMessage when it cannot be decoded."""
    first = frame[0]
    input_buffer = TTransport.TMemoryBuffer(frame)
    output_buffer = TTransport.TMemoryBuffer()
    if first == _BINARY:
        iprot: Any = TBinaryProtocol.TBinaryProtocolAccelerated(input_buffer)
        oprot: Any = TBinaryProtocol.TBinaryProtocolAccelerated(output_buffer)
    elif first == _COMPACT:
        iprot = TCompactProtocol.TCompactProtocolAccelerated(input_buffer)
        oprot = TCompactProtocol.TCompactProtocolAccelerated(output_buffer)
    else:
        raise MalformedMessage(f"first byte 0x{first:02x} is neither the binary (0x80) nor the compact (0x82) "
                               "protocol's")
    try:
        processor.process(iprot, oprot)
    except Exception as exc:
        raise MalformedMessage(f"{type(exc).__name__}: {exc}") from None
    reply = output_buffer.getvalue()
    return len(reply).to_bytes(4, "big") + reply


class FramedConnection(asyncio.Protocol):
    """One client: frames in, one at a time through the processor on ``executor``, replies out."""

    def __init__(self, context: RpcContext, executor: Executor, max_frame_size: int,
                 connections: set[FramedConnection]) -> None:
        self.context = context
        self.executor = executor
        self.max_frame_size = max_frame_size
        self.connections = connections
        self.handler = ConnectionHandler(context)
        self.processor = Processor(self.handler)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._buffer = bytearray()
        self._frames: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, so this is not an isinstance check).
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:4], "big", signed=True)
            if length <= 0 or length > self.max_frame_size:
                self.abort(f"frame length {length} is outside 1..{self.max_frame_size} (thrift_max_frame_size)")
                return
            if len(buffer) < 4 + length:
                break
            self._frames.append(bytes(buffer[4:4 + length]))
            del buffer[:4 + length]
        self._watch_partial()
        if self._frames and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        if len(self._frames) >= _QUEUED_FRAMES and not self._paused:
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._frames.clear()
        self._cancel_timer()
        self.connections.discard(self)
        self.handler.close()

    # -------------------------------------------------------------------------------------------- frames

    def _watch_partial(self) -> None:
        if self._buffer and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                FRAME_TIMEOUT, self.abort, f"a frame stayed incomplete for {FRAME_TIMEOUT:.0f} s")
        elif not self._buffer:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._frames and not self._closed:
                frame = self._frames.popleft()
                if self._paused and len(self._frames) < _QUEUED_FRAMES:
                    self._paused = False
                    self.transport.resume_reading()  # type: ignore[union-attr]
                try:
                    reply = await loop.run_in_executor(self.executor, handle_frame, self.processor, frame)
                except MalformedMessage as exc:
                    self.abort(f"malformed message ({exc})")
                    return
                if not self._closed:
                    self.transport.write(reply)  # type: ignore[union-attr]
        finally:
            self._worker = None

    async def drain(self) -> None:
        """Wait until the frame being handled (if any) is answered."""
        worker = self._worker
        if worker is not None:
            await asyncio.shield(worker)

    def abort(self, reason: str) -> None:
        """Close the connection because of the client; one line in the log, no traceback."""
        if self._closed:
            return
        log.info("RPC client %s: %s; closing the connection", self.peer, reason)
        self.close()

    def close(self) -> None:
        self._closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()


def connection_factory(context: RpcContext, executor: Executor, max_frame_size: int,
                       connections: set[FramedConnection]) -> Callable[[], FramedConnection]:
    """The protocol factory for ``loop.create_server``."""
    return lambda: FramedConnection(context, executor, max_frame_size, connections)
