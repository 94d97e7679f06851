"""The REST service: IoTDB's REST API v2 on aiohttp, in the event loop of ``iotdb serve``.

Routes (see ``docs/rest.md``)::

    GET  /ping                   no authentication
    POST /rest/v2/query          {"sql", "row_limit"?}  -> column-major result
    POST /rest/v2/nonQuery       {"sql"}                -> status
    POST /rest/v2/insertTablet   {"device", "timestamps", "measurements", "data_types", "values", "is_aligned"?}
    POST /rest/v2/insertRecords  {"devices", "timestamps", "measurements_list", "data_types_list", "values_list"}
    GET  /metrics                Prometheus text

Status conventions follow IoTDB's REST service: statement errors are HTTP 200 with IoTDB's code in the body
(``{"code": 700, "message": ...}``); authentication failures are HTTP 401 (codes 600, 603). Bodies that are not
valid JSON or lack fields are HTTP 400 (codes 700, 701), bodies over ``rest_max_request_size`` HTTP 413, and an
unexpected failure HTTP 500 (code 305) with the traceback only in the server log. Parsing, execution and
JSON encoding run on a thread pool, so the loop (shared with the MQTT service) never blocks on the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiohttp import web

from iotdb_core.auth import UserStore
from iotdb_core.authz import AccessDenied, Privilege
from iotdb_core.backend import StorageBackend, SupportsHealth
from iotdb_core.config import Settings
from iotdb_core.engine_metrics import engine_stats, process_figures
from iotdb_core.errors import IoTDBError
from iotdb_core.metrics import MetricFigure, ServiceCounters
from iotdb_core.query import QueryError, UpdateResult, execute, parse
from iotdb_core.query.errors import (
    METADATA_ERROR,
    STORAGE_ENGINE_ERROR,
    write_error_code,
)
from iotdb_core.rest import metrics
from iotdb_core.rest.auth import Authenticator, AuthFailure
from iotdb_core.rest.convert import dumps, result_body
from iotdb_core.rest.fastlast import FastLastRoute
from iotdb_core.rest.grafana import GrafanaRoutes
from iotdb_core.rest.openapi import PUBLIC_PATHS, OpenApiRoute
from iotdb_core.rest.payloads import (
    RecordsRequest,
    RequestError,
    TabletRequest,
    parse_json,
    query_request,
    records_request,
    sql_request,
    tablet_request,
)
from iotdb_core.rest.queries import EXECUTE_STATEMENT_ERROR, QUERY_STATEMENTS, StatementFailure, run_query
from iotdb_core.rest.replies import SUCCESS as _SUCCESS
from iotdb_core.rest.replies import Reply
from iotdb_core.rest.replies import status as _status
from iotdb_core.rest.v1 import RestV1Routes
from iotdb_core.storage.errors import ReadOnlyError
from iotdb_core.storage.results import WriteResult
from iotdb_core.tls import ServerTls

if TYPE_CHECKING:
    from iotdb_core.console import Console

__all__ = [
    "EXECUTE_STATEMENT_ERROR",
    "INTERNAL_SERVER_ERROR",
    "PRECISION_HEADER",
    "QUERY_ROW_LIMIT_ERROR",
    "REQUEST_TOO_LARGE",
    "RestServer",
    "RestService",
]

log = logging.getLogger("iotdb.rest")

#: Code of a query whose result has more rows than its ``row_limit``: IoTDB REST answers QUERY_PROCESS_ERROR.
QUERY_ROW_LIMIT_ERROR = 708
#: An unexpected server-side failure (IoTDB's INTERNAL_SERVER_ERROR); the details are in the server log.
INTERNAL_SERVER_ERROR = 305
#: Body code of an HTTP 413 answer (no IoTDB code exists for it; the HTTP status is reused).
REQUEST_TOO_LARGE = 413
#: Response header telling clients the unit of timestamps (``ms``, ``us`` or ``ns``).
PRECISION_HEADER = "X-IoTDB-Timestamp-Precision"
#: Bodies at least this large are parsed on the thread pool instead of the event loop.
_PARSE_OFF_LOOP = 256 * 1024
#: Failed points listed in an insert's error body.
_FAILURES_SHOWN = 100

def _write_error(exc: Exception) -> Reply:
    """An engine exception during an insert as a status body."""
    if isinstance(exc, AccessDenied):
        return _status(exc.code, exc.message)
    if isinstance(exc, ReadOnlyError):
        return _status(STORAGE_ENGINE_ERROR, str(exc), 503)
    code = write_error_code(exc)
    if code is None:
        raise exc
    return _status(code, str(exc))


def _write_reply(result: WriteResult, what: str) -> Reply:
    """Success, or code 507 listing the points the engine did not write (the others are written)."""
    if not result.failures:
        return _SUCCESS
    failures = result.failures
    first = failures[0]
    message = (
        f"{what}: {len(failures)} value(s) not written ({result.points_written} written); "
        f"first: {first.device}.{first.measurement} at {first.timestamp}: {first.reason}"
    )
    listed = [
        {"device": f.device, "measurement": f.measurement, "timestamp": f.timestamp, "reason": f.reason}
        for f in failures[:_FAILURES_SHOWN]
    ]
    return _status(METADATA_ERROR, message, failed_points=listed)


class RestService:
    """The REST endpoints over one engine, user store and counter set (those of the MQTT service)."""

    def __init__(
        self,
        engine: StorageBackend,
        settings: Settings,
        users: UserStore,
        counters: ServiceCounters,
        executor: Executor | None = None,
        auth_executor: Executor | None = None,
        console: Console | None = None,
        figures: Callable[[], Iterable[MetricFigure]] | None = None,
    ) -> None:
        self.engine = engine
        self.console = console
        self.figures = figures
        self.settings = settings
        self.users = users
        self.counters = counters
        self.default_limit = int(settings.rest_query_default_row_size_limit)
        self.max_request_size = int(settings.rest_max_request_size)
        self.precision = str(settings.timestamp_precision)
        self._own_executors: list[ThreadPoolExecutor] = []
        if executor is None:
            executor = ThreadPoolExecutor(4, thread_name_prefix="iotdb-rest")
            self._own_executors.append(executor)
        if auth_executor is None:
            auth_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-rest-auth")
            self._own_executors.append(auth_executor)
        self.executor = executor
        self.authenticator = Authenticator(users, auth_executor)

    # ------------------------------------------------------------------------------------- application

    def app(self) -> web.Application:
        """The aiohttp application with every route and the error and authentication middlewares."""
        application = web.Application(
            middlewares=[self._errors_middleware, self._auth_middleware], client_max_size=self.max_request_size
        )
        application.router.add_get("/ping", self.ping)
        application.router.add_post("/rest/v2/query", self.query)
        application.router.add_post("/rest/v2/nonQuery", self.non_query)
        application.router.add_post("/rest/v2/insertTablet", self.insert_tablet)
        application.router.add_post("/rest/v2/insertRecords", self.insert_records)
        application.router.add_get("/metrics", self.metrics)
        if self.console is not None:
            self.console.install(application)
        RestV1Routes(self).register(application)
        FastLastRoute(self).register(application)
        GrafanaRoutes(self).register(application)
        OpenApiRoute().register(application)
        return application

    def close(self) -> None:
        """Stop the executors this service created, after their running calls finish."""
        for executor in self._own_executors:
            executor.shutdown(wait=True, cancel_futures=True)

    def _count(self, name: str, amount: int = 1) -> None:
        with contextlib.suppress(KeyError):  # a counter set built without the REST counters
            self.counters.add(name, amount)

    def _response(self, reply: Reply) -> web.Response:
        if not reply.ok:
            self._count("rest_requests_failed")
        response = web.Response(body=reply.body, status=reply.status, content_type="application/json")
        response.headers[PRECISION_HEADER] = self.precision
        return response

    # ------------------------------------------------------------------------------------- middlewares

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.console is not None and self.console.serves(request.path):
            return await handler(request)  # the console authenticates and answers its own requests
        self._count("rest_requests_total")
        try:
            return await handler(request)
        except RequestError as exc:
            return self._response(_status(exc.code, exc.message, 400))
        except AuthFailure as exc:
            self._count("rest_auth_failures")
            response = self._response(_status(exc.code, exc.message, 401))
            response.headers["WWW-Authenticate"] = 'Basic realm="iotdb", charset="UTF-8"'
            return response
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except web.HTTPException as exc:
            if exc.status < 400:  # pragma: no cover - no route redirects
                raise
            message = f"{exc.reason}: {request.method} {request.path}"
            if isinstance(exc, web.HTTPMethodNotAllowed):
                message += f" (allowed: {', '.join(sorted(exc.allowed_methods))})"
            return self._response(_status(exc.status, message, exc.status))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("REST %s %s failed", request.method, request.path)
            return self._response(
                _status(INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR: the request failed; see the server log", 500)
            )

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS and not (self.console is not None and self.console.serves(request.path)):
            request["user"] = await self.authenticator.authenticate(request.headers.get("Authorization"))
        return await handler(request)

    def _too_large(self) -> web.Response:
        message = f"the request body is larger than rest_max_request_size ({self.max_request_size} bytes)"
        return self._response(_status(REQUEST_TOO_LARGE, message, 413))

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > self.max_request_size:
            raise web.HTTPRequestEntityTooLarge(max_size=self.max_request_size, actual_size=request.content_length)
        body = await request.read()
        if len(body) >= _PARSE_OFF_LOOP:
            return await self._off_loop(parse_json, body)
        return parse_json(body)

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    # ------------------------------------------------------------------------------------------- routes

    async def ping(self, _request: web.Request) -> web.Response:
        """``GET /ping``: liveness, no authentication; HTTP 503 while the storage is read-only (disk full)."""
        if isinstance(self.engine, SupportsHealth):
            health = self.engine.health()
            if not health.writable:
                return self._response(_status(STORAGE_ENGINE_ERROR, health.reason, 503))
        return self._response(_SUCCESS)

    async def query(self, request: web.Request) -> web.Response:
        """``POST /rest/v2/query``."""
        sql, limit = query_request(await self._json(request), self.default_limit)
        reply: Reply = await self._off_loop(self._run_query, sql, limit, request["user"])
        self._count("rest_rows_returned", reply.rows)
        return self._response(reply)

    async def non_query(self, request: web.Request) -> web.Response:
        """``POST /rest/v2/nonQuery``."""
        sql = sql_request(await self._json(request))
        return self._response(await self._off_loop(self._run_non_query, sql, request["user"]))

    async def insert_tablet(self, request: web.Request) -> web.Response:
        """``POST /rest/v2/insertTablet``."""
        data = await self._json(request)
        tablet: TabletRequest = await self._off_loop(tablet_request, data)
        return self._response(await self._off_loop(self._insert_tablet, tablet, request["user"]))

    async def insert_records(self, request: web.Request) -> web.Response:
        """``POST /rest/v2/insertRecords``."""
        data = await self._json(request)
        records: RecordsRequest = await self._off_loop(records_request, data)
        return self._response(await self._off_loop(self._insert_records, records, request["user"]))

    async def metrics(self, _request: web.Request) -> web.Response:
        """``GET /metrics``: Prometheus text (engine figures are read on the thread pool)."""
        text = await self._off_loop(self._render_metrics)
        response = web.Response(text=text)
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    # ------------------------------------------------------------------------- work on the thread pool

    def _render_metrics(self) -> str:
        return metrics.render(self.counters, engine=engine_stats(self.engine), process=process_figures(),
                              plugins=self.figures() if self.figures is not None else ())

    def _run_query(self, sql: str, limit: int, user: str) -> Reply:
        try:
            outcome = run_query(self.engine, self.settings, sql, limit, self.counters,
                                session=self.users.session(user))
        except StatementFailure as exc:
            return _status(exc.code, exc.message)
        return Reply(200, dumps(result_body(outcome.statement, outcome.result)), rows=len(outcome.result))

    def _run_non_query(self, sql: str, user: str, version: str = "v2") -> Reply:
        try:
            statement = parse(sql)
            if isinstance(statement, QUERY_STATEMENTS):
                return _status(
                    EXECUTE_STATEMENT_ERROR,
                    f"EXECUTE_STATEMENT_ERROR: /rest/{version}/nonQuery does not run queries; send SELECT, SHOW and "
                    f"COUNT statements to /rest/{version}/query",
                )
            outcome = execute(self.engine, statement, settings=self.settings, session=self.users.session(user))
        except QueryError as exc:
            return _status(exc.code, exc.message)
        if isinstance(outcome, UpdateResult) and outcome.statement == "INSERT" and outcome.count:
            self._count("rest_points_written", outcome.count)
        return _SUCCESS

    def _insert_tablet(self, tablet: TabletRequest, user: str) -> Reply:
        try:
            self._may_write(user, [tablet.device], [tablet.measurements])
            result = self.engine.insert_tablet(
                tablet.device, tablet.timestamps, tablet.measurements, tablet.values, tablet.data_types
            )
        except Exception as exc:
            return _write_error(exc)
        self._count("rest_points_written", result.points_written)
        return _write_reply(result, f"insertTablet {tablet.device}")

    def _insert_records(self, records: RecordsRequest, user: str) -> Reply:
        try:
            self._may_write(user, records.devices, records.measurements_list)
            result = self.engine.insert_records(
                records.devices,
                records.timestamps,
                records.measurements_list,
                records.values_list,
                records.data_types_list,
            )
        except Exception as exc:
            return _write_error(exc)
        self._count("rest_points_written", result.points_written)
        return _write_reply(result, "insertRecords")


    def _may_write(self, user: str, devices: list[str], measurements: list[list[str]]) -> None:
        """AccessDenied unless ``user`` holds WRITE_DATA on every series of an insert."""
        paths = {f"{device}.{m}" for device, names in zip(devices, measurements, strict=True) for m in names}
        self.users.authorizer.check(user, Privilege.WRITE_DATA, sorted(paths))


class RestServer:
    """The REST service bound to ``rest_service_host``:``rest_service_port`` (``0`` picks a free port)."""

    def __init__(
        self,
        engine: StorageBackend,
        settings: Settings,
        users: UserStore,
        counters: ServiceCounters,
        *,
        shutdown_timeout: float = 30.0,
        console: Console | None = None,
        tls: ServerTls | None = None,
        figures: Callable[[], Iterable[MetricFigure]] | None = None,
    ) -> None:
        self.settings = settings
        #: HTTPS instead of HTTP (``enable_https``), None for HTTP.
        self.tls = tls
        self.service = RestService(engine, settings, users, counters, console=console, figures=figures)
        self.shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; a port in use is an :class:`IoTDBError` with one clear line."""
        host, port = self.settings.rest_service_host, int(self.settings.rest_service_port)
        runner = web.AppRunner(
            self.service.app(), handle_signals=False, access_log=None, shutdown_timeout=self.shutdown_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024,
                           ssl_context=self.tls.context if self.tls is not None else None)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self.service.close()
            if exc.errno == errno.EADDRINUSE:
                raise IoTDBError(
                    f"cannot serve REST on {host}:{port}: the port is in use (set rest_service_port to another port)"
                ) from None
            raise IoTDBError(f"cannot serve REST on {host}:{port}: {exc.strerror or exc}") from None
        self._runner = runner

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when ``rest_service_port=0``)."""
        assert self._runner is not None
        host, port = self._runner.addresses[0][:2]
        return host, port

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls is not None else "http"

    async def stop(self) -> None:
        """Stop accepting, let running requests finish (up to ``shutdown_timeout``), stop the thread pools."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.get_running_loop().run_in_executor(None, self.service.close)
