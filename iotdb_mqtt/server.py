"""The asyncio MQTT server: listening socket, live sessions, delayed wills, time-outs, ``$SYS`` topics and
graceful stop. It is the :class:`~iotdb_mqtt.protocol.Host` of every connection's session."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import NamedTuple

from iotdb_core import __version__
from iotdb_core.auth import UserStore
from iotdb_core.config import Settings
from iotdb_core.errors import IoTDBError
from iotdb_core.fleet import ClientInfo
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import ServiceCounters
from iotdb_core.tls import ServerTls
from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.broker.tree import Subscription, SubscriptionOptions, SubscriptionTree
from iotdb_mqtt.codec.packets import Will
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.connection import MqttConnection
from iotdb_mqtt.delivery import ApplicationMessage
from iotdb_mqtt.handoff import GroupHandoff
from iotdb_mqtt.ingest import InboundPublish, IngestedBatch, Ingestor, PublishOutcome
from iotdb_mqtt.protocol import ServerSession, route_all, will_publish
from iotdb_mqtt.reads import SubscriberReads
from iotdb_mqtt.router import Router
from iotdb_mqtt.sessions import SessionStore

log = logging.getLogger("iotdb.mqtt")

#: How often connections are checked for keep-alive and CONNECT time-outs (and the ACL file for changes).
SWEEP_INTERVAL_S = 0.5
#: Topics whose ingestion decision is remembered; beyond it the memo starts again.
_INGEST_MEMO_SIZE = 65536
#: Sockets accepted beyond ``mqtt_max_connections`` before new ones are closed unread; the margin
#: lets refused clients read their CONNACK.
SOCKET_MARGIN = 64


class _DelayedWill(NamedTuple):
    context: FormatContext
    will: Will
    timer: asyncio.TimerHandle


class MqttServer:
    """Accepts MQTT connections, writes their publishes on the ingest executor and routes them."""

    def __init__(self, settings: Settings, ingestor: Ingestor, users: UserStore, counters: ServiceCounters,
                 ingest_executor: Executor, router: Router, acl: TopicAcl, *, tls: ServerTls | None = None) -> None:
        self.settings = settings
        #: MQTT over TLS on ``mqtt_ssl_port`` (None: not served).
        self.tls = tls if settings.mqtt_ssl_port >= 0 else None
        self.ingestor = ingestor
        self.users = users
        self.counters = counters
        self.router = router
        self.acl = acl
        self.sessions = SessionStore()
        self.ingest_executor = ingest_executor
        self.auth_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-auth")
        self.durability_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-durable")
        self._ingest_handoff: GroupHandoff[tuple[FormatContext, list[InboundPublish]], IngestedBatch] = GroupHandoff(
            ingest_executor, self._ingest, workers=settings.mqtt_handler_pool_size)
        # One thread, so batches become durable, and are acknowledged, in the order they were logged.
        self._durable_handoff: GroupHandoff[IngestedBatch, list[PublishOutcome]] = GroupHandoff(
            self.durability_executor, IngestedBatch.wait_durable, settle_each=True)
        self._connections: set[ServerSession] = set()
        #: Closed connections whose received publishes are still being written: :meth:`stop` waits for them too.
        self._draining: set[ServerSession] = set()
        self._by_client: dict[str, ServerSession] = {}
        #: The listening sockets: ``tcp`` (plain, ``mqtt_port``) and ``tls`` (``mqtt_ssl_port``), when served.
        self._listeners: dict[str, asyncio.Server] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sys_publisher: asyncio.Task[None] | None = None
        self._started_at = time.monotonic()
        self._ingest_filters = _ingest_filters(settings.mqtt_ingest_topics)
        self._ingest_memo: dict[str, bool] = {}
        router.may_receive = SubscriberReads(users.authorizer, self.should_ingest)
        self._idle = asyncio.Event()
        self._idle.set()
        self._delayed_wills: dict[str, _DelayedWill] = {}
        self._will_writes: set[asyncio.Task[None]] = set()
        #: Set by :meth:`stop`: sockets stay paused from then on, even when their backlog drains.
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind ``mqtt_host``:``mqtt_port`` and, with TLS, ``mqtt_host``:``mqtt_ssl_port``; a port in use is an
        :class:`IoTDBError` with one clear line."""
        if self.settings.mqtt_port >= 0:
            self._listeners["tcp"] = await self._listen(self.settings.mqtt_port, "mqtt_port", None)
        if self.tls is not None:
            self._listeners["tls"] = await self._listen(self.settings.mqtt_ssl_port, "mqtt_ssl_port", self.tls)
        self._sweeper = asyncio.create_task(self._sweep())
        if self.settings.mqtt_sys_interval:
            self._sys_publisher = asyncio.create_task(self._publish_sys())

    async def _listen(self, port: int, key: str, tls: ServerTls | None) -> asyncio.Server:
        host = self.settings.mqtt_host
        try:
            return await asyncio.get_running_loop().create_server(
                self.protocol_factory, host, port, reuse_address=True, backlog=1024,
                ssl=tls.context if tls is not None else None,
                ssl_handshake_timeout=self.settings.mqtt_connect_timeout_in_ms / 1000.0 if tls is not None else None)
        except OSError as exc:
            for listener in self._listeners.values():
                listener.close()
            if exc.errno == errno.EADDRINUSE:
                raise IoTDBError(f"cannot listen on {host}:{port}: the port is in use "
                                 f"(set {key} to another port)") from None
            raise IoTDBError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def protocol_factory(self) -> MqttConnection:
        """A new connection adapter for any transport (TCP and TLS here; other listeners reuse it)."""
        return MqttConnection(self)

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """The bound host and port of each listener, ``tcp`` and ``tls`` (the real port when 0 was asked)."""
        bound: dict[str, tuple[str, int]] = {}
        for kind, listener in self._listeners.items():
            host, port = listener.sockets[0].getsockname()[:2]
            bound[kind] = (host, port)
        return bound

    async def stop(self) -> None:
        """Stop accepting, finish and acknowledge what was received, close every connection, write the wills.

        Sessions do not outlive the server, so delayed wills are written now rather than lost.
        """
        self.stopping = True
        for listener in self._listeners.values():
            listener.close()
        for connection in list(self._connections):
            if not connection.closed:
                connection.output.pause_reading()
        await self._wait_idle()
        for connection in list(self._connections):
            connection.close_for(ReasonCode.SERVER_SHUTTING_DOWN, "the server is shutting down")
        await self._wait_idle()
        for client_id in list(self._delayed_wills):
            self._publish_delayed_will(client_id)
        if self._will_writes:
            await asyncio.wait(self._will_writes)
        for task in (self._sweeper, self._sys_publisher):
            if task is not None:
                task.cancel()
        for listener in self._listeners.values():
            await listener.wait_closed()
        self.auth_executor.shutdown(wait=False, cancel_futures=True)
        self.durability_executor.shutdown(wait=True)

    async def _wait_idle(self) -> None:
        while any(connection.has_work() for connection in (*self._connections, *self._draining)):
            self._idle.clear()
            await self._idle.wait()

    # ------------------------------------------------------------------ connections

    def connection_opened(self, connection: ServerSession, transport: asyncio.Transport) -> None:
        """Track a new socket; refuse outright far beyond the connection limit."""
        if len(self._connections) >= self.settings.mqtt_max_connections + SOCKET_MARGIN:
            self.counters.add("mqtt_connections_refused")
            transport.abort()
            return
        self._connections.add(connection)
        self.counters.add("mqtt_connections_current")

    def closed(self, connection: ServerSession) -> None:
        """Forget a closed connection; its queued publishes (and its will) still get written."""
        if connection in self._connections:
            self._connections.discard(connection)
            self.counters.add("mqtt_connections_current", -1)
        if connection.has_work():
            self._draining.add(connection)
        if self._by_client.get(connection.client_id) is connection:
            del self._by_client[connection.client_id]

    def live_sessions(self) -> list[ServerSession]:
        """The sessions registered under their client ids (connected, or closing)."""
        return list(self._by_client.values())

    def session_of(self, client_id: str) -> ServerSession | None:
        """The live session of ``client_id``, if any."""
        return self._by_client.get(client_id)

    def close_user_connections(self, names: frozenset[str]) -> None:
        """Close the connections of users who were deleted or whose password changed (MQTT 5: reason 0x87)."""
        for connection in list(self._by_client.values()):
            if connection.username in names:
                connection.close_for(ReasonCode.NOT_AUTHORIZED, "the user was deleted or its password changed")

    def has_room_for(self, client_id: str) -> bool:
        """True below ``mqtt_max_connections``, or when ``client_id`` would replace its own connection."""
        return len(self._by_client) < self.settings.mqtt_max_connections or client_id in self._by_client

    def authenticate(self, username: str | None, password: bytes | None) -> bool:
        """Check credentials (runs on the auth thread: scrypt is slow)."""
        if username is None and password is None and self.settings.mqtt_allow_anonymous:
            return True
        return self.users.verify(username, password)

    def authenticate_identity(self, name: str) -> bool:
        """Accept the CN of a verified client certificate as the user ``name`` (``mqtt_use_identity_as_username``):
        it must name a user."""
        if name in self.users.names():
            return True
        log.info("refusing an MQTT client: its certificate's CN %r names no user", name)
        return False

    def take_over(self, connection: ServerSession, *, clean_start: bool) -> None:
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
        """Write a will, wait until it is durable, then route it, like the publishes of a connection."""
        publishes = [will_publish(self, context.username, context.client_id, will)]
        try:
            ingested = await self.submit(context, publishes)
            await self.await_durable(ingested)
        except Exception as exc:
            log.error("writing the delayed will of client %r failed: %s", context.client_id, exc)
            return
        route_all(self.router, publishes, context.client_id)

    # ------------------------------------------------------------------ ingestion

    def submit(self, context: FormatContext, batch: list[InboundPublish]) -> asyncio.Future[IngestedBatch]:
        """Format and log one batch on the ingest executor, keeping its retained messages.

        Batches queued while an ingest thread is busy are taken by it in one go (see :mod:`iotdb_mqtt.handoff`).
        """
        return self._ingest_handoff.submit((context, batch))

    def _ingest(self, item: tuple[FormatContext, list[InboundPublish]]) -> IngestedBatch:
        context, batch = item
        ingested = self.ingestor.ingest(context, batch)
        for publish in batch:
            if publish.retain and publish.write and not publish.refusal:
                self.router.store_retained(ApplicationMessage.received(
                    publish.topic, publish.payload, publish.qos, True, publish.properties, context.client_id))
        return ingested

    def should_ingest(self, topic: str) -> bool:
        """True if publishes to ``topic`` are written to the database (``mqtt_ingest_topics``), not only routed."""
        memo = self._ingest_memo
        decision = memo.get(topic)
        if decision is None:
            if len(memo) >= _INGEST_MEMO_SIZE:
                memo.clear()
            decision = memo[topic] = bool(self._ingest_filters.match(topic, None))
        return decision

    def await_durable(self, ingested: IngestedBatch) -> asyncio.Future[list[PublishOutcome]]:
        """Wait on the durability thread until a logged batch is durable.

        One thread, so batches become durable — and are acknowledged — in the order they were
        logged; a wait usually returns at once because an earlier fsync already covered it.
        """
        return self._durable_handoff.submit(ingested)

    def sync_sessions(self) -> asyncio.Future[None]:
        """Make the persistent sessions' log durable on the durability thread, after the fsyncs queued there."""
        return asyncio.get_running_loop().run_in_executor(self.durability_executor, self.router.sync)

    def batch_done(self, connection: ServerSession) -> None:
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
                connection.check_timeouts(now, connect_timeout)
                connection.output.report_counters()
            self.router.expire_sessions()
            self._reload_acl()

    def _reload_acl(self) -> None:
        """Apply ACL changes made while running (``iotdb acl``); a broken file keeps the rules in force."""
        try:
            if self.acl.reload():
                log.info("MQTT topic ACL reloaded")
        except IoTDBError as exc:
            log.error("%s; the previous rules stay in force", exc)

    # ------------------------------------------------------------------ $SYS

    async def _publish_sys(self) -> None:
        while True:
            self.router.publish_sys(self.sys_values())
            await asyncio.sleep(self.settings.mqtt_sys_interval)

    def sys_values(self) -> list[tuple[str, str]]:
        """The ``$SYS/broker/...`` topics and their values, named as Mosquitto names them."""
        counters = self.counters.snapshot()
        return [
            ("$SYS/broker/version", f"iotdb-py {__version__}"),
            ("$SYS/broker/uptime", f"{int(time.monotonic() - self._started_at)} seconds"),
            ("$SYS/broker/clients/connected", str(len(self._by_client))),
            ("$SYS/broker/clients/total", str(self.router.session_count)),
            ("$SYS/broker/messages/received", str(counters.get("mqtt_publishes_received", 0))),
            ("$SYS/broker/messages/sent", str(counters.get("mqtt_messages_sent", 0))),
            ("$SYS/broker/messages/dropped", str(counters.get("mqtt_messages_dropped", 0))),
            ("$SYS/broker/subscriptions/count", str(len(self.router.tree))),
            ("$SYS/broker/retained messages/count", str(self.router.retained_count)),
            ("$SYS/broker/bytes/received", str(counters.get("mqtt_bytes_received", 0))),
            ("$SYS/broker/bytes/sent", str(counters.get("mqtt_bytes_sent", 0))),
        ]


def _ingest_filters(text: str) -> SubscriptionTree:
    """The filters of ``mqtt_ingest_topics`` as a tree matched like subscriptions."""
    tree = SubscriptionTree()
    for topic_filter in (part.strip() for part in text.split(",")):
        if topic_filter:
            tree.subscribe(Subscription("ingest", topic_filter, SubscriptionOptions(0)))
    return tree


class MqttClientDirectory:
    """The server's live connections as an :class:`iotdb_core.fleet.ClientDirectory` (call on the event loop).

    Messages in are the PUBLISH packets the client sent; messages out the copies its session sent to it.
    """

    def __init__(self, server: MqttServer) -> None:
        self._server = server

    def clients(self) -> list[ClientInfo]:
        """The sessions that completed CONNECT and are open."""
        now_wall, now = time.time(), time.monotonic()
        return [
            ClientInfo(
                client_id=session.client_id,
                username=session.username,
                address=session.peer,
                protocol={3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5.0"}.get(session.level, "MQTT"),
                protocol_level=session.level,
                keep_alive=session.keep_alive,
                connected_since=now_wall - (now - session.opened_at),
                messages_in=session.messages_in,
                messages_out=session.subscriber.queue.sent if session.subscriber is not None else 0,
            )
            for session in self._server.live_sessions()
            if session.connected and not session.closed
        ]

    def disconnect(self, client_id: str) -> bool:
        """Close ``client_id``'s connection as an administrative action (its will is published)."""
        session = self._server.session_of(client_id)
        if session is None or session.closed:
            return False
        session.close_for(ReasonCode.ADMINISTRATIVE_ACTION, "disconnected by an administrator")
        return True
