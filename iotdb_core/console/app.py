"""The web console's routes, mounted into the REST service's aiohttp application.

::

    GET  /                                   the single-page console (static; it asks for a log-in)
    GET  /console/static/...                 its scripts, styles and the vendored uPlot
    POST /console/api/login                  {"user", "password"} -> session cookie + {"user", "admin", "csrf"}
    POST /console/api/logout
    GET  /console/api/session                {"user", "admin", "csrf"} of the cookie's session
    GET  /console/api/overview               counters, connected clients, engine state
    GET  /console/api/clients                connected MQTT clients
    POST /console/api/clients/disconnect     {"client_id"}                        (administrators)
    GET  /console/api/tree                   databases, devices, series
    GET  /console/api/device?path=           count, first and last time of a device's series
    GET  /console/api/plot?path=&start=&end=&points=   a downsampled plot
    POST /console/api/sql                    {"sql", "row_limit"?}
    GET  /console/api/deadletters?text=&client_id=&topic=&reason=&limit=
    POST /console/api/deadletters/reingest   {"id", "payload", "payload_encoding"?, "topic"?}
    POST /console/api/deadletters/discard    {"id"}
    GET  /console/api/topics/stream?filter=   the live topic view: Server-Sent Events (see topics.py)
    GET  /console/api/users                                                     (administrators)
    POST /console/api/users                  {"name", "password"}               (administrators)
    POST /console/api/users/password         {"name", "password"}               (administrators)
    POST /console/api/users/delete           {"name"}                           (administrators)

An API request is authenticated by the session cookie or, as the REST API, by HTTP Basic credentials. Every
state-changing request must be ``application/json`` (a cross-site form cannot send that without a CORS
preflight, which is never granted) and, with the cookie, carry the session's token in ``X-CSRF-Token``.
Everything runs as the logged-in user with the privileges of every other surface (docs/security.md): the tree
lists what READ_SCHEMA covers, statistics and plots need READ_DATA, SQL runs as the user; administrators are
users holding MANAGE_USER; dead letters (payloads of any publisher) need READ_DATA on ``root.**`` to be listed
and WRITE_DATA on ``root.**`` to be re-ingested or discarded. A missing privilege is HTTP 403 with code 803.
A console session ends when its user's password changes or the user is deleted, however that is done.
Engine work runs on the console's own two threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from iotdb_core.auth import AuthError, UserStore
from iotdb_core.auth import Session as UserSession
from iotdb_core.authz import ADMIN, NO_PERMISSION, ROOT_ALL, AccessDenied, Privilege
from iotdb_core.config import Settings
from iotdb_core.console.deadletters import ReingestRejected, list_letters, reingest
from iotdb_core.console.engine_state import engine_state
from iotdb_core.console.explorer import ExplorerError, PlotRequest, device_series, plot, series_tree
from iotdb_core.console.sessions import COOKIE, CSRF_HEADER, Session, SessionStore
from iotdb_core.console.sql import run_sql
from iotdb_core.console.topics import LiveViewError, TopicStreams
from iotdb_core.deadletter import DeadLetterChanged, DeadLetterLog
from iotdb_core.fleet import ClientRegistry
from iotdb_core.metrics import ServiceCounters
from iotdb_core.paths import PathError
from iotdb_core.query import QueryError
from iotdb_core.rest.auth import Authenticator, AuthFailure
from iotdb_core.rest.convert import dumps

__all__ = ["ADMINISTRATOR", "PREFIX", "Console"]

log = logging.getLogger("iotdb.console")

PREFIX = "/console/"
#: The user who cannot be deleted (administrators are the users holding MANAGE_USER).
ADMINISTRATOR = ADMIN
STATIC = Path(str(resources.files("iotdb_core.console") / "static"))
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_PUBLIC = {"/console/api/login"}
_SQL_ROW_LIMIT = 10000
_LETTERS_SHOWN = 200
_PLOT_POINTS = 1000
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class ConsoleError(Exception):
    """An API request that cannot be served: HTTP status, a message for the page, and the body's code (IoTDB's
    code when a statement was refused, else the status)."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = status if code is None else code


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})


class Console:
    """The console over the service's engine, users, counters, dead letters and connected clients."""

    def __init__(
        self,
        engine: Any,
        settings: Settings,
        users: UserStore,
        counters: ServiceCounters,
        *,
        dead_letters: DeadLetterLog | None = None,
        clients: ClientRegistry | None = None,
        plugins: pluggy.PluginManager | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.users = users
        self.counters = counters
        self.dead_letters = dead_letters
        self.clients = clients or ClientRegistry()
        self.plugins = plugins
        self.data_dir = Path(settings.data_dir)
        self.sessions = SessionStore()
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="iotdb-console")
        self._auth_executor = ThreadPoolExecutor(1, thread_name_prefix="iotdb-console-auth")
        self.authenticator = Authenticator(users, self._auth_executor)
        #: Per user, the one session a password change made from it keeps (see :meth:`user_password`).
        self._kept: dict[str, str] = {}
        self.topics = TopicStreams(self.clients)
        users.on_change(self._credentials_changed)

    def _credentials_changed(self, names: frozenset[str]) -> None:
        """A user's password changed or the user was deleted: end that user's console sessions."""
        for name in names:
            self.sessions.close_user(name, keep=self._kept.get(name))

    # ------------------------------------------------------------------------------------- mounting

    @staticmethod
    def serves(path: str) -> bool:
        """True for the paths the console authenticates itself (the REST middleware leaves them alone)."""
        return path == "/" or path.startswith(PREFIX)

    def install(self, application: web.Application) -> None:
        """Add the console's routes to the REST service's application."""
        application.router.add_get("/", self.index)
        console = web.Application(middlewares=[self._guard])
        console.router.add_static("/static/", STATIC, append_version=False)
        api: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("POST", "/api/login", self.login),
            ("POST", "/api/logout", self.logout),
            ("GET", "/api/session", self.session),
            ("GET", "/api/overview", self.overview),
            ("GET", "/api/clients", self.client_list),
            ("POST", "/api/clients/disconnect", self.disconnect),
            ("GET", "/api/tree", self.tree),
            ("GET", "/api/device", self.device),
            ("GET", "/api/plot", self.plot),
            ("POST", "/api/sql", self.sql),
            ("GET", "/api/deadletters", self.letters),
            ("POST", "/api/deadletters/reingest", self.reingest),
            ("POST", "/api/deadletters/discard", self.discard),
            ("GET", "/api/topics/stream", self.topic_stream),
            ("GET", "/api/users", self.user_list),
            ("POST", "/api/users", self.user_add),
            ("POST", "/api/users/password", self.user_password),
            ("POST", "/api/users/delete", self.user_delete),
        ]
        for method, path, handler in api:
            console.router.add_route(method, path, handler)
        application.add_subapp(PREFIX.rstrip("/"), console)
        application.on_shutdown.append(self._end_streams)
        application.on_cleanup.append(self._cleanup)

    async def _end_streams(self, _application: web.Application) -> None:
        self.topics.close_all("the server is stopping")

    async def _cleanup(self, _application: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Stop the console's threads after their running calls."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._auth_executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------------------------- guard

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        path = request.path
        try:
            if path.startswith(PREFIX + "api/"):
                if request.method not in _SAFE_METHODS and request.content_type != "application/json":
                    raise ConsoleError(415, "state-changing console requests must be application/json")
                if path not in _PUBLIC:
                    request["user"], request["session"] = await self._authenticate(request)
            response = await handler(request)
        except ConsoleError as exc:
            response = _json({"code": exc.code, "message": exc.message}, exc.status)
        except AuthFailure as exc:
            response = _json({"code": exc.code, "message": exc.message}, 401)
        except AccessDenied as exc:
            response = _json({"code": NO_PERMISSION, "message": exc.message}, 403)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("console %s %s failed", request.method, path)
            response = _json({"code": 305, "message": "the request failed; see the server log"}, 500)
        response.headers.update(_HEADERS)
        return response

    async def _authenticate(self, request: web.Request) -> tuple[str, Session | None]:
        session = self.sessions.find(request.cookies.get(COOKIE))
        if session is not None:
            if session.user not in self.users.names():
                self.sessions.close_user(session.user)
                raise ConsoleError(401, "the user of this session was deleted; log in again")
            if request.method not in _SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
                raise ConsoleError(403, f"the {CSRF_HEADER} header is missing or wrong for this session")
            return session.user, session
        if request.headers.get("Authorization"):
            return await self.authenticator.authenticate(request.headers.get("Authorization")), None
        raise ConsoleError(401, "log in first")

    def _is_admin(self, user: str) -> bool:
        return self.users.authorizer.has_global(user, Privilege.MANAGE_USER)

    def _require_admin(self, request: web.Request) -> None:
        if not self._is_admin(request["user"]):
            raise ConsoleError(403, "only an administrator (a user holding MANAGE_USER) may do this")

    def _require_everywhere(self, request: web.Request, privilege: Privilege) -> None:
        """AccessDenied (403, 803) unless the user holds ``privilege`` on all of ``root.**``."""
        if not self.users.authorizer.holds_on(request["user"], privilege, ROOT_ALL):
            raise AccessDenied(privilege, [".".join(ROOT_ALL)])

    def _session_of(self, request: web.Request) -> UserSession:
        """What the query layer needs to run statements as the request's user."""
        return self.users.session(request["user"])

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    @staticmethod
    async def _body(request: web.Request, *required: str) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise ConsoleError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ConsoleError(400, "the body must be a JSON object")
        for name in required:
            if not isinstance(body.get(name), str):
                raise ConsoleError(400, f'"{name}" is required and must be a string')
        return body

    @staticmethod
    def _int_query(request: web.Request, name: str) -> int | None:
        value = request.query.get(name, "")
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise ConsoleError(400, f"{name} must be an integer, got {value!r}") from None

    # ------------------------------------------------------------------------------------- pages

    async def index(self, _request: web.Request) -> web.StreamResponse:
        """The console page."""
        response = web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
        response.headers.update(_HEADERS)
        return response

    # ------------------------------------------------------------------------------------- session

    def _session_body(self, user: str, session: Session | None) -> dict[str, Any]:
        return {"user": user, "admin": self._is_admin(user), "csrf": session.csrf if session else None,
                "precision": str(self.settings.timestamp_precision)}

    async def login(self, request: web.Request) -> web.Response:
        """Check the credentials and open a session (cookie ``HttpOnly``, ``SameSite=Strict``, and ``Secure``
        over HTTPS)."""
        body = await self._body(request, "user", "password")
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(self._auth_executor, self.users.verify, body["user"], body["password"]):
            raise ConsoleError(401, "wrong user or password")
        session = self.sessions.open(body["user"])
        response = _json(self._session_body(session.user, session))
        response.set_cookie(COOKIE, session.token, path=PREFIX, httponly=True, samesite="Strict",
                            secure=request.secure)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """End the cookie's session."""
        session = request["session"]
        if session is not None:
            self.sessions.close(session.token)
        response = _json({"code": 200, "message": "logged out"})
        response.del_cookie(COOKIE, path=PREFIX)
        return response

    async def session(self, request: web.Request) -> web.Response:
        """Who is logged in, and the CSRF token of the session."""
        return _json(self._session_body(request["user"], request["session"]))

    # ------------------------------------------------------------------------------------- overview, clients

    async def overview(self, _request: web.Request) -> web.Response:
        """The counters (the page derives rates), connected clients and the engine's state."""
        engine = await self._off_loop(engine_state, self.engine, self.data_dir)
        return _json({"time": asyncio.get_running_loop().time(), "counters": self.counters.snapshot(),
                      "clients": len(self.clients.clients()), "engine": engine})

    async def client_list(self, _request: web.Request) -> web.Response:
        """The connected MQTT clients."""
        return _json({"clients": [vars(client) for client in self.clients.clients()]})

    async def disconnect(self, request: web.Request) -> web.Response:
        """Close a client's connection (administrators)."""
        self._require_admin(request)
        client_id = (await self._body(request, "client_id"))["client_id"]
        if not self.clients.disconnect(client_id):
            raise ConsoleError(404, f"no client {client_id!r} is connected")
        log.info("client %r disconnected from the console by %s", client_id, request["user"])
        return _json({"code": 200, "message": f"disconnected {client_id}"})

    # ------------------------------------------------------------------------------------- data

    async def tree(self, request: web.Request) -> web.Response:
        """Databases, devices and series the user's READ_SCHEMA covers."""
        return _json(await self._off_loop(series_tree, self.engine, self.settings, self._session_of(request)))

    async def device(self, request: web.Request) -> web.Response:
        """Count, first and last time of each series of a device."""
        path = request.query.get("path", "")
        try:
            return _json({"series": await self._off_loop(device_series, self.engine, self.settings, path,
                                                         self._session_of(request))})
        except QueryError as exc:
            raise _query_error(exc) from None
        except PathError as exc:
            raise ConsoleError(400, str(exc)) from None

    async def plot(self, request: web.Request) -> web.Response:
        """A series over a range, downsampled to ``points`` windows."""
        try:
            points = self._int_query(request, "points")
            plot_request = PlotRequest(request.query.get("path", ""), self._int_query(request, "start"),
                                       self._int_query(request, "end"), _PLOT_POINTS if points is None else points)
            return _json(await self._off_loop(plot, self.engine, self.settings, plot_request,
                                              self._session_of(request)))
        except QueryError as exc:
            raise _query_error(exc) from None
        except (ExplorerError, PathError) as exc:
            raise ConsoleError(400, str(exc)) from None

    async def sql(self, request: web.Request) -> web.Response:
        """Any statement; errors carry IoTDB's code (and the parse position)."""
        body = await self._body(request, "sql")
        limit = body.get("row_limit", _SQL_ROW_LIMIT)
        if not isinstance(limit, int) or not 1 <= limit <= _SQL_ROW_LIMIT:
            raise ConsoleError(400, f'"row_limit" must be an integer 1-{_SQL_ROW_LIMIT}')
        return _json(await self._off_loop(run_sql, self.engine, self.settings, body["sql"], limit,
                                          self._session_of(request)))

    # ------------------------------------------------------------------------------------- dead letters

    def _letters(self) -> DeadLetterLog:
        if self.dead_letters is None:
            raise ConsoleError(404, "this server keeps no dead-letter log")
        return self.dead_letters

    async def letters(self, request: web.Request) -> web.Response:
        """The newest matching dead letters (READ_DATA on root.**: they may hold any series' data)."""
        self._require_everywhere(request, Privilege.READ_DATA)
        filters = {key: request.query.get(key, "") for key in ("text", "client_id", "topic", "reason")}
        limit = self._int_query(request, "limit")
        limit = _LETTERS_SHOWN if limit is None else max(1, min(limit, 1000))
        return _json(await self._off_loop(list_letters, self._letters(), filters, limit))

    async def reingest(self, request: web.Request) -> web.Response:
        """Format and store a fixed payload; the record leaves the log only when all of it is stored."""
        self._require_everywhere(request, Privilege.WRITE_DATA)
        body = await self._body(request, "id", "payload")
        if self.plugins is None:
            raise ConsoleError(404, "this server has no payload formatter")
        topic = body.get("topic")
        if topic is not None and not isinstance(topic, str):
            raise ConsoleError(400, '"topic" must be a string')
        try:
            done = await self._off_loop(reingest, self._letters(), self.plugins, self.engine, body["id"],
                                        body["payload"], str(body.get("payload_encoding", "utf-8")), topic or None)
        except DeadLetterChanged as exc:
            raise ConsoleError(409, str(exc)) from None
        except ReingestRejected as exc:
            return _json({"code": 422, "message": str(exc), "points": exc.written}, 422)
        log.info("dead letter %s re-ingested from the console by %s", body["id"], request["user"])
        return _json({"code": 200, **done})

    async def discard(self, request: web.Request) -> web.Response:
        """Remove one dead letter."""
        self._require_everywhere(request, Privilege.WRITE_DATA)
        letter_id = (await self._body(request, "id"))["id"]
        try:
            await self._off_loop(self._letters().discard, letter_id)
        except DeadLetterChanged as exc:
            raise ConsoleError(409, str(exc)) from None
        log.info("dead letter %s discarded from the console by %s", letter_id, request["user"])
        return _json({"code": 200, "message": "discarded"})

    # ------------------------------------------------------------------------------------- live topic view

    async def topic_stream(self, request: web.Request) -> web.StreamResponse:
        """Watch a topic filter under the user's topic ACL, as Server-Sent Events."""
        user, session = request["user"], request["session"]

        def alive() -> str | None:
            if session is not None and self.sessions.find(session.token) is None:
                return "the session ended; log in again"
            if user not in self.users.names():
                return f"user {user!r} was deleted"
            return None

        try:
            return await self.topics.stream(request, user, request.query.get("filter", ""), alive=alive,
                                            headers=_HEADERS)
        except LiveViewError as exc:
            raise ConsoleError(exc.status, exc.message) from None

    # ------------------------------------------------------------------------------------- users

    async def user_list(self, request: web.Request) -> web.Response:
        """The user names (administrators)."""
        self._require_admin(request)
        return _json({"users": [{"name": name, "admin": self._is_admin(name)} for name in self.users.names()]})

    async def _user_change(self, request: web.Request, change: Callable[[dict[str, Any]], None],
                           *required: str) -> dict[str, Any]:
        self._require_admin(request)
        body = await self._body(request, *required)
        try:
            await self._off_loop(change, body)  # scrypt: off the loop
        except AuthError as exc:
            raise ConsoleError(400, str(exc)) from None
        return body

    async def user_add(self, request: web.Request) -> web.Response:
        """Create a user."""
        body = await self._user_change(request, lambda b: self.users.add(b["name"], b["password"]), "name",
                                       "password")
        log.info("user %r added from the console by %s", body["name"], request["user"])
        return _json({"code": 200, "message": f"user {body['name']} added"})

    async def user_password(self, request: web.Request) -> web.Response:
        """Change a user's password; the user's other console sessions end (an administrator changing its own
        password stays logged in here)."""
        session = request["session"]
        if session is not None:
            self._kept[session.user] = session.token
        try:
            body = await self._user_change(request, lambda b: self.users.set_password(b["name"], b["password"]),
                                           "name", "password")
        finally:
            if session is not None:
                self._kept.pop(session.user, None)
        log.info("password of user %r changed from the console by %s", body["name"], request["user"])
        return _json({"code": 200, "message": f"password of {body['name']} changed"})

    async def user_delete(self, request: web.Request) -> web.Response:
        """Delete a user (not the administrator); the user's console sessions end."""
        self._require_admin(request)
        name = (await self._body(request, "name"))["name"]
        if name == ADMINISTRATOR:
            raise ConsoleError(400, f"{ADMINISTRATOR} is the administrator and cannot be deleted here")
        await self._user_change(request, lambda b: self.users.delete(b["name"]), "name")
        self.sessions.close_user(name)
        log.info("user %r deleted from the console by %s", name, request["user"])
        return _json({"code": 200, "message": f"user {name} deleted"})


def _query_error(exc: QueryError) -> ConsoleError:
    """A statement's refusal as the console's answer: 403 for a missing privilege, 400 otherwise."""
    if exc.code == NO_PERMISSION:
        return ConsoleError(403, exc.message, NO_PERMISSION)
    return ConsoleError(400, exc.message)
