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
from iotdb_core.errors import ConfigError
from iotdb_core.fleet import ClientRegistry
from iotdb_core.gc_tuning import tune_for_serving
from iotdb_core.metrics import COUNTERS, ServiceCounters, plugin_figures
from iotdb_core.tls import ServerTls, TlsListeners
from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.broker.retained import RetainedStore
from iotdb_mqtt.broker.session_log import SessionLog
from iotdb_mqtt.delivery import QueueLimits
from iotdb_mqtt.ingest import Ingestor
from iotdb_mqtt.router import Router
from iotdb_mqtt.server import MqttClientDirectory, MqttServer
from iotdb_mqtt.tap import MqttTopicTap
from iotdb_mqtt.upstream import UpstreamConfig, UpstreamIngestion
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


def mqtt_tls(settings: Settings, listeners: TlsListeners) -> ServerTls | None:
    """The TLS of MQTT over TLS and secure WebSocket, after checking the MQTT listener keys fit together."""
    if not settings.enable_mqtt_service:
        return None
    secure_ports = (settings.mqtt_ssl_port, settings.mqtt_wss_port)
    tls = listeners.for_listener("mqtt") if any(port >= 0 for port in secure_ports) else None
    served = [settings.mqtt_port, settings.mqtt_ws_port, *(secure_ports if tls is not None else ())]
    if all(port < 0 for port in served):
        raise ConfigError("no MQTT listener is left: mqtt_port and mqtt_ws_port are -1 and MQTT over TLS is off "
                          "(set ssl_certfile and ssl_keyfile to serve it on mqtt_ssl_port; or set "
                          "enable_mqtt_service=false)")
    if settings.mqtt_use_identity_as_username and (tls is None or tls.client_auth == "none"):
        raise ConfigError("mqtt_use_identity_as_username=true needs client certificates on MQTT over TLS: set "
                          "ssl_client_auth (or mqtt_ssl_client_auth) to optional or required, with ssl_cafile")
    return tls


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
    tls = TlsListeners(settings)  # bad TLS files fail the start before anything is opened
    rest_tls = tls.for_listener("rest", required_by="enable_https") if settings.enable_https else None
    rpc_tls = tls.for_listener("rpc", required_by="enable_thrift_ssl") if settings.enable_thrift_ssl else None
    broker_tls = mqtt_tls(settings, tls)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, tls.reload)  # new handshakes get the new certificates
    data_dir = Path(settings.data_dir)
    engine = open_engine(runtime)
    executor = ThreadPoolExecutor(settings.mqtt_handler_pool_size, thread_name_prefix="iotdb-ingest")
    server: MqttServer | None = None
    rest: Any = None
    websockets: list[WebSocketListener] = []
    users: UserStore | None = None
    rpc: Any = None
    upstream: UpstreamIngestion | None = None
    try:
        upstream_config = UpstreamConfig.from_settings(settings)
        if upstream_config is not None and not settings.enable_mqtt_service:
            raise ConfigError("mqtt_upstream_uris is set but enable_mqtt_service=false: upstream ingestion runs in "
                              "the MQTT service")
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
            rest = RestServer(engine, settings, users, counters, console=console, tls=rest_tls,
                              figures=lambda: plugin_figures(runtime.plugins))
            await rest.start()
            host, port = rest.address
            log.info("iotdb %s serving REST %son %s:%d", __version__, "over HTTPS " if rest_tls else "", host, port)
            log.info("web console at %s://%s:%d/", rest.scheme, host, port)
        runtime.plugins.register(FlushObserver(counters), name="iotdb-flush-metrics")
        if settings.enable_rpc_service:
            from iotdb_core.rpc import RpcServer  # noqa: PLC0415 - thrift only when serving RPC

            rpc = RpcServer(engine, settings, users, tls=rpc_tls, counters=counters)
            await rpc.start()
            host, port = rpc.address
            log.info("iotdb %s serving RPC %son %s:%d", __version__, "over TLS " if rpc_tls else "", host, port)
        if settings.enable_mqtt_service:
            ingestor = Ingestor(runtime.plugins, engine, dead_letters, counters, users.authorizer)
            router = open_router(settings, data_dir, counters)
            server = MqttServer(settings, ingestor, users, counters, executor, router, TopicAcl(data_dir),
                                tls=broker_tls)
            users.on_change(_closing_connections_of(server, loop))
            await server.start()
            clients.register(MqttClientDirectory(server))
            clients.register_tap(MqttTopicTap(server.router, server.acl))
            _log_mqtt_listeners(server, settings, data_dir)
            served: list[ServerTls | None] = [None] if settings.mqtt_ws_port >= 0 else []
            if broker_tls is not None and settings.mqtt_wss_port >= 0:
                served.append(broker_tls)
            for ws_tls in served:
                websocket = WebSocketListener(settings, server.protocol_factory, tls=ws_tls)
                websockets.append(websocket)
                await websocket.start()
                host, port = websocket.address
                log.info("iotdb %s serving MQTT over %s on %s:%d, path %s", __version__,
                         "secure WebSocket" if ws_tls else "WebSocket", host, port, websocket.path)
            if upstream_config is not None:
                upstream = UpstreamIngestion(server, upstream_config)
                upstream.start()
        else:
            log.info("iotdb %s running without MQTT (enable_mqtt_service=false), data directory %s",
                     __version__, data_dir.resolve())
        tune_for_serving()
        await stop.wait()
        log.info("shutting down: finishing in-flight publishes")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if upstream is not None:
            await upstream.stop()
        if rest is not None:
            await rest.stop()
        for websocket in websockets:
            await websocket.stop_accepting()
        if rpc is not None:
            await rpc.stop()
        if server is not None:
            await server.stop()
            server.router.close()
        for websocket in websockets:
            await websocket.close()
        executor.shutdown(wait=True)
        if users is not None:
            users.close()
        engine.close()
        log.info("stopped")


def _log_mqtt_listeners(server: MqttServer, settings: Settings, data_dir: Path) -> None:
    """One line per MQTT socket listener; the first names the formatter and the data directory."""
    details = f" with formatter {settings.mqtt_payload_formatter!r}, data directory {data_dir.resolve()}"
    for kind, (host, port) in server.addresses.items():
        over = " over TLS" if kind == "tls" else ""
        log.info("iotdb %s serving MQTT%s on %s:%d%s", __version__, over, host, port, details)
        details = ""


def open_router(settings: Settings, data_dir: Path, counters: ServiceCounters) -> Router:
    """The broker's router, with the retained messages kept in ``<data_dir>/mqtt/retained`` and the persistent
    sessions in ``<data_dir>/mqtt/sessions``."""
    retained = RetainedStore.open(data_dir / MQTT_DIR / "retained", max_count=settings.mqtt_retained_max_count,
                                  max_bytes=settings.mqtt_retained_max_bytes)
    sessions = SessionLog.open(data_dir / MQTT_DIR / "sessions",
                               max_messages_per_session=settings.mqtt_max_queued_messages)
    limits = QueueLimits(settings.mqtt_max_queued_messages, settings.mqtt_max_queued_bytes,
                         settings.mqtt_max_inflight_messages)
    return Router(limits, counters, retained, settings.mqtt_max_stored_sessions, sessions,
                  max_subscriptions=settings.mqtt_max_subscriptions,
                  max_subscriptions_per_client=settings.mqtt_max_subscriptions_per_client)
