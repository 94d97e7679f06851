"""The native RPC service bound to ``rpc_address``:``rpc_port``, in the event loop of ``iotdb serve``."""

from __future__ import annotations

import asyncio
import errno
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from iotdb_core.auth import UserStore
from iotdb_core.config import Settings
from iotdb_core.errors import IoTDBError
from iotdb_core.metrics import ServiceCounters
from iotdb_core.rpc.handler import RpcContext
from iotdb_core.rpc.transport import FramedConnection, connection_factory
from iotdb_core.tls import ServerTls

__all__ = ["RPC_WORKERS", "RpcServer"]

#: Threads running RPC calls. Inserts wait there for their fsync, so several clients' writes share one
#: group commit; queries and decoding hold the GIL only part of the time (numpy).
RPC_WORKERS = 16
#: Connections the kernel queues before the loop accepts them (10,000 clients may arrive at once).
_BACKLOG = 4096
#: Seconds a client has to complete the TLS handshake.
TLS_HANDSHAKE_TIMEOUT = 10.0


class RpcServer:
    """IoTDB's ``IClientRPCService`` over framed Thrift on one listening socket (``rpc_port=0``: a free port),
    over TLS with ``tls`` (``enable_thrift_ssl``)."""

    def __init__(self, engine: Any, settings: Settings, users: UserStore, *, tls: ServerTls | None = None,
                 counters: ServiceCounters | None = None) -> None:
        self.settings = settings
        self.tls = tls
        self.context = RpcContext(engine, settings, users, counters)
        self.executor = ThreadPoolExecutor(RPC_WORKERS, thread_name_prefix="iotdb-rpc")
        self.connections: set[FramedConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and serve; a port in use is an :class:`IoTDBError` with one clear line."""
        host, port = str(self.settings.rpc_address), int(self.settings.rpc_port)
        factory = connection_factory(self.context, self.executor, int(self.settings.thrift_max_frame_size),
                                     self.connections)
        try:
            self._server = await asyncio.get_running_loop().create_server(
                factory, host, port, backlog=_BACKLOG, reuse_address=True,
                ssl=self.tls.context if self.tls is not None else None,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self.tls is not None else None)
        except OSError as exc:
            self.executor.shutdown(wait=False)
            if exc.errno == errno.EADDRINUSE:
                raise IoTDBError(
                    f"cannot serve RPC on {host}:{port}: the port is in use (set rpc_port to another port)"
                ) from None
            raise IoTDBError(f"cannot serve RPC on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when ``rpc_port=0``)."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        """Stop accepting, let each connection's running call finish and send its reply, close them all."""
        if self._server is not None:
            self._server.close()
            self._server = None
        connections = list(self.connections)
        await asyncio.gather(*(connection.drain() for connection in connections), return_exceptions=True)
        for connection in connections:
            connection.close()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown, True)
