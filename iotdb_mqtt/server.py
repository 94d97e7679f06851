"""The asyncio MQTT server: listening socket, live connections, delayed wills, time-outs and graceful stop."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import NamedTuple

from iotdb_core.auth import UserStore
from iotdb_core.config import Settings
from iotdb_core.errors import IoTDBError
from iotdb_core.fleet import ClientInfo
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import ServiceCounters
from iotdb_mqtt.codec.packets import Will
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.connection import MqttConnection
from iotdb_mqtt.ingest import InboundPublish, IngestedBatch, Ingestor, PublishOutcome
from iotdb_mqtt.sessions import SessionStore

log = logging.getLogger("iotdb.mqtt")

#: How often connections are checked for keep-alive and CONNECT time-outs.
SWEEP_INTERVAL_S = 0.5
#: Sockets accepted beyond ``mqtt_max_connections`` before new ones are closed unread; the margin
#: lets refused clients read their CONNACK.
SOCKET_MARGIN = 64


class _DelayedWill(NamedTuple):
    context: FormatContext
    will: Will
    timer: asyncio.TimerHandle


class MqttServer:
    """Accepts MQTT connections and hands their publishes to the ingest executor."""

    def __init__(self, settings: Settings, ingestor: Ingestor, users: UserStore, counters: ServiceCounters,
                 ingest_executor: Executor) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.users = users
        self.counters = counters
        self.sessions = SessionStore()
        self.ingest_executor = ingest_executor
        self.auth_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-auth")
        self.durability_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-durable")
        self._connections: set[MqttConnection] = set()
        #: Closed connections whose received publishes are still being written: :meth:`stop` waits for them too.
        self._draining: set[MqttConnection] = set()
        self._by_client: dict[str, MqttConnection] = {}
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._delayed_wills: dict[str, _DelayedWill] = {}
        self._will_writes: set[asyncio.Task[None]] = set()
        #: Set by :meth:`stop`: sockets stay paused from then on, even when their backlog drains.
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind ``mqtt_host``:``mqtt_port``; a port in use is an :class:`IoTDBError` with one clear line."""
        loop = asyncio.get_running_loop()
        host, port = self.settings.mqtt_host, self.settings.mqtt_port
        try:
            self._server = await loop.create_server(lambda: MqttConnection(self), host, port,
                                                    reuse_address=True, backlog=1024)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise IoTDBError(f"cannot listen on {host}:{port}: the port is in use "
                                 "(set mqtt_port to another port)") from None
            raise IoTDBError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._sweeper = asyncio.create_task(self._sweep())

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when ``mqtt_port=0``)."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        """Stop accepting, finish and acknowledge what was received, close every connection, write the wills.

        Sessions do not outlive the server, so delayed wills are written now rather than lost.
        """
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            if connection.transport is not None and not connection.closed:
                connection.transport.pause_reading()
        await self._wait_idle()
        for connection in list(self._connections):
            connection.close_for(ReasonCode.SERVER_SHUTTING_DOWN, "the server is shutting down")
        await self._wait_idle()
        for client_id in list(self._delayed_wills):
            self._publish_delayed_will(client_id)
        if self._will_writes:
            await asyncio.wait(self._will_writes)
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        self.auth_executor.shutdown(wait=False, cancel_futures=True)
        self.durability_executor.shutdown(wait=True)

    async def _wait_idle(self) -> None:
        while any(connection.has_work() for connection in (*self._connections, *self._draining)):
            self._idle.clear()
            await self._idle.wait()

    # ------------------------------------------------------------------ connections

    def connection_opened(self, connection: MqttConnection) -> None:
        """Track a new socket; refuse outright far beyond the connection limit."""
        if len(self._connections) >= self.settings.mqtt_max_connections + SOCKET_MARGIN:
            self.counters.add("mqtt_connections_refused")
            if connection.transport is not None:
                connection.transport.abort()
            return
        self._connections.add(connection)
        self.counters.add("mqtt_connections_current")

    def connection_closed(self, connection: MqttConnection) -> None:
        """Forget a closed connection; its queued publishes (and its will) still get written."""
        if connection in self._connections:
            self._connections.discard(connection)
            self.counters.add("mqtt_connections_current", -1)
        if connection.has_work():
            self._draining.add(connection)
        if self._by_client.get(connection.client_id) is connection:
            del self._by_client[connection.client_id]

    def has_room_for(self, client_id: str) -> bool:
        """True below ``mqtt_max_connections``, or when ``client_id`` would replace its own connection."""
        return len(self._by_client) < self.settings.mqtt_max_connections or client_id in self._by_client

    def authenticate(self, username: str | None, password: bytes | None) -> bool:
        """Check credentials (runs on the auth thread: scrypt is slow)."""
        if username is None and password is None and self.settings.mqtt_allow_anonymous:
            return True
        return self.users.verify(username, password)

    def take_over(self, connection: MqttConnection, *, clean_start: bool) -> None:
        """Register ``connection`` under its client id, closing an older connection with the same id.

        A delayed will of the client id — the older connection's included — is settled now: a clean start
        ends the session the will belongs to, so the will is written; a connection that continues the
        session drops it [MQTT-3.1.3-9].
        """
        older = self._by_client.get(connection.client_id)
        if older is not None and older is not connection:
            older.close_for(ReasonCode.SESSION_TAKEN_OVER, "another connection took over this client id")
        self._by_client[connection.client_id] = connection
        if connection.client_id not in self._delayed_wills:
            return
        if clean_start:
            self._publish_delayed_will(connection.client_id)
        else:
            self._delayed_wills.pop(connection.client_id).timer.cancel()

    # ------------------------------------------------------------------ wills

    def delay_will(self, context: FormatContext, will: Will, delay: float) -> None:
        """Write the will of the closed connection of ``context.client_id`` after ``delay`` seconds."""
        timer = asyncio.get_running_loop().call_later(delay, self._publish_delayed_will, context.client_id)
        self._delayed_wills[context.client_id] = _DelayedWill(context, will, timer)

    def _publish_delayed_will(self, client_id: str) -> None:
        context, will, timer = self._delayed_wills.pop(client_id)
        timer.cancel()
        task = asyncio.get_running_loop().create_task(self._write_will(context, will))
        self._will_writes.add(task)
        task.add_done_callback(self._will_writes.discard)

    async def _write_will(self, context: FormatContext, will: Will) -> None:
        """Write a will and wait until it is durable, like the publishes of a connection."""
        try:
            ingested = await self.submit(context, [InboundPublish(will.topic, will.payload, 0, None)])
            await self.await_durable(ingested)
        except Exception as exc:
            log.error("writing the delayed will of client %r failed: %s", context.client_id, exc)

    # ------------------------------------------------------------------ ingestion

    def submit(self, context: FormatContext, batch: list[InboundPublish]) -> asyncio.Future[IngestedBatch]:
        """Format and log one batch on the ingest executor."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.ingest_executor, self.ingestor.ingest, context, batch)

    def await_durable(self, ingested: IngestedBatch) -> asyncio.Future[list[PublishOutcome]]:
        """Wait on the durability thread until a logged batch is durable.

        One thread, so batches become durable — and are acknowledged — in the order they were
        logged; a wait usually returns at once because an earlier fsync already covered it.
        """
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.durability_executor, ingested.wait_durable)

    def batch_done(self, connection: MqttConnection) -> None:
        """Wake :meth:`stop` when the last batch finished."""
        if not connection.has_work():
            self._draining.discard(connection)
            self._idle.set()

    # ------------------------------------------------------------------ time-outs

    async def _sweep(self) -> None:
        connect_timeout = self.settings.mqtt_connect_timeout_in_ms / 1000.0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = time.monotonic()
            for connection in list(self._connections):
                if connection.closed:
                    continue
                if not connection.connected:
                    # The time-out is for sending CONNECT: one that arrived in time is answered, however long
                    # its password check waits behind others.
                    if not connection.authenticating and now - connection.opened_at > connect_timeout:
                        connection.close_for(ReasonCode.MAXIMUM_CONNECT_TIME, "no CONNECT in time")
                    continue
                silent = now - connection.last_activity
                if connection.keep_alive and silent > 1.5 * connection.keep_alive:
                    connection.close_for(ReasonCode.KEEP_ALIVE_TIMEOUT,
                                         f"nothing received for 1.5 x keep alive ({connection.keep_alive} s)")
                elif connection.reader.buffered and silent > connect_timeout:
                    connection.close_for(ReasonCode.MALFORMED_PACKET, "a packet was left incomplete")


class MqttClientDirectory:
    """The server's live connections as an :class:`iotdb_core.fleet.ClientDirectory` (call on the event loop).

    Messages in and out are not counted per connection, so they are ``None``.
    """

    def __init__(self, server: MqttServer) -> None:
        self._server = server

    def clients(self) -> list[ClientInfo]:
        """The connections that completed CONNECT and are open."""
        now_wall, now = time.time(), time.monotonic()
        return [
            ClientInfo(
                client_id=connection.client_id,
                username=connection.username,
                address=connection._peer(),
                protocol={3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5.0"}.get(connection.level, "MQTT"),
                protocol_level=connection.level,
                keep_alive=connection.keep_alive,
                connected_since=now_wall - (now - connection.opened_at),
            )
            for connection in list(self._server._by_client.values())
            if connection.connected and not connection.closed
        ]

    def disconnect(self, client_id: str) -> bool:
        """Close ``client_id``'s connection as an administrative action (its will is published)."""
        connection = self._server._by_client.get(client_id)
        if connection is None or connection.closed:
            return False
        connection.close_for(ReasonCode.ADMINISTRATIVE_ACTION, "disconnected by an administrator")
        return True
