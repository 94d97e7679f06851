"""The live topic view's stream: a watch of the broker's messages, sent to the browser as Server-Sent Events.

``GET /console/api/topics/stream?filter=sensors/%23`` watches the filter through the broker's
:class:`~iotdb_core.fleet.TopicTap`, under the topic ACL of the console's user. A refusal is an ordinary JSON
error before the stream starts (400 invalid filter, 403 the ACL refuses it, 404 no broker, 503 too many
views open). Then the answer is ``text/event-stream``:

``event: messages``
    ``{"messages": [{"topic", "qos", "retain", "time", "size", "encoding", "payload", "truncated"}],
    "received", "dropped"}``, at most ten a second. ``time`` is wall-clock milliseconds; ``encoding`` is
    ``utf-8`` (``payload`` is the text) or ``hex``; only the first :data:`PREVIEW_BYTES` of a payload are
    sent. ``received`` counts every message the watch was offered, ``dropped`` those left out because the
    browser did not keep up.
``event: end``
    ``{"reason"}``: the watch ended on the server's side (ACL change, log-out, shutdown).

The broker hands messages over on the event loop and never waits: a view buffers at most
:data:`QUEUE_MESSAGES` messages or :data:`QUEUE_BYTES` payload bytes while its browser reads, and drops
(counting) beyond that.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from iotdb_core.fleet import ClientRegistry, TopicMessage, TopicRefused
from iotdb_core.rest.convert import dumps

__all__ = ["PREVIEW_BYTES", "QUEUE_BYTES", "QUEUE_MESSAGES", "LiveView", "LiveViewError", "TopicStreams",
           "message_body"]

log = logging.getLogger("iotdb.console")

#: The bytes of a payload sent to the page (the view shows its size and that it was cut).
PREVIEW_BYTES = 8192
#: What one view buffers for a browser that has not read yet; beyond it, messages are dropped and counted.
QUEUE_MESSAGES = 1000
QUEUE_BYTES = 4 * 1024 * 1024
#: Live views open at once on the server.
MAX_VIEWS = 16
#: The shortest time between two frames to the browser (messages arriving meanwhile go in one frame).
FRAME_INTERVAL_S = 0.1
#: How often the stream checks that its browser and session are still there.
CHECK_INTERVAL_S = 1.0
HEARTBEAT_S = 15.0


class LiveViewError(Exception):
    """A stream that cannot start: the HTTP status and the message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LiveView:
    """One browser's watch: a bounded buffer between the broker (``offer``) and the stream (``take``)."""

    def __init__(self, max_messages: int = QUEUE_MESSAGES, max_bytes: int = QUEUE_BYTES) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._queue: deque[TopicMessage] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.received = 0
        self.dropped = 0
        self.ended: str | None = None

    def offer(self, message: TopicMessage) -> None:
        """Buffer ``message``, or drop and count it when the buffer is full (never waits)."""
        self.received += 1
        size = len(message.payload)
        if len(self._queue) >= self._max_messages or self._bytes + size > self._max_bytes:
            self.dropped += 1
            return
        self._queue.append(message)
        self._bytes += size
        self._ready.set()

    def end(self, reason: str) -> None:
        """Stop the view; the stream tells the page why."""
        if self.ended is None:
            self.ended = reason
        self._ready.set()

    async def wait(self, timeout: float) -> None:
        """Until a message or the end arrives, or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def take(self) -> list[TopicMessage]:
        """The buffered messages, oldest first; the buffer is empty afterwards."""
        self._ready.clear()
        taken = list(self._queue)
        self._queue.clear()
        self._bytes = 0
        return taken


def message_body(message: TopicMessage) -> dict[str, Any]:
    """A message as the page gets it: the payload as text when it is UTF-8, else as hex; cut at PREVIEW_BYTES."""
    shown = message.payload[:PREVIEW_BYTES]
    truncated = len(message.payload) > len(shown)
    try:
        # an incremental decoder leaves a character cut by the preview's end out instead of failing
        text = codecs.getincrementaldecoder("utf-8")().decode(shown, final=not truncated)
        encoding = "utf-8"
    except UnicodeDecodeError:
        text, encoding = shown.hex(), "hex"
    return {"topic": message.topic, "qos": message.qos, "retain": message.retain,
            "time": round(message.received_at * 1000, 3), "size": len(message.payload), "encoding": encoding,
            "payload": text, "truncated": truncated}


def _event(name: str, body: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(body) + b"\n\n"


class TopicStreams:
    """The open live views of the console; a bound on how many, and their end at shutdown."""

    def __init__(self, registry: ClientRegistry, max_views: int = MAX_VIEWS) -> None:
        self._registry = registry
        self._max_views = max_views
        self._views: set[LiveView] = set()

    def close_all(self, reason: str) -> None:
        """End every open view (their streams finish their answers)."""
        for view in list(self._views):
            view.end(reason)

    def _open(self, user: str, topic_filter: str) -> tuple[LiveView, Callable[[], None]]:
        tap = self._registry.tap
        if tap is None:
            raise LiveViewError(404, "this server runs no MQTT broker (enable_mqtt_service=false)")
        if not topic_filter:
            raise LiveViewError(400, "give a topic filter, for example sensors/# or sensors/+/temperature")
        if len(self._views) >= self._max_views:
            raise LiveViewError(503, f"{self._max_views} live views are open on this server; close one first")
        view = LiveView()
        try:
            stop = tap.watch(user, topic_filter, view)
        except TopicRefused as exc:
            raise LiveViewError(403 if exc.forbidden else 400, str(exc)) from None
        self._views.add(view)
        return view, stop

    async def stream(self, request: web.Request, user: str, topic_filter: str, *,
                     alive: Callable[[], str | None], headers: Mapping[str, str]) -> web.StreamResponse:
        """Watch ``topic_filter`` for ``user`` and send what arrives until the browser leaves or the view ends.

        ``alive`` says why the view must end (the session ended), or ``None`` while it may go on.
        """
        view, stop = self._open(user, topic_filter)
        response = web.StreamResponse(headers={
            **headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no"})
        try:
            await response.prepare(request)
            await self._pump(request, response, view, alive)
        except ConnectionError:  # the browser went away mid-write
            pass
        finally:
            stop()
            self._views.discard(view)
            if view.dropped:
                log.info("live topic view of %s on %r ended: %d of %d messages dropped (the browser was slow)",
                         user, topic_filter, view.dropped, view.received)
        return response

    @staticmethod
    async def _pump(request: web.Request, response: web.StreamResponse, view: LiveView,
                    alive: Callable[[], str | None]) -> None:
        loop = asyncio.get_running_loop()
        await response.write(b": watching\n\n")
        last_write = last_check = loop.time()
        sent_received = sent_dropped = -1
        while True:
            await view.wait(CHECK_INTERVAL_S)
            now = loop.time()
            if now - last_check >= CHECK_INTERVAL_S:
                last_check = now
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                reason = alive()
                if reason is not None:
                    view.end(reason)
            messages = view.take()
            if messages or (view.received, view.dropped) != (sent_received, sent_dropped):
                sent_received, sent_dropped = view.received, view.dropped
                await response.write(_event("messages", {"messages": [message_body(m) for m in messages],
                                                         "received": view.received, "dropped": view.dropped}))
                last_write = loop.time()
            elif now - last_write >= HEARTBEAT_S:
                await response.write(b": keep-alive\n\n")
                last_write = now
            if view.ended is not None:
                await response.write(_event("end", {"reason": view.ended}))
                return
            await asyncio.sleep(FRAME_INTERVAL_S)
