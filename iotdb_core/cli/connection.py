"""Where the query commands run statements: a running server (its native RPC port, or its REST API), or a data
directory opened directly.

``iotdb query``, ``sql``, ``export`` and ``import`` share the options added by :func:`add_connection_arguments`
(IoTDB CLI's ``-h host -p port -u user -pw password``) and get a backend from :func:`connect`:

* :class:`RpcBackend`, the default, opens a session on ``-h``:``-p`` (default ``127.0.0.1:6667``, the port
  ``iotdb serve`` listens on with its default configuration) over IoTDB's native protocol;
* :class:`RestBackend` talks to ``--url`` (e.g. ``http://127.0.0.1:18080``) with HTTP Basic credentials;
* credentials are ``-u`` and ``-pw`` (``$IOTDB_PASSWORD`` when ``-pw`` is not given, else ``root``);
* ``--ssl`` connects to the RPC port over TLS (``enable_thrift_ssl``), checking the server's certificate against
  the system CAs or ``--cafile``; ``--cert`` and ``--key`` send a client certificate; ``--cafile`` and ``--cert``
  also apply to an ``https://`` ``--url``;
* :class:`LocalBackend` opens ``--data-dir`` with the storage engine, configured like ``iotdb serve`` (``--config``
  and ``IOTDB_*`` variables). A directory a server holds is refused with a one-line error pointing at ``--url``.

All return query results in the REST API's shape (:class:`~iotdb_core.cli.output.Result`) and raise
:class:`StatementError` (an IoTDB status code and message) for statement errors and :class:`CliError` for
everything else.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import os
import re
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ujson

from iotdb_core.backend import StorageBackend
from iotdb_core.cli.output import Result
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import IoTDBError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_URL",
    "Backend",
    "CliError",
    "LocalBackend",
    "RestBackend",
    "RpcBackend",
    "SeriesInfo",
    "StatementError",
    "add_connection_arguments",
    "add_help_argument",
    "connect",
    "is_query",
]

DEFAULT_URL = "http://127.0.0.1:18080"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6667
PASSWORD_ENV = "IOTDB_PASSWORD"
#: Largest ``row_limit`` a request may carry (IoTDB's is a Java int).
MAX_ROW_LIMIT = 2**31 - 1
_QUERY_KEYWORDS = {"SELECT", "SHOW", "COUNT", "LIST", "DESCRIBE"}
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class CliError(IoTDBError):
    """A command cannot go on; the message is one line for the user."""


class StatementError(CliError):
    """A statement failed with an IoTDB status code (700 parse error, 701 semantic error, ...)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SeriesInfo:
    """One series as SHOW TIMESERIES describes it."""

    path: str
    device: str
    measurement: str
    data_type: TSDataType
    encoding: str
    compressor: str


def is_query(sql: str) -> bool:
    """Whether a statement returns rows (SELECT, SHOW, COUNT), by its first word."""
    match = _FIRST_WORD.match(sql)
    return bool(match) and match.group(1).upper() in _QUERY_KEYWORDS  # type: ignore[union-attr]


def add_help_argument(parser: argparse.ArgumentParser) -> None:
    """``--help`` only: the query commands give ``-h`` to the host, as IoTDB's CLI does (parsers built with
    ``add_help=False``)."""
    parser.add_argument("--help", action="help", help="show this help message and exit")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options selecting the server or data directory, shared by the query commands."""
    group = parser.add_argument_group(
        "connection (a server's native RPC port by default, its REST API with --url, or a data directory)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--url", metavar="URL", help=f"use a server's REST API instead, e.g. {DEFAULT_URL}")
    where.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                       help="open this data directory directly instead of a server")
    parser.set_defaults(takes_data_dir=True)
    group.add_argument("-h", "--host", help=f"server host (default {DEFAULT_HOST})")
    group.add_argument("-p", "--port", type=int, help=f"server RPC port, rpc_port (default {DEFAULT_PORT})")
    group.add_argument("-u", "--user", default="root", help="user name (default root)")
    group.add_argument("-pw", "--password", help=f"password (default: ${PASSWORD_ENV}, else root)")
    group.add_argument("--config", metavar="PATH", help="with --data-dir: properties file or conf directory")
    group.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                       help="request timeout in seconds (default 300)")
    group.add_argument("--ssl", action="store_true",
                       help="connect to the RPC port over TLS (the server's enable_thrift_ssl); implied by --cafile "
                            "and --cert")
    group.add_argument("--cafile", metavar="PEM", help="CA certificates to check the server's certificate against "
                       "(default: the system's)")
    group.add_argument("--cert", metavar="PEM", help="client certificate, for servers that ask for one")
    group.add_argument("--key", metavar="PEM", help="private key of --cert (default: in the --cert file)")


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The client TLS context the options ask for, None for plain TCP."""
    cafile, cert, key = (getattr(args, name, None) for name in ("cafile", "cert", "key"))
    if not (getattr(args, "ssl", False) or cafile or cert or key):
        return None
    from iotdb_core.tls import client_context  # noqa: PLC0415 - only when TLS is asked for

    return client_context(cafile, cert, key)


def connect(args: argparse.Namespace, *, create: bool = False) -> Backend:
    """The backend the options select; ``create`` lets a missing data directory be created (``import``)."""
    remote = getattr(args, "host", None) is not None or getattr(args, "port", None) is not None
    if getattr(args, "data_dir", None):
        if args.url:
            raise CliError("give --url or --data-dir, not both")
        if remote:
            raise CliError("-h/-p select a server; --data-dir opens a data directory instead: give one of them")
        if _tls_context(args) is not None:
            raise CliError("--ssl, --cafile, --cert and --key apply to a server; --data-dir opens a directory")
        return LocalBackend.open(args.data_dir, args.config, create=create)
    if getattr(args, "config", None):
        raise CliError("--config applies to --data-dir; a server uses its own configuration")
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV, "root")
    if args.url:
        if remote:
            raise CliError("-h/-p select the native RPC port; --url selects the REST API instead: give one of them")
        return RestBackend(args.url, args.user, password, timeout=args.timeout, ssl_context=_tls_context(args))
    return RpcBackend(args.host or DEFAULT_HOST, args.port or DEFAULT_PORT, args.user, password,
                      timeout=args.timeout, ssl_context=_tls_context(args))


class Backend:
    """What the commands need from a server or a data directory."""

    description = ""
    precision = "ms"
    #: Rows per request when reading series page by page (None: all at once).
    page_size: int | None = None

    def query(self, sql: str, row_limit: int | None = None) -> Result:
        """Run a SELECT, SHOW or COUNT statement."""
        raise NotImplementedError

    def non_query(self, sql: str) -> None:
        """Run any other statement."""
        raise NotImplementedError

    def execute(self, sql: str, row_limit: int | None = None) -> Result | None:
        """Run a statement: its result, or None for a statement that returns no rows."""
        if is_query(sql):
            return self.query(sql, row_limit)
        self.non_query(sql)
        return None

    def series(self, patterns: list[str]) -> list[SeriesInfo]:
        """Series matching any of ``patterns``, sorted by path."""
        found: dict[str, SeriesInfo] = {}
        for pattern in patterns:
            result = self.query(f"SHOW TIMESERIES {pattern}", MAX_ROW_LIMIT)
            index = {name: position for position, name in enumerate(result.names)}
            for row in result.rows():
                path = row[index["timeseries"]]
                device, measurement = _split(path)
                found[path] = SeriesInfo(
                    path, device, measurement, TSDataType.parse(row[index["dataType"]]),
                    str(row[index["encoding"]]), str(row[index["compression"]]),
                )
        return [found[path] for path in sorted(found)]

    def read_series(self, info: SeriesInfo, after: int | None, limit: int | None) -> tuple[np.ndarray, Any]:
        """Up to ``limit`` points of a series with time > ``after``: int64 timestamps and values of its type."""
        where = "" if after is None else f" WHERE time > {after}"
        page = f" LIMIT {limit}" if limit is not None else ""
        result = self.query(f"SELECT {info.measurement} FROM {info.device}{where}{page}", limit or MAX_ROW_LIMIT)
        stamps = np.asarray(result.timestamps or [], dtype=np.int64)
        column = result.columns[0] if result.columns else []
        keep = [index for index, value in enumerate(column) if value is not None]
        if len(keep) != len(column):
            stamps = stamps[keep]
            column = [column[index] for index in keep]
        return stamps, _typed(column, info.data_type)

    def insert_tablet(
        self, device: str, timestamps: list[int], measurements: list[str], types: list[TSDataType],
        columns: list[list[Any]],
    ) -> int:
        """Write one device's rows column by column (None: no value); returns the points written."""
        raise NotImplementedError

    def check(self) -> None:
        """Fail early (CliError) when the server cannot be reached or refuses the credentials."""

    def close(self) -> None:
        """Release the connection or close the engine."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _split(path: str) -> tuple[str, str]:
    from iotdb_core.storage.schema import split_series_path  # noqa: PLC0415 - not needed by plain queries

    return split_series_path(path)


def _typed(values: list[Any], data_type: TSDataType) -> Any:
    """JSON values of a series as the array ``write_tsfile`` takes (NaN/±inf arrive as strings)."""
    if data_type is TSDataType.TEXT:
        return [str(value) for value in values]
    if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE):
        values = [_SPECIAL.get(value, value) if isinstance(value, str) else value for value in values]
    dtype = {
        TSDataType.BOOLEAN: np.bool_, TSDataType.INT32: np.int32, TSDataType.INT64: np.int64,
        TSDataType.FLOAT: np.float32, TSDataType.DOUBLE: np.float64,
    }[data_type]
    return np.asarray(values, dtype=dtype)


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


# ------------------------------------------------------------------------------------------------- REST


class RestBackend(Backend):
    """A running server's REST API v2 over one keep-alive HTTP connection."""

    page_size = 100_000

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 300.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--url {url}: expected http://HOST:PORT")
        if ssl_context is not None and parts.scheme != "https":
            raise CliError(f"--url {url}: --ssl, --cafile and --cert need an https:// URL")
        self._ssl_context = ssl_context
        self.url = url
        self.user = user
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 18080)
        self.description = f"{parts.scheme}://{self._host}:{self._port}"
        self._base = parts.path.rstrip("/")
        self._timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                                               context=self._ssl_context)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def _unreachable(self, exc: BaseException) -> CliError:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return CliError(
            f"cannot reach the REST API at {self.description}: {reason} "
            "(is `iotdb serve` running with enable_rest_service=true? or use --data-dir)"
        )

    def _request(self, method: str, path: str, data: bytes | None) -> tuple[http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connect()
            try:
                connection.request(method, self._base + path, body=data, headers=self._headers)
                response = connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if attempt == 2 or not reused:  # a reused keep-alive connection the server closed: retry once
                    raise self._unreachable(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response, raw = self._request("POST", path, ujson.dumps(payload, ensure_ascii=False).encode("utf-8"))
        precision = response.getheader("X-IoTDB-Timestamp-Precision")
        if precision in ("ms", "us", "ns"):
            self.precision = precision
        body = self._json(response, raw, path)
        code = body.get("code")
        if code is not None and code != 200:
            raise StatementError(int(code), str(body.get("message")))
        return body

    def _json(self, response: http.client.HTTPResponse, raw: bytes, path: str) -> dict[str, Any]:
        try:
            body = ujson.loads(raw)
        except ValueError:
            raise CliError(
                f"{self.description}{path} answered HTTP {response.status} with a body that is not JSON; "
                "is this the REST API of `iotdb serve`?"
            ) from None
        if not isinstance(body, dict):
            raise CliError(f"{self.description}{path} answered with unexpected JSON")
        if response.status == 401:
            raise CliError(f"{body.get('code')}: {body.get('message')} (user {self.user!r} at {self.description})")
        if response.status != 200:
            raise CliError(
                f"{body.get('code')}: {body.get('message')} (HTTP {response.status} from {self.description}{path})"
            )
        return body

    def check(self) -> None:
        """Verify that the server answers and accepts the credentials (``GET /metrics`` needs them)."""
        response, raw = self._request("GET", "/metrics", None)
        if response.status != 200:
            self._json(response, raw, "/metrics")

    def query(self, sql: str, row_limit: int | None = None) -> Result:
        payload: dict[str, Any] = {"sql": sql}
        if row_limit is not None:
            payload["row_limit"] = row_limit
        return Result(self._post("/rest/v2/query", payload))

    def non_query(self, sql: str) -> None:
        self._post("/rest/v2/nonQuery", {"sql": sql})

    def insert_tablet(
        self, device: str, timestamps: list[int], measurements: list[str], types: list[TSDataType],
        columns: list[list[Any]],
    ) -> int:
        values = [
            [_json_float(value) for value in column]
            if data_type in (TSDataType.FLOAT, TSDataType.DOUBLE) else column
            for column, data_type in zip(columns, types, strict=True)
        ]
        self._post("/rest/v2/insertTablet", {
            "device": device, "timestamps": timestamps, "measurements": measurements,
            "data_types": [t.value for t in types], "values": values, "is_aligned": False,
        })
        return sum(1 for column in columns for value in column if value is not None)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# ------------------------------------------------------------------------------------------------- RPC


class RpcBackend(Backend):
    """A running server's native RPC port (``IClientRPCService``), through one session.

    Results are fetched in pages (TsBlocks) and converted to the REST API's shape with the REST service's own
    column conversion, so tables, CSV and JSON look the same whichever way a server is reached.
    """

    page_size = 100_000

    def __init__(self, host: str, port: int, user: str, password: str, *, timeout: float = 300.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        from iotdb_core.rest.convert import column_to_json  # noqa: PLC0415 - the REST service's conversion
        from iotdb_core.rpc.client import RpcClient, RpcConnectionError, RpcStatusError  # noqa: PLC0415

        self._column_to_json = column_to_json
        self.description = f"{host}:{port}"
        self.user = user
        self._tls = ssl_context is not None
        self._status_error = RpcStatusError
        self._connection_error = RpcConnectionError
        try:
            self._client: Any = RpcClient(host, port, user, password, timeout=timeout, ssl_context=ssl_context)
        except RpcConnectionError as exc:
            raise self._unreachable(exc) from None
        except RpcStatusError as exc:
            raise CliError(f"{exc.code}: {exc.message} (user {user!r} at {self.description})") from None
        self.precision = self._client.precision

    def _unreachable(self, exc: BaseException) -> CliError:
        tls = "" if self._tls else "; over TLS (enable_thrift_ssl) give --ssl or --cafile"
        return CliError(
            f"cannot reach the server at {self.description}: {exc} (is `iotdb serve` running? its native RPC "
            f"service listens on rpc_port, 6667 by default{tls}; or use --url for REST, --data-dir for a directory)"
        )

    def _run(self, sql: str) -> Any:
        try:
            return self._client.execute(sql)
        except self._status_error as exc:
            raise StatementError(exc.code, exc.message) from None
        except self._connection_error as exc:
            raise self._unreachable(exc) from None

    def execute(self, sql: str, row_limit: int | None = None) -> Result | None:
        outcome = self._run(sql)
        if outcome is None:
            return None
        if row_limit is not None and len(outcome) > row_limit:
            raise StatementError(708, f"Dataset row size exceeded the given max row size ({row_limit})")
        return Result(self._body(outcome))

    def _body(self, result: Any) -> dict[str, Any]:
        """An RPC result in the REST API's column-major shape."""
        timestamps = None if result.timestamps is None else result.timestamps.tolist()
        values = [
            self._column_to_json(column, nulls, data_type)
            for column, nulls, data_type in zip(result.columns, result.nulls, result.types, strict=True)
        ] if len(result) else []
        return {"expressions": None, "column_names": result.names, "timestamps": timestamps, "values": values}

    def query(self, sql: str, row_limit: int | None = None) -> Result:
        result = self.execute(sql, row_limit)
        if result is None:
            raise StatementError(301, "EXECUTE_STATEMENT_ERROR: the statement returns no rows")
        return result

    def non_query(self, sql: str) -> None:
        self._run(sql)

    def insert_tablet(
        self, device: str, timestamps: list[int], measurements: list[str], types: list[TSDataType],
        columns: list[list[Any]],
    ) -> int:
        try:
            self._client.insert_tablet(device, timestamps, measurements, types, columns)
        except self._status_error as exc:
            raise StatementError(exc.code, exc.message) from None
        except self._connection_error as exc:
            raise self._unreachable(exc) from None
        return sum(1 for column in columns for value in column if value is not None)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


# ------------------------------------------------------------------------------------------------ local


class LocalBackend(Backend):
    """A data directory opened with the storage engine in this process."""

    def __init__(self, engine: StorageBackend, settings: Any, data_dir: Path) -> None:
        self.engine: StorageBackend | None = engine
        self.settings = settings
        self.data_dir = data_dir
        self.description = f"data directory {data_dir}"
        self.precision = str(settings.timestamp_precision)

    @classmethod
    def open(cls, data_dir: str, config: str | None, *, create: bool = False) -> LocalBackend:
        """Configure like ``iotdb serve`` with ``data_dir`` and open the engine."""
        from iotdb_core.bootstrap import configure, open_engine  # noqa: PLC0415 - the REST path does not need them
        from iotdb_core.storage.errors import DataDirLockedError  # noqa: PLC0415

        runtime = configure(config, overrides={"data_dir": data_dir})
        settings = runtime.settings
        directory = Path(settings.data_dir)
        if not create and not directory.is_dir():
            raise CliError(f"no data directory at {directory}")
        try:
            engine = open_engine(runtime)
        except DataDirLockedError:
            scheme = "https" if settings.enable_https else "http"
            url = f"{scheme}://{settings.rest_service_host}:{settings.rest_service_port}"
            tls = " --ssl" if settings.enable_thrift_ssl else ""
            raise CliError(
                f"data directory {directory} is held by a running server (or another process); "
                f"query through the server instead: -h {settings.rpc_address} -p {settings.rpc_port}{tls} "
                f"(or its REST API: --url {url})"
            ) from None
        return cls(engine, settings, directory)

    def _statement(self, sql: str, row_limit: int | None) -> Any:
        from iotdb_core.auth import DEFAULT_USER, UserStore  # noqa: PLC0415
        from iotdb_core.query import QueryError, ast, execute, parse  # noqa: PLC0415

        try:
            statement = parse(sql)
            # Whoever may open the data directory may do anything in it: user statements run as root.
            session = UserStore.open(self.data_dir).session(DEFAULT_USER) if isinstance(
                statement, ast.SECURITY_STATEMENTS) else None
            return statement, execute(self._engine(), statement, settings=self.settings, row_limit=row_limit,
                                      session=session)
        except QueryError as exc:
            raise StatementError(exc.code, exc.message) from None

    def query(self, sql: str, row_limit: int | None = None) -> Result:
        from iotdb_core.query import MetadataResult, ResultSet  # noqa: PLC0415
        from iotdb_core.rest.convert import result_body  # noqa: PLC0415

        statement, result = self._statement(sql, row_limit)
        if not isinstance(result, (ResultSet, MetadataResult)):
            raise StatementError(301, "EXECUTE_STATEMENT_ERROR: the statement returns no rows")
        return Result(result_body(statement, result))

    def non_query(self, sql: str) -> None:
        self._statement(sql, None)

    def series(self, patterns: list[str]) -> list[SeriesInfo]:
        found = {}
        for pattern in patterns:
            for schema in self._engine().list_series(pattern):
                found[schema.path] = SeriesInfo(
                    schema.path, schema.device, schema.measurement, schema.data_type,
                    schema.encoding.value, schema.compressor.value,
                )
        return [found[path] for path in sorted(found)]

    def read_series(self, info: SeriesInfo, after: int | None, limit: int | None) -> tuple[np.ndarray, Any]:
        found = self._engine().query(info.path, None if after is None else after + 1, None)
        stamps, values = found.timestamps, found.values
        texts: list[str] | None = None
        if limit is not None:
            stamps, values = stamps[:limit], values[:limit]
        if info.data_type is TSDataType.TEXT:
            texts = [str(value) for value in values]
        return stamps, values if texts is None else texts

    def insert_tablet(
        self, device: str, timestamps: list[int], measurements: list[str], types: list[TSDataType],
        columns: list[list[Any]],
    ) -> int:
        result = self._engine().insert_tablet(device, timestamps, measurements, columns, types)
        if result.failures:
            first = result.failures[0]
            raise CliError(
                f"{len(result.failures)} value(s) of {device} not written ({result.points_written} written); "
                f"first: {first.measurement} at {first.timestamp}: {first.reason}"
            )
        return int(result.points_written)

    def _engine(self) -> StorageBackend:
        if self.engine is None:
            raise CliError(f"{self.description} is closed")
        return self.engine

    def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
