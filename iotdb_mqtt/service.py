"""Running the database with its MQTT service until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from iotdb_core import __version__
from iotdb_core.auth import UserStore
from iotdb_core.bootstrap import Runtime, open_engine
from iotdb_core.deadletter import DeadLetterLog
from iotdb_core.metrics import COUNTERS, ServiceCounters
from iotdb_mqtt.ingest import Ingestor
from iotdb_mqtt.server import MqttServer

log = logging.getLogger("iotdb.serve")


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
    rpc: Any = None
    try:
        users = UserStore.open(data_dir)
        counters = ServiceCounters(COUNTERS)
        dead_letters = DeadLetterLog(data_dir, settings.mqtt_dead_letter_max_bytes)
        if settings.enable_rest_service:
            from iotdb_core.rest import REST_COUNTERS, RestServer  # noqa: PLC0415 - aiohttp only when serving REST

            counters = ServiceCounters([*COUNTERS, *REST_COUNTERS])
            rest = RestServer(engine, settings, users, counters)
            await rest.start()
            host, port = rest.address
            log.info("iotdb %s serving REST on %s:%d", __version__, host, port)
        if settings.enable_rpc_service:
            from iotdb_core.rpc import RpcServer  # noqa: PLC0415 - thrift only when serving RPC

            rpc = RpcServer(engine, settings, users)
            await rpc.start()
            host, port = rpc.address
            log.info("iotdb %s serving RPC on %s:%d", __version__, host, port)
        if settings.enable_mqtt_service:
            ingestor = Ingestor(runtime.plugins, engine, dead_letters, counters)
            server = MqttServer(settings, ingestor, users, counters, executor)
            await server.start()
            host, port = server.address
            log.info("iotdb %s serving MQTT on %s:%d with formatter %r, data directory %s",
                     __version__, host, port, settings.mqtt_payload_formatter, data_dir.resolve())
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
        if rpc is not None:
            await rpc.stop()
        if server is not None:
            await server.stop()
        executor.shutdown(wait=True)
        engine.close()
        log.info("stopped")
