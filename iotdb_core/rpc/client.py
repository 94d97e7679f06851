"""A small client of the native protocol for the CLI: one session over the generated Thrift client.

It speaks what ``apache-iotdb``'s Session speaks (framed transport, binary protocol, protocol V3), but returns
results as numpy columns with null masks decoded from the TsBlocks (``tsblock_serde.deserialize``), which the
CLI turns into the REST API's JSON shape, and it raises :class:`RpcStatusError` with the status code instead of
parsing it back out of a message.
"""

from __future__ import annotations

import datetime as _dt
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from iotdb.thrift.rpc.IClientRPCService import Client
from iotdb.thrift.rpc.ttypes import (
    TSCloseOperationReq,
    TSCloseSessionReq,
    TSExecuteStatementReq,
    TSFetchResultsReq,
    TSInsertTabletReq,
    TSOpenSessionReq,
    TSProtocolVersion,
)
from iotdb.tsfile.utils.tsblock_serde import deserialize
from iotdb.utils.IoTDBConstants import TSDataType as WireType
from iotdb.utils.Tablet import Tablet
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TSSLSocket, TTransport

from iotdb_core.datatypes import TSDataType
from iotdb_core.rpc.status import SUCCESS_STATUS

__all__ = ["RpcClient", "RpcConnectionError", "RpcResult", "RpcStatusError", "local_zone"]

# thrift logs a failed connect at ERROR before raising; the caller reports the exception in one line instead.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
logging.getLogger("thrift.transport.TSSLSocket").setLevel(logging.CRITICAL)

_NUMPY = {
    TSDataType.BOOLEAN: np.dtype(np.bool_), TSDataType.INT32: np.dtype(np.int32),
    TSDataType.INT64: np.dtype(np.int64), TSDataType.FLOAT: np.dtype(np.float32),
    TSDataType.DOUBLE: np.dtype(np.float64),
}


class RpcStatusError(Exception):
    """The server answered a status other than success."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RpcConnectionError(Exception):
    """The server could not be reached, or the connection broke."""


def local_zone() -> str:
    """This machine's UTC offset as ``+HH:MM`` (dates without an offset in statements are read in it)."""
    offset = _dt.datetime.now().astimezone().utcoffset() or _dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _transport_failure(exc: TTransport.TTransportException) -> RpcConnectionError:
    """One line: thrift's message, with the TLS reason when the handshake failed (a certificate not trusted)."""
    message = str(exc.message or exc)
    inner = getattr(exc, "inner", None)
    if isinstance(inner, ssl.SSLCertVerificationError):
        message += f": TLS: {inner.verify_message or inner.reason}"
    elif isinstance(inner, ssl.SSLError):
        message += f": TLS: {inner.reason or inner}"
    return RpcConnectionError(message)


def _check(status: Any) -> None:
    if status.code != SUCCESS_STATUS:
        raise RpcStatusError(int(status.code), str(status.message))


@dataclass
class RpcResult:
    """A query result: column names and types, int64 timestamps (None without a time column), and per column
    the values (full length) with a null mask (None: no null)."""

    names: list[str]
    types: list[TSDataType]
    timestamps: np.ndarray | None
    columns: list[np.ndarray]
    nulls: list[np.ndarray | None]

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else (0 if self.timestamps is None else len(self.timestamps))


class RpcClient:
    """One open session on ``host:port`` (over TLS with ``ssl_context``); every failure is :class:`RpcStatusError` or
    :class:`RpcConnectionError`."""

    def __init__(self, host: str, port: int, user: str, password: str, *, timeout: float = 300.0,
                 zone: str | None = None, fetch_size: int = 10_000, ssl_context: ssl.SSLContext | None = None) -> None:
        self.description = f"{host}:{port}"
        self.fetch_size = fetch_size
        socket = (TSocket.TSocket(host, port) if ssl_context is None
                  else TSSLSocket.TSSLSocket(host, port, ssl_context=ssl_context))
        socket.setTimeout(int(timeout * 1000))
        self._transport = TTransport.TFramedTransport(socket)
        self._client = Client(TBinaryProtocol.TBinaryProtocolAccelerated(self._transport))
        try:
            self._transport.open()
            response = self._client.openSession(TSOpenSessionReq(
                TSProtocolVersion.IOTDB_SERVICE_PROTOCOL_V3, zone or local_zone(), user, password,
                {"version": "V_1_0", "sql_dialect": "tree"}))
        except TTransport.TTransportException as exc:
            if self._transport.isOpen():  # thrift's TLS socket cannot close what never opened
                self._transport.close()
            raise _transport_failure(exc) from None
        if response.status.code != SUCCESS_STATUS:
            self._transport.close()
            _check(response.status)
        self.session_id = response.sessionId
        self.precision = str((response.configuration or {}).get("timestamp_precision", "ms"))
        self.statement_id = self._call(self._client.requestStatementId, self.session_id)

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except TTransport.TTransportException as exc:
            raise RpcConnectionError(str(exc.message or exc)) from None

    def execute(self, sql: str) -> RpcResult | None:
        """Run one statement: its result, or None when it returns no rows."""
        request = TSExecuteStatementReq(self.session_id, sql, self.statement_id, self.fetch_size)
        response = self._call(self._client.executeStatementV2, request)
        _check(response.status)
        if response.queryId is None:  # the server keeps a query id only for statements that return rows
            return None
        types = [TSDataType.parse(name) for name in response.dataTypeList]
        blocks = list(self._blocks(response))
        return _assemble(response.columns, types, not response.ignoreTimeStamp, blocks)

    def _blocks(self, response: Any) -> Iterator[bytes]:
        yield from response.queryResult or []
        more = response.moreData
        try:
            while more:
                fetched = self._call(self._client.fetchResultsV2, TSFetchResultsReq(
                    self.session_id, "", self.fetch_size, response.queryId, True, 0, self.statement_id))
                _check(fetched.status)
                yield from fetched.queryResult or []
                more = fetched.moreData and fetched.hasResultSet
        finally:
            if response.moreData:
                self._call(self._client.closeOperation,
                           TSCloseOperationReq(self.session_id, response.queryId, self.statement_id))

    def insert_tablet(self, device: str, timestamps: list[int], measurements: list[str], types: list[TSDataType],
                      columns: list[list[Any]]) -> None:
        """Write one device's rows column by column (None: no value)."""
        wire = [WireType[data_type.value] for data_type in types]
        rows = [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in timestamps]
        tablet = Tablet(device, measurements, wire, rows, timestamps)
        request = TSInsertTabletReq(self.session_id, device, measurements, tablet.get_binary_values(),
                                    tablet.get_binary_timestamps(), [int(t) for t in wire], len(timestamps), False)
        _check(self._call(self._client.insertTablet, request))

    def close(self) -> None:
        try:
            self._client.closeSession(TSCloseSessionReq(self.session_id))
        except TTransport.TTransportException:
            pass
        finally:
            self._transport.close()


def _assemble(names: list[str], types: list[TSDataType], with_time: bool, blocks: list[bytes]) -> RpcResult:
    """Decode TsBlocks into whole columns."""
    stamps: list[np.ndarray] = []
    parts: list[list[tuple[np.ndarray, np.ndarray | None]]] = [[] for _ in names]
    for block in blocks:
        times, values, nulls, count = deserialize(memoryview(block))
        stamps.append(np.asarray(times, dtype=np.int64))
        for index, data_type in enumerate(types):
            parts[index].append(_full(values[index], nulls[index], int(count), data_type))
    columns, masks = [], []
    for chunks, data_type in zip(parts, types, strict=True):
        if chunks:
            columns.append(np.concatenate([values for values, _ in chunks]))
            any_null = any(mask is not None for _, mask in chunks)
            masks.append(np.concatenate([np.zeros(len(v), bool) if m is None else m for v, m in chunks])
                         if any_null else None)
        else:
            columns.append(np.empty(0, dtype=_NUMPY.get(data_type, np.dtype(object))))
            masks.append(None)
    timestamps = (np.concatenate(stamps) if stamps else np.empty(0, np.int64)) if with_time else None
    return RpcResult(list(names), types, timestamps, columns, masks)


def _full(values: Any, nulls: Any, count: int, data_type: TSDataType) -> tuple[np.ndarray, np.ndarray | None]:
    mask = None if nulls is None else np.asarray(nulls, dtype=bool)
    if data_type is TSDataType.TEXT:
        present = [item.decode("utf-8", "replace") for item in values]
        out = np.full(count, None, dtype=object)
        if mask is None:
            out[:] = present
        else:
            out[~mask] = present
        return out, mask
    dtype = _NUMPY[data_type]
    if data_type is TSDataType.BOOLEAN or mask is None:
        return np.asarray(values, dtype=dtype)[:count], mask
    out = np.zeros(count, dtype=dtype)
    out[~mask] = np.asarray(values, dtype=dtype)
    return out, mask
