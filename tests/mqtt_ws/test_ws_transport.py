"""``WebSocketTransport`` in process: the listener and an aiohttp client on loopback, with a small protocol
that steers the transport from ``data_received``, so the transport's contract — order of writes, close after
the queued writes, abort dropping them, paused reading, text frames — is checked deterministically."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import WSMsgType

from iotdb_core.config import default_settings
from iotdb_mqtt.websocket import WebSocketListener

Scenario = Callable[[aiohttp.ClientWebSocketResponse, "Steered"], Awaitable[None]]


class Steered(asyncio.Protocol):
    """Records its events; the messages ``burst``, ``close``, ``abort`` and ``pause`` make it call the transport
    so, anything else is echoed."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.events: list[tuple[str, object]] = []
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append(("made", transport.get_extra_info("subprotocol")))

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self.events.append(("data", data))
        if data == b"burst":
            for index in range(100):
                transport.write(b"%d," % index)
        elif data == b"close":
            transport.write(b"bye")
            transport.close()
            transport.write(b"after close")
        elif data == b"abort":
            transport.write(b"dropped")
            transport.abort()
        elif data == b"pause":
            transport.pause_reading()
        else:
            transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set()


def run(scenario: Scenario) -> Steered:
    """Serve one WebSocket with a :class:`Steered` protocol, run ``scenario`` as its client, return the protocol."""
    protocols: list[Steered] = []

    def factory() -> Steered:
        protocols.append(Steered())
        return protocols[-1]

    async def main() -> None:
        settings = default_settings().replace(mqtt_ws_port=0, mqtt_ws_host="127.0.0.1")
        listener = WebSocketListener(settings, factory)
        await listener.start()
        host, port = listener.address
        try:
            async with aiohttp.ClientSession() as session, \
                    session.ws_connect(f"ws://{host}:{port}/mqtt", protocols=("mqtt",)) as ws:
                assert ws.protocol == "mqtt"
                await asyncio.wait_for(scenario(ws, protocols[0]), 10)
            await asyncio.wait_for(protocols[0].lost.wait(), 10)
        finally:
            await listener.close()

    asyncio.run(main())
    assert len(protocols) == 1
    return protocols[0]


def test_writes_arrive_in_order_and_echo_works() -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse, _protocol: Steered) -> None:
        await ws.send_bytes(b"burst")
        received = b""
        expected = b"".join(b"%d," % index for index in range(100))
        while len(received) < len(expected):
            received += await ws.receive_bytes()
        assert received == expected
        await ws.send_bytes(b"echo")
        assert await ws.receive_bytes() == b"echo"

    protocol = run(scenario)
    assert protocol.events == [("made", "mqtt"), ("data", b"burst"), ("data", b"echo"), ("lost", None)]


def test_close_sends_what_was_queued_then_closes_1000() -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse, _protocol: Steered) -> None:
        await ws.send_bytes(b"close")
        assert await ws.receive_bytes() == b"bye"
        message = await ws.receive()
        assert message.type is WSMsgType.CLOSE and message.data == 1000

    protocol = run(scenario)
    assert protocol.events[-1] == ("lost", None)


def test_abort_drops_queued_writes_and_the_connection() -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse, _protocol: Steered) -> None:
        await ws.send_bytes(b"abort")
        message = await ws.receive()
        assert message.type in (WSMsgType.CLOSED, WSMsgType.ERROR), message  # no close frame, no data

    protocol = run(scenario)
    assert protocol.events[-1] == ("lost", None)


def test_paused_reading_holds_messages_until_resumed() -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse, protocol: Steered) -> None:
        await ws.send_bytes(b"pause")
        await ws.send_bytes(b"held")
        await asyncio.sleep(0.3)
        assert protocol.events[-1] == ("data", b"pause")
        assert protocol.transport is not None and not protocol.transport.is_reading()
        protocol.transport.resume_reading()
        assert await ws.receive_bytes() == b"held"

    protocol = run(scenario)
    assert [event for event in protocol.events if event[0] == "data"] == [("data", b"pause"), ("data", b"held")]


def test_text_frame_closes_1003_and_loses_the_connection_with_an_error() -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse, _protocol: Steered) -> None:
        await ws.send_str("not binary")
        message = await ws.receive()
        assert message.type is WSMsgType.CLOSE and message.data == 1003

    protocol = run(scenario)
    assert protocol.events == [("made", "mqtt"), ("lost", "ConnectionError")]
