"""The asyncio side of upstream ingestion: one link per broker, each reconnecting with backoff and jitter.

:class:`UpstreamConnection` is the adapter of one socket: it feeds the socket's events to its
:class:`~iotdb_mqtt.upstream.session.ClientSession` and carries out its actions. Batches go through the very
path a direct client's publishes take — :meth:`MqttServer.submit` (formatter, dead-letter log, counters, on the
ingest threads), :meth:`MqttServer.await_durable` (the durability thread), then routing to local subscribers —
so only durable messages are acknowledged to the broker. :class:`UpstreamLink` keeps one broker connected;
:class:`UpstreamIngestion` runs a link per configured broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import TYPE_CHECKING, cast

from iotdb_core.backoff import Backoff
from iotdb_core.errors import ConfigError
from iotdb_core.formatter import FormatContext
from iotdb_mqtt.ingest import InboundPublish, IngestedBatch, PublishOutcome
from iotdb_mqtt.protocol import route_all
from iotdb_mqtt.upstream.config import BrokerUri, UpstreamConfig
from iotdb_mqtt.upstream.session import ClientSession, SessionOptions, State, UpstreamBatch

if TYPE_CHECKING:
    from iotdb_mqtt.server import MqttServer

log = logging.getLogger("iotdb.mqtt.upstream")

#: How often keep alive and the CONNACK time-out are checked.
TICK_S = 0.5
#: First reconnect delay; it doubles per failed attempt up to ``mqtt_upstream_reconnect_max_in_ms``.
RECONNECT_BASE_S = 0.5
#: Seconds a connection attempt (TCP and TLS handshake) may take.
CONNECT_TIMEOUT_S = 10.0
#: Seconds :meth:`UpstreamLink.stop` waits for the in-flight batches to be acknowledged.
STOP_TIMEOUT_S = 30.0
#: A read smaller than this, with a batch delay configured, holds the socket unread for a quarter of the delay.
COALESCE_BELOW_BYTES = 16384


class UpstreamConnection(asyncio.Protocol):
    """One socket to an upstream broker, driven by asyncio."""

    def __init__(self, server: MqttServer, link_name: str, options: SessionOptions) -> None:
        self.server = server
        self.link_name = link_name
        self.transport: asyncio.Transport | None = None
        self.session = ClientSession(options, self, now=time.monotonic())
        self.context = FormatContext(client_id=f"{options.client_id}@{link_name}", username=None, qos=options.qos,
                                     protocol_level=options.protocol_level)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.accepted = False
        self._ticker: asyncio.TimerHandle | None = None
        self._batch_timer: asyncio.TimerHandle | None = None
        #: With a batch delay, how long a small read leaves the socket unread so that the next read takes
        #: what arrived meanwhile in one go, instead of waking the loop for every packet the broker writes.
        self._hold_s = options.batch_delay / 4
        self._holding: asyncio.TimerHandle | None = None
        self._session_paused = False
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, so this is not an isinstance check).
        self.transport = cast(asyncio.Transport, transport)
        self.session.start(time.monotonic())
        self._schedule_tick()

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, time.monotonic())
        if self._hold_s and len(data) < COALESCE_BELOW_BYTES and self._holding is None and not self._session_paused:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                self._holding = asyncio.get_running_loop().call_later(self._hold_s, self._release)

    def _release(self) -> None:
        self._holding = None
        if not self._session_paused:
            self._resume_transport()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._batch_timer is not None:
            self._batch_timer.cancel()
        if self._holding is not None:
            self._holding.cancel()
        self.session.connection_lost()
        if self.accepted:
            self.server.counters.add("mqtt_upstream_connections_current", -1)
        if not self.done.done():
            self.done.set_result(None)

    def _schedule_tick(self) -> None:
        self._ticker = asyncio.get_running_loop().call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        self.session.tick(time.monotonic())
        if self.session.state is not State.CLOSED:
            self._schedule_tick()

    def call_later(self, delay: float) -> None:
        self._batch_timer = asyncio.get_running_loop().call_later(delay, self._batch_due)

    def _batch_due(self) -> None:
        self._batch_timer = None
        self.session.batch_due(time.monotonic())

    async def wait_idle(self) -> None:
        """Wait until no batch of this connection is being written or awaited."""
        await self._idle.wait()

    # ------------------------------------------------------------------ actions of the session

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause_reading(self) -> None:
        self._session_paused = True
        if self._holding is None and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        self._session_paused = False
        if self._holding is None:
            self._resume_transport()

    def _resume_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connected(self, session_present: bool) -> None:
        self.accepted = True
        self.server.counters.add("mqtt_upstream_connects_total")
        self.server.counters.add("mqtt_upstream_connections_current")
        log.info("connected to upstream broker %s as %r (session present: %s)", self.link_name,
                 self.session.options.client_id, "yes" if session_present else "no")

    def subscribed(self, refused: list[tuple[str, int]]) -> None:
        for topic_filter, code in refused:
            log.error("upstream broker %s refused the subscription %r (code 0x%02X); nothing arrives for it",
                      self.link_name, topic_filter, code)
        if not refused:
            log.info("subscribed at %s to %s", self.link_name, ", ".join(self.session.options.subscriptions))

    def submit(self, batch: UpstreamBatch) -> None:
        publishes = batch.publishes
        self.server.counters.add("mqtt_upstream_messages_received", len(publishes))
        self._outstanding += 1
        self._idle.clear()
        future = self.server.submit(self.context, publishes)
        future.add_done_callback(lambda done: self._logged(batch, publishes, done))

    def _logged(self, batch: UpstreamBatch, publishes: list[InboundPublish],
                done: asyncio.Future[IngestedBatch]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self.session.batch_failed(batch, error)
            self._finished()
            return
        # The batch's acknowledgements are already encoded: unless local subscribers are to get the messages,
        # let go of them (and of their rows) now rather than after the fsync, so that far fewer objects live long
        # enough to reach the collector's oldest generation, whose full collections were the largest cost of
        # ingesting from a broker.
        batch.publishes = []
        routed = publishes if len(self.server.router.tree) else None
        self.session.batch_logged(batch, time.monotonic())
        durable = self.server.await_durable(done.result())
        durable.add_done_callback(lambda finished: self._durable(batch, routed, finished))

    def _durable(self, batch: UpstreamBatch, publishes: list[InboundPublish] | None,
                 done: asyncio.Future[list[PublishOutcome]]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self.session.batch_failed(batch, error)
            self._finished()
            return
        router = self.server.router
        if publishes is not None:
            route_all(router, publishes, self.context.client_id)
        if not router.needs_sync:
            self._acknowledge(batch)
            return
        # Copies queued for persistent local sessions are made durable before the broker hears back.
        synced = self.server.sync_sessions()
        synced.add_done_callback(lambda finished: self._synced(batch, finished))

    def _synced(self, batch: UpstreamBatch, done: asyncio.Future[None]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            self.session.batch_failed(batch, error)
            self._finished()
            return
        self._acknowledge(batch)

    def _acknowledge(self, batch: UpstreamBatch) -> None:
        acknowledged = self.session.batch_durable(batch, time.monotonic())
        if acknowledged:
            self.server.counters.add("mqtt_upstream_messages_acknowledged", acknowledged)
        self._finished()

    def _finished(self) -> None:
        self._outstanding -= 1
        if not self._outstanding:
            self._idle.set()


class UpstreamLink:
    """Keeps one upstream broker connected: connect, run until the connection ends, back off, again."""

    def __init__(self, server: MqttServer, broker: BrokerUri, options: SessionOptions, reconnect_max_s: float,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.server = server
        self.broker = broker
        self.options = options
        self.name = broker.address
        self._ssl = ssl_context
        self._backoff = Backoff(RECONNECT_BASE_S, reconnect_max_s)
        self._stopping = asyncio.Event()
        self._connection: UpstreamConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin connecting (in the background)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"upstream {self.name}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            connection = UpstreamConnection(self.server, self.name, self.options)
            try:
                await asyncio.wait_for(self._connect(connection), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self.server.counters.add("mqtt_upstream_connect_failures")
                delay = self._backoff.next_delay()
                log.warning("cannot connect to upstream broker %s: %s; retrying in %.1f s", self.name,
                            _describe(exc), delay)
                await self._sleep(delay)
                continue
            self._connection = connection
            if self._stopping.is_set():  # stop() came while connecting
                connection.session.disconnect(time.monotonic())
            await connection.done
            await connection.wait_idle()
            self._connection = None
            if self._stopping.is_set():
                return
            if connection.accepted:
                self._backoff.reset()
            else:
                self.server.counters.add("mqtt_upstream_connect_failures")
            delay = self._backoff.next_delay()
            log.warning("connection to upstream broker %s ended: %s; reconnecting in %.1f s", self.name,
                        connection.session.close_reason or "closed", delay)
            await self._sleep(delay)

    async def _connect(self, connection: UpstreamConnection) -> None:
        await asyncio.get_running_loop().create_connection(
            lambda: connection, self.broker.host, self.broker.port, ssl=self._ssl,
            server_hostname=self.broker.host if self._ssl else None)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        """Finish writing and acknowledging what arrived, DISCONNECT (the broker keeps the session), stop."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.session.disconnect(time.monotonic())
            try:
                await asyncio.wait_for(asyncio.shield(connection.done), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("upstream broker %s: in-flight messages not acknowledged within %.0f s; they are "
                            "redelivered after the restart", self.name, STOP_TIMEOUT_S)
                connection.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.wait_idle(), STOP_TIMEOUT_S)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class UpstreamIngestion:
    """One :class:`UpstreamLink` per configured broker."""

    def __init__(self, server: MqttServer, config: UpstreamConfig) -> None:
        self.config = config
        self.links = [
            UpstreamLink(server, broker, _session_options(config, index, broker, server.settings.mqtt_max_message_size),
                         config.reconnect_max_s, _ssl_context(config) if broker.tls else None)
            for index, broker in enumerate(config.brokers)
        ]

    def start(self) -> None:
        """Start connecting to every broker."""
        for link in self.links:
            log.info("ingesting from upstream broker %s: %s, QoS %d, client id %r", link.name,
                     ", ".join(self.config.subscriptions), self.config.qos, link.options.client_id)
            link.start()

    async def stop(self) -> None:
        """Stop every link (acknowledging what was written)."""
        await asyncio.gather(*(link.stop() for link in self.links))


def _session_options(config: UpstreamConfig, index: int, broker: BrokerUri, max_packet_size: int) -> SessionOptions:
    return SessionOptions(
        client_id=config.client_id_for(index),
        subscriptions=config.subscriptions,
        qos=config.qos,
        protocol_level=config.protocol_level,
        username=broker.username,
        password=broker.password.encode("utf-8") if broker.password is not None else None,
        keep_alive=config.keep_alive,
        session_expiry=config.session_expiry,
        receive_maximum=config.receive_maximum,
        max_packet_size=max_packet_size,
        batch_delay=config.batch_delay_s,
    )


def _ssl_context(config: UpstreamConfig) -> ssl.SSLContext:
    """TLS 1.2 or later with certificate and host name verification, against ``mqtt_upstream_cafile`` or the
    system's CAs; an unreadable or invalid CA file is a one-line :class:`ConfigError`."""
    try:
        context = ssl.create_default_context(cafile=config.cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"mqtt_upstream_cafile={config.cafile}: cannot load CA certificates: {reason}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no connection within {CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
