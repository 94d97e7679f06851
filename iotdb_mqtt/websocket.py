"""MQTT over WebSocket (MQTT 5.0 section 6, MQTT 3.1.1 section 6): an aiohttp endpoint feeding the MQTT connection.

Each WebSocket upgrade on ``mqtt_ws_path`` with subprotocol ``mqtt`` (or MQTT 3.1's ``mqttv3.1``) gets the same
protocol object a TCP socket gets, driven through :class:`WebSocketTransport`, an :class:`asyncio.Transport` over
the WebSocket: binary messages are its incoming bytes, its writes are sent as binary messages. The MQTT rules —
authentication, limits, keep alive, acknowledgements — therefore live in one place for both transports.

The WebSocket carries a byte stream: an MQTT packet may be split over several messages and one message may hold
several packets [MQTT-6.0.0-2]. A text message is a protocol error and closes the connection [MQTT-6.0.0-1].
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from iotdb_core.config import Settings
from iotdb_core.errors import IoTDBError
from iotdb_core.tls import ServerTls

log = logging.getLogger("iotdb.mqtt")

#: Subprotocols a client may ask for: ``mqtt`` (MQTT 3.1.1 and 5.0) and ``mqttv3.1`` (MQTT 3.1).
SUBPROTOCOLS = ("mqtt", "mqttv3.1")
#: Seconds a server-initiated close waits for the client's close frame.
CLOSE_TIMEOUT_S = 2.0

ProtocolFactory = Callable[[], asyncio.Protocol]


class WebSocketTransport(asyncio.Transport):
    """An :class:`asyncio.Transport` over one accepted WebSocket, for a protocol written for TCP sockets.

    Writes are queued and sent in order by one sender task, as binary messages (what is queued meanwhile goes
    in one message). ``pause_reading`` stops taking messages from the WebSocket, so aiohttp's bounded read
    buffer fills and the socket stops being read. ``close`` sends what is queued, then closes the WebSocket
    (code 1000); ``abort`` drops what is queued and the TCP connection. The protocol's ``connection_lost`` is
    called once, when both directions are done.
    """

    def __init__(self, ws: web.WebSocketResponse, protocol: asyncio.Protocol, extra: Mapping[str, Any]) -> None:
        super().__init__(extra)
        self._ws = ws
        self._protocol = protocol
        self._outgoing: deque[bytes] = deque()
        self._outgoing_bytes = 0
        self._send_wakeup = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False
        self._aborted = False
        self._close_code = WSCloseCode.OK

    # ------------------------------------------------------------------ asyncio.Transport

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if self._closing or not data:
            return
        self._outgoing.append(bytes(data))
        self._outgoing_bytes += len(data)
        self._send_wakeup.set()

    def get_write_buffer_size(self) -> int:
        return self._outgoing_bytes

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._close(WSCloseCode.OK)

    def abort(self) -> None:
        self._closing = self._aborted = True
        self._outgoing.clear()
        self._outgoing_bytes = 0
        tcp = self.get_extra_info("tcp_transport")
        if tcp is not None:
            tcp.abort()
        self._reading.set()
        self._send_wakeup.set()

    def is_reading(self) -> bool:
        return self._reading.is_set() and not self._closing

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # ------------------------------------------------------------------ running

    async def serve(self) -> None:
        """Drive the protocol until the WebSocket is closed, by either side."""
        sender = asyncio.create_task(self._send())
        self._protocol.connection_made(self)
        error: Exception | None = None
        try:
            error = await self._receive()
        finally:
            self._closing = True
            self._send_wakeup.set()
            await sender
            self._protocol.connection_lost(error)

    async def _receive(self) -> Exception | None:
        """Feed binary messages to the protocol; the error the connection ended with, None for a close."""
        ws = self._ws
        while True:
            await self._reading.wait()
            if self._closing:
                return None
            message = await ws.receive()
            if message.type is WSMsgType.BINARY:
                self._protocol.data_received(message.data)
            elif message.type is WSMsgType.TEXT:
                reason = "a text frame; MQTT is carried in binary frames"
                log.info("closing MQTT over WebSocket connection from %s: %s", self._peer(), reason)
                self._close(WSCloseCode.UNSUPPORTED_DATA)
                return ConnectionError(reason)
            elif message.type is WSMsgType.ERROR:
                # aiohttp already closed the WebSocket with the code the error calls for (1009: message too big).
                reason = str(message.data)
                if isinstance(message.data, WebSocketError) and message.data.code == WSCloseCode.MESSAGE_TOO_BIG:
                    reason += " (mqtt_max_message_size)"
                log.info("closing MQTT over WebSocket connection from %s: %s", self._peer(), reason)
                return ConnectionError(reason)
            else:  # CLOSE, CLOSING or CLOSED: the client closed, or our close was sent
                return None

    async def _send(self) -> None:
        """Send queued writes in order; once closing, send the rest and close the WebSocket."""
        ws = self._ws
        while True:
            await self._send_wakeup.wait()
            self._send_wakeup.clear()
            while self._outgoing and not ws.closed:
                data = b"".join(self._outgoing)
                self._outgoing.clear()
                self._outgoing_bytes = 0
                try:
                    await ws.send_bytes(data)
                except ConnectionError:
                    break
            if self._closing:
                self._outgoing.clear()
                if not self._aborted and not ws.closed:
                    await ws.close(code=self._close_code)
                return

    def _close(self, code: WSCloseCode) -> None:
        if self._closing:
            return
        self._closing = True
        self._close_code = code
        self._reading.set()
        self._send_wakeup.set()

    def _peer(self) -> str:
        peer = self.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


class WebSocketListener:
    """The HTTP server of MQTT over WebSocket on ``mqtt_ws_host``:``mqtt_ws_port``, path ``mqtt_ws_path``; with
    ``tls``, MQTT over secure WebSocket on ``mqtt_wss_port``.

    ``protocol_factory`` makes the protocol of each accepted WebSocket, the one the TCP listener uses.
    Shutdown is in two steps around the MQTT server's stop: :meth:`stop_accepting` first, so no connection is
    added while the MQTT server closes them, then :meth:`close` once the MQTT server closed them.
    """

    def __init__(self, settings: Settings, protocol_factory: ProtocolFactory, *, tls: ServerTls | None = None) -> None:
        self.settings = settings
        self.protocol_factory = protocol_factory
        self.tls = tls
        self.port_key = "mqtt_wss_port" if tls is not None else "mqtt_ws_port"
        self.path: str = settings.mqtt_ws_path
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._accepting = False

    async def start(self) -> None:
        """Bind and serve; a port in use is an :class:`IoTDBError` with one clear line."""
        host = self.settings.mqtt_ws_host or self.settings.mqtt_host
        port = int(self.settings[self.port_key])
        app = web.Application()
        app.router.add_get(self.path, self._upgrade)
        app.router.add_route("*", "/{path:.*}", self._not_here)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=CLOSE_TIMEOUT_S + 1)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024,
                           ssl_context=self.tls.context if self.tls is not None else None)
        what = "secure WebSocket" if self.tls is not None else "WebSocket"
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise IoTDBError(f"cannot serve MQTT over {what} on {host}:{port}: the port is in use "
                                 f"(set {self.port_key} to another port, or to -1 to turn it off)") from None
            raise IoTDBError(f"cannot serve MQTT over {what} on {host}:{port}: {exc.strerror or exc}") from None
        self._runner, self._site, self._accepting = runner, site, True

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when ``mqtt_ws_port=0``)."""
        assert self._runner is not None
        host, port = self._runner.addresses[0][:2]
        return host, port

    async def stop_accepting(self) -> None:
        """Close the listening socket and refuse upgrades still on their way; open connections stay."""
        self._accepting = False
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        """Wait for the WebSocket connections to finish closing (up to a bound), then release the server."""
        await self.stop_accepting()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, headers={"Upgrade": "websocket", "Sec-WebSocket-Protocol": "mqtt"},
                                text=f"GET {self.path} is MQTT over WebSocket: send a WebSocket upgrade "
                                     "(Upgrade: websocket) with subprotocol mqtt\n")
        offered = [name.strip() for header in request.headers.getall("Sec-WebSocket-Protocol", [])
                   for name in header.split(",") if name.strip()]
        if not any(name in SUBPROTOCOLS for name in offered):
            listed = ", ".join(repr(name) for name in offered) or "none"
            return web.Response(status=400, text="MQTT over WebSocket needs the subprotocol mqtt (or mqttv3.1 for "
                                                 f"MQTT 3.1); the client offered {listed}\n")
        if not self._accepting:
            return web.Response(status=503, text="the server is shutting down\n")
        ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=self.settings.mqtt_max_message_size,
                                   compress=False, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        tcp = request.transport
        extra = {
            "peername": tcp.get_extra_info("peername") if tcp is not None else None,
            "sockname": tcp.get_extra_info("sockname") if tcp is not None else None,
            "tcp_transport": tcp,
            "peercert": tcp.get_extra_info("peercert") if tcp is not None else None,
            "subprotocol": ws.ws_protocol,
        }
        await WebSocketTransport(ws, self.protocol_factory(), extra).serve()
        return ws

    async def _not_here(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text=f"{request.method} {request.path}: no MQTT endpoint here; MQTT over "
                                             f"WebSocket is a GET {self.path} with a WebSocket upgrade\n")
