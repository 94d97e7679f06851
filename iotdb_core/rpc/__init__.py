"""IoTDB's native client protocol (``IClientRPCService``, framed Thrift) so ``apache-iotdb`` clients connect.

Modules: ``server`` (listening socket, start/stop), ``transport`` (framed transport on asyncio, frame limits,
protocol choice), ``handler`` (the calls), ``sessions`` (per-connection sessions), ``values`` (decoding tablets
and records), ``tsblock`` (encoding results), ``status`` (TSStatus codes), ``client`` (the CLI's client).
See ``docs/clients.md``.
"""

from iotdb_core.rpc.server import RpcServer

__all__ = ["RpcServer"]
