"""The ``IClientRPCService`` calls: sessions, inserts, schema, statements and result paging.

One :class:`ConnectionHandler` serves one connection; the generated ``Processor`` calls its methods with the
decoded request structs on an RPC worker thread. Every method answers with a ``TSStatus`` (or a response
carrying one): client mistakes — a wrong session id, buffers that disagree with their counts, an unknown type
code, a statement error — are statuses with IoTDB's codes and a message saying what was wrong, never an
exception, so nothing reaches the log as a traceback. Calls this server does not implement answer
UNSUPPORTED_OPERATION (300) naming the call.

Writes go to the engine that serves MQTT and REST; an insert's status is sent only once its points are durable
per ``wal_mode``. Statements run through :func:`iotdb_core.query.execute` as the session's user, as REST's do.
Calls that reach the engine directly check the user's privileges first (IoTDB's rules, status 803): inserts
WRITE_DATA on every series of the call, ``deleteData`` WRITE_DATA on the series it matches, ``deleteStorageGroups``
MANAGE_DATABASE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from iotdb.thrift.common.ttypes import TSStatus
from iotdb.thrift.rpc import IClientRPCService as generated
from iotdb.thrift.rpc.ttypes import (
    ServerProperties,
    TSConnectionInfoResp,
    TSExecuteStatementResp,
    TSFetchResultsResp,
    TSGetTimeZoneResp,
    TSOpenSessionResp,
    TSProtocolVersion,
)

from iotdb_core import __version__
from iotdb_core.auth import UserStore
from iotdb_core.authz import ADMIN, AccessDenied, Privilege
from iotdb_core.backend import SupportsTabletWrites
from iotdb_core.config import Settings
from iotdb_core.datatypes import Compressor, TSEncoding
from iotdb_core.metrics import QUERY_DURATION, ServiceCounters
from iotdb_core.model import Tablet
from iotdb_core.paths import PathError, canonical_node, split_path
from iotdb_core.query import MetadataResult, QueryError, ResultSet, ast, execute, parse
from iotdb_core.query.errors import ILLEGAL_PATH
from iotdb_core.query.security import denied
from iotdb_core.rpc import status as st
from iotdb_core.rpc.records import as_tablets
from iotdb_core.rpc.sessions import ClientSession, next_id, parse_zone
from iotdb_core.rpc.tsblock import ResultPages, pages_of
from iotdb_core.rpc.values import data_type_of, decode_record, decode_tablet

__all__ = ["ConnectionHandler", "RpcContext"]

log = logging.getLogger("iotdb.rpc")

_T = TypeVar("_T")
SERVER_PROTOCOL = TSProtocolVersion.IOTDB_SERVICE_PROTOCOL_V3
#: Rows per TsBlock when a request gives no (or a non-positive) fetch size (the client's default).
DEFAULT_FETCH_SIZE = 5000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_ENCODINGS = {0: "PLAIN", 1: "DICTIONARY", 2: "RLE", 3: "DIFF", 4: "TS_2DIFF", 5: "BITMAP", 6: "GORILLA_V1",
              7: "REGULAR", 8: "GORILLA", 9: "ZIGZAG", 11: "CHIMP", 12: "SPRINTZ", 13: "RLBE"}
_COMPRESSORS = {0: "UNCOMPRESSED", 1: "SNAPPY", 2: "GZIP", 3: "LZO", 4: "SDT", 5: "PAA", 6: "PLA", 7: "LZ4",
                8: "ZSTD", 9: "LZMA2"}
_AGGREGATIONS = {0: "COUNT", 1: "AVG", 2: "SUM", 3: "FIRST_VALUE", 4: "LAST_VALUE", 5: "MAX_TIME", 6: "MIN_TIME",
                 7: "MAX_VALUE", 8: "MIN_VALUE", 9: "EXTREME"}
_UNIT = {"ms": "ms", "us": "us", "ns": "ns"}


class _NotLoggedIn(Exception):
    """The request names a session this connection has not opened."""


@dataclass(frozen=True)
class RpcContext:
    """What every connection shares: the engine, the users, the settings."""

    engine: Any
    settings: Settings
    users: UserStore
    counters: ServiceCounters | None = None
    """Where query latencies go (``query_duration_seconds``, ``surface="rpc"``), when the service keeps them."""


def _resp(status: TSStatus) -> TSExecuteStatementResp:
    return TSExecuteStatementResp(status=status)


class ConnectionHandler(generated.Iface):
    """The calls of one connection (``Processor(handler)``); its sessions end with it."""

    def __init__(self, context: RpcContext) -> None:
        self.context = context
        self.engine = context.engine
        self.settings = context.settings
        self.sessions: dict[int, ClientSession] = {}

    def close(self) -> None:
        """The connection ended: drop its sessions and their results.

        Called on the event loop while a call may still run on a worker thread: the dict is replaced, not
        cleared, so that call's lookups finish on the old one.
        """
        self.sessions = {}

    # ------------------------------------------------------------------------------------------- plumbing

    def _session(self, session_id: Any) -> ClientSession:
        session = self.sessions.get(session_id) if isinstance(session_id, int) else None
        if session is None:
            raise _NotLoggedIn(session_id)
        return session

    def _guard(self, session_id: Any, call: Callable[[ClientSession], _T], fail: Callable[[TSStatus], _T]) -> _T:
        """Run ``call`` for the session; client errors become ``fail(status)``."""
        try:
            return call(self._session(session_id))
        except _NotLoggedIn:
            return fail(st.status(st.NOT_LOGIN, f"session {session_id!r} is not open on this connection; "
                                                "call openSession first"))
        except Exception as exc:
            try:
                return fail(st.from_exception(exc))
            except Exception:
                log.exception("RPC call failed")
                return fail(st.status(st.INTERNAL_SERVER_ERROR,
                                      "INTERNAL_SERVER_ERROR: the call failed; see the server log"))

    def _status_call(self, session_id: Any, call: Callable[[ClientSession], TSStatus]) -> TSStatus:
        return self._guard(session_id, call, lambda status: status)

    # ------------------------------------------------------------------------------------------- sessions

    def openSession(self, req: Any) -> TSOpenSessionResp:
        def refuse(code: int, message: str) -> TSOpenSessionResp:
            return TSOpenSessionResp(status=st.status(code, message), serverProtocolVersion=SERVER_PROTOCOL)

        configuration = req.configuration or {}
        dialect = str(configuration.get("sql_dialect", "tree")).lower()
        if dialect != "tree":
            return refuse(st.INCOMPATIBLE_VERSION, f"sql_dialect {dialect!r} is not supported: this server speaks "
                                                   "IoTDB's tree model only (sql_dialect=tree)")
        if req.client_protocol is None or req.client_protocol < SERVER_PROTOCOL:
            return refuse(st.INCOMPATIBLE_VERSION, f"client protocol {req.client_protocol} is not supported; "
                                                   "this server speaks IOTDB_SERVICE_PROTOCOL_V3")
        if not self.context.users.verify(req.username, req.password):
            return refuse(st.WRONG_LOGIN_PASSWORD, f"Authentication failed for user {req.username!r}: "
                                                   "wrong user name or password")
        zone_name = req.zoneId or "UTC"
        try:
            zone = parse_zone(zone_name)
        except ValueError as exc:
            return refuse(st.SEMANTIC_ERROR, str(exc))
        session = ClientSession(next_id(), str(req.username), zone_name, zone)
        self.sessions[session.session_id] = session
        return TSOpenSessionResp(
            status=st.success(), serverProtocolVersion=SERVER_PROTOCOL, sessionId=session.session_id,
            configuration={"timestamp_precision": str(self.settings.timestamp_precision), "version": __version__},
        )

    def closeSession(self, req: Any) -> TSStatus:
        def close(session: ClientSession) -> TSStatus:
            self.sessions.pop(session.session_id, None)
            return st.success()

        return self._status_call(req.sessionId, close)

    def requestStatementId(self, sessionId: Any) -> int:
        return next_id() if sessionId in self.sessions else -1

    def getTimeZone(self, sessionId: Any) -> TSGetTimeZoneResp:
        return self._guard(
            sessionId, lambda s: TSGetTimeZoneResp(st.success(), s.zone_name),
            lambda status: TSGetTimeZoneResp(status, ""),
        )

    def setTimeZone(self, req: Any) -> TSStatus:
        def set_zone(session: ClientSession) -> TSStatus:
            try:
                session.zone = parse_zone(str(req.timeZone))
            except ValueError as exc:
                return st.status(st.SEMANTIC_ERROR, str(exc))
            session.zone_name = str(req.timeZone)
            return st.success()

        return self._status_call(req.sessionId, set_zone)

    def getProperties(self) -> ServerProperties:
        return ServerProperties(
            version=__version__, supportedTimeAggregationOperations=list(_AGGREGATIONS.values()),
            timestampPrecision=str(self.settings.timestamp_precision), maxConcurrentClientNum=0,
            thriftMaxFrameSize=int(self.settings.thrift_max_frame_size), isReadOnly=False, buildInfo="iotdb-py",
        )

    def fetchAllConnectionsInfo(self) -> TSConnectionInfoResp:
        return TSConnectionInfoResp(connectionInfoList=[])

    # ------------------------------------------------------------------------------------------- inserts

    def _require(self, session: ClientSession, privilege: Privilege, paths: list[str] | None = None) -> None:
        """803 naming the privilege and paths unless the session's user holds ``privilege`` globally
        (``paths`` None) or on every one of ``paths``."""
        if session.user == ADMIN:
            return
        try:
            self.context.users.authorizer.check(session.user, privilege, paths)
        except AccessDenied as exc:
            raise denied(exc) from None

    def _may_write(self, session: ClientSession, devices: list[Any], measurements: list[Any]) -> None:
        """803 unless the user holds WRITE_DATA on every series of the insert: as in IoTDB, one refused
        series refuses the whole call (of every device), and nothing is written."""
        if session.user != ADMIN:
            self._require(session, Privilege.WRITE_DATA, _series_paths(devices, measurements))

    def _wrote(self, result: Any, what: str) -> TSStatus:
        return st.from_write(result, what)

    def insertTablet(self, req: Any) -> TSStatus:
        def insert(session: ClientSession) -> TSStatus:
            where = f"insertTablet {req.prefixPath}"
            self._may_write(session, [req.prefixPath], [req.measurements])
            tablet = decode_tablet(where, list(req.measurements or []), list(req.types or []), int(req.size or 0),
                                   req.timestamps or b"", req.values or b"")
            result = self.engine.insert_tablet(req.prefixPath, tablet.timestamps, req.measurements, tablet.columns,
                                               tablet.types)
            return self._wrote(result, where)

        return self._status_call(req.sessionId, insert)

    def insertTablets(self, req: Any) -> TSStatus:
        def insert(session: ClientSession) -> TSStatus:
            lists = (req.prefixPaths, req.measurementsList, req.valuesList, req.timestampsList, req.typesList,
                     req.sizeList)
            counts = {len(items or []) for items in lists}
            if len(counts) != 1:
                raise st.BadRequest("insertTablets: prefixPaths, measurementsList, valuesList, timestampsList, "
                                    "typesList and sizeList differ in length")
            self._may_write(session, list(req.prefixPaths or []), list(req.measurementsList or []))
            decoded = [
                (device, measurements, decode_tablet(f"insertTablets tablet {index} ({device})", list(measurements),
                                                     list(types), int(size), stamps, values))
                for index, (device, measurements, values, stamps, types, size) in enumerate(zip(*lists, strict=True))
            ]
            if isinstance(self.engine, SupportsTabletWrites):
                tablets = [Tablet(device, t.timestamps, list(measurements), t.arrays, t.types, t.nulls)
                           for device, measurements, t in decoded]
                return self._wrote(self.engine.write_tablets(tablets), "insertTablets")
            failures = [self._wrote(self.engine.insert_tablet(device, t.timestamps, measurements, t.columns, t.types),
                                    f"insertTablets {device}") for device, measurements, t in decoded]
            return _combined(failures)

        return self._status_call(req.sessionId, insert)

    def _records(self, session: ClientSession, devices: list[Any], timestamps: list[Any], measurements: list[Any],
                 values: list[Any], what: str, *, typed: bool) -> TSStatus:
        if not (len(devices) == len(timestamps) == len(measurements) == len(values)):
            raise st.BadRequest(f"{what}: devices, timestamps, measurements and values differ in length")
        self._may_write(session, devices, measurements)
        values_list: list[list[Any]] = []
        types_list: list[Any] = []
        for index, (given, raw) in enumerate(zip(measurements, values, strict=True)):
            names = list(given or [])
            if typed:
                decoded, kinds = decode_record(f"{what} record {index}", len(names), raw or b"")
                values_list.append(decoded)
                types_list.append(kinds)
            else:
                if len(raw or []) != len(names):
                    raise st.BadRequest(f"{what} record {index}: {len(names)} measurements but "
                                        f"{len(raw or [])} values")
                values_list.append(list(raw))
                types_list.append(None)
        if typed and len(devices) > 1 and isinstance(self.engine, SupportsTabletWrites):
            tablets = as_tablets(devices, timestamps, measurements, values_list, types_list)
            if tablets is not None:
                return self._wrote(self.engine.write_tablets(tablets), what)
        measurements_list = [list(m) for m in measurements]
        if len(set(devices)) > 1:
            # One device's records side by side (a stable sort keeps their order, so the last write of a
            # timestamp still wins): long runs of a device are validated column by column by the engine.
            order = sorted(range(len(devices)), key=devices.__getitem__)
            devices, timestamps = [devices[i] for i in order], [timestamps[i] for i in order]
            measurements_list = [measurements_list[i] for i in order]
            values_list, types_list = [values_list[i] for i in order], [types_list[i] for i in order]
        result = self.engine.insert_records(devices, timestamps, measurements_list, values_list, types_list)
        return self._wrote(result, what)

    def insertRecord(self, req: Any) -> TSStatus:
        return self._status_call(req.sessionId, lambda s: self._records(
            s, [req.prefixPath], [req.timestamp], [req.measurements], [req.values], "insertRecord", typed=True))

    def insertStringRecord(self, req: Any) -> TSStatus:
        return self._status_call(req.sessionId, lambda s: self._records(
            s, [req.prefixPath], [req.timestamp], [req.measurements], [req.values], "insertStringRecord", typed=False))

    def insertRecords(self, req: Any) -> TSStatus:
        return self._status_call(req.sessionId, lambda s: self._records(
            s, list(req.prefixPaths or []), list(req.timestamps or []), list(req.measurementsList or []),
            list(req.valuesList or []), "insertRecords", typed=True))

    def insertStringRecords(self, req: Any) -> TSStatus:
        return self._status_call(req.sessionId, lambda s: self._records(
            s, list(req.prefixPaths or []), list(req.timestamps or []), list(req.measurementsList or []),
            list(req.valuesList or []), "insertStringRecords", typed=False))

    def insertRecordsOfOneDevice(self, req: Any) -> TSStatus:
        stamps = list(req.timestamps or [])
        return self._status_call(req.sessionId, lambda s: self._records(
            s, [req.prefixPath] * len(stamps), stamps, list(req.measurementsList or []), list(req.valuesList or []),
            "insertRecordsOfOneDevice", typed=True))

    def insertStringRecordsOfOneDevice(self, req: Any) -> TSStatus:
        stamps = list(req.timestamps or [])
        return self._status_call(req.sessionId, lambda s: self._records(
            s, [req.prefixPath] * len(stamps), stamps, list(req.measurementsList or []), list(req.valuesList or []),
            "insertStringRecordsOfOneDevice", typed=False))

    # --------------------------------------------------------------------------------------------- schema

    def _run(self, session: ClientSession, statement: ast.Statement | str) -> Any:
        return execute(self.engine, statement, settings=self.settings, zone=session.zone,
                       session=self.context.users.session(session.user))

    def setStorageGroup(self, sessionId: Any, storageGroup: Any) -> TSStatus:
        def create(session: ClientSession) -> TSStatus:
            self._run(session, ast.CreateDatabase(_path(storageGroup)))
            return st.success()

        return self._status_call(sessionId, create)

    def _create_series(self, session: ClientSession, path: Any, data_type: Any, encoding: Any,
                       compressor: Any) -> None:
        where = f"createTimeseries {path}"
        kind = data_type_of(int(data_type), where)
        statement = ast.CreateTimeseries(
            _path(path), kind.value, _enum_name(_ENCODINGS, encoding, TSEncoding, "encoding", where),
            _enum_name(_COMPRESSORS, compressor, Compressor, "compressor", where),
        )
        self._run(session, statement)

    def createTimeseries(self, req: Any) -> TSStatus:
        def create(session: ClientSession) -> TSStatus:
            self._create_series(session, req.path, req.dataType, req.encoding, req.compressor)
            return st.success()

        return self._status_call(req.sessionId, create)

    def createMultiTimeseries(self, req: Any) -> TSStatus:
        def create(session: ClientSession) -> TSStatus:
            paths = list(req.paths or [])
            types, encodings, compressors = (list(x or []) for x in (req.dataTypes, req.encodings, req.compressors))
            if not (len(paths) == len(types) == len(encodings) == len(compressors)):
                raise st.BadRequest("createMultiTimeseries: paths, dataTypes, encodings and compressors differ "
                                    "in length")
            statuses = [
                self._create_status(session, path, data_type, encoding, compressor)
                for path, data_type, encoding, compressor in zip(paths, types, encodings, compressors, strict=True)
            ]
            return _combined(statuses)

        return self._status_call(req.sessionId, create)

    def createAlignedTimeseries(self, req: Any) -> TSStatus:
        def create(session: ClientSession) -> TSStatus:
            measurements = list(req.measurements or [])
            statuses = [
                self._create_status(session, f"{req.prefixPath}.{m}", d, e, c)
                for m, d, e, c in zip(measurements, req.dataTypes or [], req.encodings or [], req.compressors or [],
                                      strict=False)
            ]
            return _combined(statuses)

        return self._status_call(req.sessionId, create)

    def _create_status(self, session: ClientSession, path: Any, data_type: Any, encoding: Any,
                       compressor: Any) -> TSStatus:
        """One series of a multi-series create: its own status, so one failure does not hide the others."""
        try:
            self._create_series(session, path, data_type, encoding, compressor)
        except Exception as exc:
            return st.from_exception(exc)
        return st.success()

    def deleteTimeseries(self, sessionId: Any, path: Any) -> TSStatus:
        def delete(session: ClientSession) -> TSStatus:
            self._run(session, ast.DeleteTimeseries(tuple(_path(p, wildcards=True) for p in path or [])))
            return st.success()

        return self._status_call(sessionId, delete)

    def deleteStorageGroups(self, sessionId: Any, storageGroup: Any) -> TSStatus:
        def delete(session: ClientSession) -> TSStatus:
            self._require(session, Privilege.MANAGE_DATABASE)
            for database in storageGroup or []:
                pattern = str(_path(database)) + ".**"
                if self.engine.list_series(pattern):
                    self.engine.delete_timeseries(pattern)
            return st.success()

        return self._status_call(sessionId, delete)

    def deleteData(self, req: Any) -> TSStatus:
        def delete(session: ClientSession) -> TSStatus:
            start = None if req.startTime is None or req.startTime <= INT64_MIN else int(req.startTime)
            end = None if req.endTime is None or req.endTime >= INT64_MAX else int(req.endTime)
            patterns = [str(_path(path, wildcards=True)) for path in req.paths or []]
            if session.user != ADMIN:
                matched = {series.path for pattern in patterns for series in self.engine.list_series(pattern)}
                self._require(session, Privilege.WRITE_DATA, sorted(matched))
            for pattern in patterns:
                self.engine.delete(pattern, start, end)
            return st.success()

        return self._status_call(req.sessionId, delete)

    # ------------------------------------------------------------------------------------------ statements

    def _execute(self, session: ClientSession, statement: str, fetch_size: Any) -> TSExecuteStatementResp:
        """Parse and run ``statement``; a query's first page is encoded. The time taken, failures included,
        goes into the query latency histogram."""
        started = time.perf_counter()
        try:
            outcome = self._run(session, parse(str(statement)))
            if not isinstance(outcome, (ResultSet, MetadataResult)):
                return _resp(st.success())
            pages = pages_of(outcome)
            query_id = session.add_query(pages)
            return self._query_resp(pages, query_id, fetch_size)
        finally:
            counters = self.context.counters
            if counters is not None:
                counters.histogram(QUERY_DURATION).observe(time.perf_counter() - started, "rpc")

    def _query_resp(self, pages: ResultPages, query_id: int, fetch_size: Any) -> TSExecuteStatementResp:
        size = fetch_size if isinstance(fetch_size, int) and fetch_size > 0 else DEFAULT_FETCH_SIZE
        return TSExecuteStatementResp(
            status=st.success(), queryId=query_id, columns=pages.names, dataTypeList=pages.type_names,
            ignoreTimeStamp=pages.ignore_timestamp,
            columnNameIndexMap={name: index for index, name in enumerate(pages.names)},
            queryResult=pages.next_page(size), moreData=pages.more,
        )

    def _statement_call(self, req: Any) -> TSExecuteStatementResp:
        return self._guard(req.sessionId, lambda s: self._execute(s, req.statement, req.fetchSize), _resp)

    def executeStatementV2(self, req: Any) -> TSExecuteStatementResp:
        return self._statement_call(req)

    def executeQueryStatementV2(self, req: Any) -> TSExecuteStatementResp:
        return self._statement_call(req)

    def executeUpdateStatementV2(self, req: Any) -> TSExecuteStatementResp:
        return self._statement_call(req)

    def _select(self, session: ClientSession, items: str, where: str, tail: str, fetch_size: Any,
                *, last: bool = False) -> TSExecuteStatementResp:
        sql = f"SELECT {'LAST ' if last else ''}{items} FROM root{where}{tail}"
        return self._execute(session, sql, fetch_size)

    def executeRawDataQueryV2(self, req: Any) -> TSExecuteStatementResp:
        def run(session: ClientSession) -> TSExecuteStatementResp:
            items = ", ".join(_suffix(path) for path in req.paths or [])
            where = f" WHERE time >= {int(req.startTime)} AND time < {int(req.endTime)}"
            return self._select(session, items, where, "", req.fetchSize)

        return self._guard(req.sessionId, run, _resp)

    def executeLastDataQueryV2(self, req: Any) -> TSExecuteStatementResp:
        def run(session: ClientSession) -> TSExecuteStatementResp:
            items = ", ".join(_suffix(path) for path in req.paths or [])
            where = "" if req.time is None or req.time <= INT64_MIN else f" WHERE time >= {int(req.time)}"
            return self._select(session, items, where, "", req.fetchSize, last=True)

        return self._guard(req.sessionId, run, _resp)

    def executeAggregationQueryV2(self, req: Any) -> TSExecuteStatementResp:
        def run(session: ClientSession) -> TSExecuteStatementResp:
            paths, functions = list(req.paths or []), list(req.aggregations or [])
            if len(paths) != len(functions):
                raise st.BadRequest(f"executeAggregationQuery: {len(paths)} paths but {len(functions)} aggregations")
            items = ", ".join(f"{_aggregation(code)}({_suffix(path)})" for path, code in zip(paths, functions,
                                                                                               strict=True))
            unit = _UNIT[str(self.settings.timestamp_precision)]
            if req.interval is not None:
                if req.startTime is None or req.endTime is None:
                    raise st.BadRequest("executeAggregationQuery: an interval needs startTime and endTime")
                step = f", {int(req.slidingStep)}{unit}" if req.slidingStep else ""
                tail = f" GROUP BY ([{int(req.startTime)}, {int(req.endTime)}), {int(req.interval)}{unit}{step})"
                return self._select(session, items, "", tail, req.fetchSize)
            bounds = []
            if req.startTime is not None:
                bounds.append(f"time >= {int(req.startTime)}")
            if req.endTime is not None:
                bounds.append(f"time < {int(req.endTime)}")
            where = f" WHERE {' AND '.join(bounds)}" if bounds else ""
            return self._select(session, items, where, "", req.fetchSize)

        return self._guard(req.sessionId, run, _resp)

    def _query_session(self, req: Any) -> Any:
        """The session of a fetch or close: the one on this connection holding ``req.queryId``.

        The apache-iotdb client sends its statement id in ``sessionId`` on these calls (and IoTDB, which binds
        a session to its connection, ignores the field), so the query id decides; a connection without an
        open session is answered NOT_LOGIN.
        """
        for session in self.sessions.values():
            if req.queryId in session.queries:
                return session.session_id
        if req.sessionId in self.sessions:
            return req.sessionId
        return next(iter(self.sessions), None)

    def fetchResultsV2(self, req: Any) -> TSFetchResultsResp:
        def fetch(session: ClientSession) -> TSFetchResultsResp:
            pages = session.queries.get(req.queryId)
            if pages is None:
                return TSFetchResultsResp(
                    status=st.status(st.EXECUTE_STATEMENT_ERROR, f"query {req.queryId!r} is not open in session "
                                                                 f"{session.session_id} (closed or never started)"),
                    hasResultSet=False, isAlign=True, moreData=False)
            size = req.fetchSize if isinstance(req.fetchSize, int) and req.fetchSize > 0 else DEFAULT_FETCH_SIZE
            blocks = pages.next_page(size)
            if not pages.more:
                session.queries.pop(req.queryId, None)
            return TSFetchResultsResp(status=st.success(), hasResultSet=bool(blocks), isAlign=True,
                                      queryResult=blocks, moreData=pages.more)

        return self._guard(self._query_session(req), fetch,
                           lambda status: TSFetchResultsResp(status=status, hasResultSet=False, isAlign=True,
                                                             moreData=False))

    def closeOperation(self, req: Any) -> TSStatus:
        def close(session: ClientSession) -> TSStatus:
            if req.queryId is not None:
                session.queries.pop(req.queryId, None)
            return st.success()

        return self._status_call(self._query_session(req), close)

    def cancelOperation(self, req: Any) -> TSStatus:
        return self.closeOperation(req)


def _combined(statuses: list[TSStatus]) -> TSStatus:
    """One status for several: success, the only failure, or MULTIPLE_ERROR with every status."""
    failed = [status for status in statuses if status.code != st.SUCCESS_STATUS]
    if not failed:
        return st.success()
    if len(failed) == 1:
        return failed[0]
    message = "; ".join(f"{status.code}: {status.message}" for status in failed[:st.FAILED_POINTS_SHOWN])
    return TSStatus(code=st.MULTIPLE_ERROR, message=message, subStatus=statuses)


def _series_paths(devices: list[Any], measurements: list[Any]) -> list[str]:
    """The canonical series paths an insert names (``device.measurement``), sorted and without repeats."""
    paths: set[str] = set()
    for device, names in zip(devices, measurements, strict=True):
        if not isinstance(device, str):
            raise QueryError(ILLEGAL_PATH, f"device {device!r} is not text")
        try:
            prefix = ".".join(canonical_node(node) for node in split_path(device))
            paths.update(f"{prefix}.{canonical_node(str(name))}" for name in names or [])
        except PathError as exc:
            raise QueryError(ILLEGAL_PATH, f"device {device!r}: {exc}") from None
    return sorted(paths)


def _path(text: Any, *, wildcards: bool = False) -> ast.Path:
    if not isinstance(text, str):
        raise QueryError(ILLEGAL_PATH, f"path {text!r} is not text")
    try:
        return ast.Path(split_path(text, allow_wildcards=wildcards))
    except PathError as exc:
        raise QueryError(ILLEGAL_PATH, str(exc)) from None


def _suffix(text: Any) -> str:
    """A full series path as a SELECT item under ``FROM root``."""
    nodes = _path(text).nodes
    if len(nodes) < 3 or nodes[0] != "root":
        raise QueryError(ILLEGAL_PATH, f"path {text!r} is not a series path root.<database>...<measurement>")
    return ".".join(nodes[1:])


def _aggregation(code: Any) -> str:
    name = _AGGREGATIONS.get(code) if isinstance(code, int) else None
    if name is None:
        raise st.BadRequest(f"aggregation type {code!r} is not supported (supported: "
                            f"{', '.join(f'{k} {v}' for k, v in _AGGREGATIONS.items())})")
    return name


def _enum_name(codes: dict[int, str], code: Any, kind: type, what: str, where: str) -> str | None:
    if code is None:
        return None
    name = codes.get(code) if isinstance(code, int) else None
    if name is None:
        raise st.BadRequest(f"{where}: {what} code {code!r} is out of range")
    known = {member.value for member in kind}  # type: ignore[attr-defined]
    if name not in known:
        raise QueryError(st.SEMANTIC_ERROR, f"{where}: {what} {name} is not supported (supported: "
                                            f"{', '.join(sorted(known))})")
    return name


def _unsupported(name: str) -> Callable[..., Any]:
    """A method answering UNSUPPORTED_OPERATION in the shape of ``name``'s response."""
    spec = getattr(generated, f"{name}_result").thrift_spec[0]
    response_type = spec[3][0]

    def refuse(_self: ConnectionHandler, *_args: Any) -> Any:
        status = st.status(st.UNSUPPORTED_OPERATION, f"{name} is not supported by this server")
        return status if response_type is TSStatus else response_type(status=status)

    refuse.__name__ = name
    return refuse


for _name in generated.Processor(None)._processMap:
    if _name not in ConnectionHandler.__dict__:
        setattr(ConnectionHandler, _name, _unsupported(_name))
