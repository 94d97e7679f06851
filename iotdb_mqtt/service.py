"""Running the database with its MQTT service until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from iotdb_core import __version__
from iotdb_core.auth import UserStore
from iotdb_core.bootstrap import Runtime, open_engine
from iotdb_core.config import Settings
from iotdb_core.deadletter import DeadLetterLog
from iotdb_core.engine_metrics import FlushObserver
from iotdb_core.fleet import ClientRegistry
from iotdb_core.metrics import COUNTERS, ServiceCounters
from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.broker.retained import RetainedStore
from iotdb_mqtt.broker.session_log import SessionLog
from iotdb_mqtt.delivery import QueueLimits
from iotdb_mqtt.ingest import Ingestor
from iotdb_mqtt.router import Router
from iotdb_mqtt.server import MqttClientDirectory, MqttServer
from iotdb_mqtt.tap import MqttTopicTap
from iotdb_mqtt.websocket import WebSocketListener

log = logging.getLogger("iotdb.serve")

#: The broker's own state under the data directory (retained messages, stored sessions).
MQTT_DIR = "mqtt"


def _closing_connections_of(server: MqttServer, loop: asyncio.AbstractEventLoop) -> Callable[[frozenset[str]], None]:
    """A user-store subscriber closing, on the event loop, the connections of deleted or changed users."""

    def changed(names: frozenset[str]) -> None:
        if names:
            loop.call_soon_threadsafe(server.close_user_connections, names)

    return changed


async def run_service(runtime: Runtime, stop: asyncio.Event | None = None) -> None:
    """Open the engine, serve MQTT (and REST when ``enable_rest_service``) until ``stop`` is set (or a signal
    arrives), then shut down cleanly.

    Shutdown order: stop the REST service (running requests finish), stop accepting MQTT, finish in-flight
    publishes and send their acknowledgements, close the connections, then close the engine (which flushes
    memtables and closes the WAL). Both services share one counter set, so ``GET /metrics`` shows MQTT's.
    """
    settings = runtime.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    data_dir = Path(settings.data_dir)
    engine = open_engine(runtime)
    executor = ThreadPoolExecutor(settings.mqtt_handler_pool_size, thread_name_prefix="iotdb-ingest")
    server: MqttServer | None = None
    rest: Any = None
    websocket: WebSocketListener | None = None
    users: UserStore | None = None
    rpc: Any = None
    try:
        users = UserStore.open(data_dir)
        users.watch()  # `iotdb user ...` from another process applies within WATCH_INTERVAL_S
        if not users.created_root and users.root_has_default_password():
            log.warning("user 'root' still has the default password; change it with `iotdb user passwd root` "
                        "or ALTER USER root SET PASSWORD '...'")
        counters = ServiceCounters(COUNTERS)
        dead_letters = DeadLetterLog(data_dir, settings.mqtt_dead_letter_max_bytes)
        clients = ClientRegistry()
        if settings.enable_rest_service:
            from iotdb_core.console import Console  # noqa: PLC0415 - aiohttp only when serving REST
            from iotdb_core.rest import REST_COUNTERS, RestServer  # noqa: PLC0415 - aiohttp only when serving REST

            counters = ServiceCounters([*COUNTERS, *REST_COUNTERS])
            console = Console(engine, settings, users, counters, dead_letters=dead_letters, clients=clients,
                              plugins=runtime.plugins)
            rest = RestServer(engine, settings, users, counters, console=console)
            await rest.start()
            host, port = rest.address
            log.info("iotdb %s serving REST on %s:%d", __version__, host, port)
            log.info("web console at http://%s:%d/", host, port)
        runtime.plugins.register(FlushObserver(counters), name="iotdb-flush-metrics")
        if settings.enable_rpc_service:
            from iotdb_core.rpc import RpcServer  # noqa: PLC0415 - thrift only when serving RPC

            rpc = RpcServer(engine, settings, users)
            await rpc.start()
            host, port = rpc.address
            log.info("iotdb %s serving RPC on %s:%d", __version__, host, port)
        if settings.enable_mqtt_service:
            ingestor = Ingestor(runtime.plugins, engine, dead_letters, counters, users.authorizer)
            router = open_router(settings, data_dir, counters)
            server = MqttServer(settings, ingestor, users, counters, executor, router, TopicAcl(data_dir))
            users.on_change(_closing_connections_of(server, loop))
            await server.start()
            clients.register(MqttClientDirectory(server))
            clients.register_tap(MqttTopicTap(server.router, server.acl))
            host, port = server.address
            log.info("iotdb %s serving MQTT on %s:%d with formatter %r, data directory %s",
                     __version__, host, port, settings.mqtt_payload_formatter, data_dir.resolve())
            if settings.mqtt_ws_port >= 0:
                websocket = WebSocketListener(settings, server.protocol_factory)
                await websocket.start()
                host, port = websocket.address
                log.info("iotdb %s serving MQTT over WebSocket on %s:%d, path %s",
                         __version__, host, port, websocket.path)
        else:
            log.info("iotdb %s running without MQTT (enable_mqtt_service=false), data directory %s",
                     __version__, data_dir.resolve())
        await stop.wait()
        log.info("shutting down: finishing in-flight publishes")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if rest is not None:
            await rest.stop()
        if websocket is not None:
            await websocket.stop_accepting()
        if rpc is not None:
            await rpc.stop()
        if server is not None:
            await server.stop()
            server.router.close()
        if websocket is not None:
            await websocket.close()
        executor.shutdown(wait=True)
        if users is not None:
            users.close()
        engine.close()
        log.info("stopped")


def open_router(settings: Settings, data_dir: Path, counters: ServiceCounters) -> Router:
    """The broker's router, with the retained messages kept in ``<data_dir>/mqtt/retained`` and the persistent
    sessions in ``<data_dir>/mqtt/sessions``."""
    retained = RetainedStore.open(data_dir / MQTT_DIR / "retained", max_count=settings.mqtt_retained_max_count,
                                  max_bytes=settings.mqtt_retained_max_bytes)
    sessions = SessionLog.open(data_dir / MQTT_DIR / "sessions",
                               max_messages_per_session=settings.mqtt_max_queued_messages)
    limits = QueueLimits(settings.mqtt_max_queued_messages, settings.mqtt_max_queued_bytes,
                         settings.mqtt_max_inflight_messages)
    return Router(limits, counters, retained, settings.mqtt_max_stored_sessions, sessions)
