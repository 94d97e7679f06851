"""Users, roles and privileges in the query layer.

:func:`run_security` runs the user, role and privilege statements (``CREATE USER``, ``GRANT``, ``LIST
PRIVILEGES OF USER`` ...) against the session's user store; :class:`Guard` is what the executor asks before
and while it runs every other statement. As in IoTDB (a lack is status 803, ``NO_PERMISSION``):

* SELECT reads only the series the user may read (READ_DATA, or WRITE_DATA): the others are left out of
  wildcard matches; when a statement matches series but none of them is readable, it fails with 803;
* SHOW and COUNT list only what the user may see (READ_SCHEMA or WRITE_SCHEMA), silently;
* INSERT and DELETE need WRITE_DATA on every series they touch, CREATE/DELETE TIMESERIES and SET/UNSET TTL
  WRITE_SCHEMA, CREATE DATABASE MANAGE_DATABASE — otherwise 803 naming the paths;
* user statements need MANAGE_USER (a user may change its own password and list its own privileges), role
  statements MANAGE_ROLE, GRANT and REVOKE the privilege WITH GRANT OPTION on a covering pattern.

``root`` is never checked. A statement run without a session (the Python API on an engine) is not checked.
"""

from __future__ import annotations

from typing import Any

from iotdb_core.auth import AuthError, Session
from iotdb_core.authz import (
    ADMIN,
    GLOBAL_PRIVILEGES,
    NO_PERMISSION,
    PATH_PRIVILEGES,
    ROOT_ALL,
    AccessDenied,
    Grant,
    Principal,
    Privilege,
    parse_pattern,
    parse_privileges,
)
from iotdb_core.backend import StorageBackend
from iotdb_core.paths import PathError
from iotdb_core.query import ast
from iotdb_core.query.errors import ILLEGAL_PATH, QueryError, SemanticError
from iotdb_core.query.planner import SchemaView, check_path
from iotdb_core.query.result import MetadataResult, UpdateResult
from iotdb_core.storage.schema import SeriesSchema

__all__ = ["FilteredSchemaView", "Guard", "denied", "run_security"]

PRIVILEGE_COLUMNS = ["Role", "Scope", "Privileges", "GrantOption"]


def denied(exc: AccessDenied) -> QueryError:
    """An authorizer refusal as the statement error (803)."""
    return QueryError(NO_PERMISSION, exc.message)


class FilteredSchemaView(SchemaView):
    """A schema view that leaves out the series the user lacks ``privilege`` on, remembering them."""

    def __init__(self, engine: StorageBackend, guard: Guard, privilege: Privilege) -> None:
        super().__init__(engine)
        self._guard = guard
        self._privilege = privilege
        self.refused: set[str] = set()
        self.allowed = 0

    def expand(self, pattern: ast.Path) -> list[SeriesSchema]:
        found = super().expand(pattern)
        can = self._guard.authorizer.can
        kept = [series for series in found if can(self._guard.user, self._privilege, series.path)]
        if len(kept) != len(found):
            self.refused.update(series.path for series in found if series not in kept)
        self.allowed += len(kept)
        return kept

    def check_something_allowed(self) -> None:
        """803 when the statement matched series and the user may read none of them."""
        if self.refused and not self.allowed:
            raise denied(AccessDenied(self._privilege, sorted(self.refused)))


class Guard:
    """The checks of one statement run by a user who is not root."""

    def __init__(self, session: Session) -> None:
        self.user = session.user
        self.authorizer = session.authorizer

    def require(self, privilege: Privilege, paths: list[str] | None = None) -> None:
        """803 unless the user holds ``privilege`` globally (``paths`` None) or on every one of ``paths``."""
        try:
            self.authorizer.check(self.user, privilege, paths)
        except AccessDenied as exc:
            raise denied(exc) from None

    def require_pattern(self, privilege: Privilege, path: ast.Path) -> None:
        """803 unless the user holds ``privilege`` on a pattern covering all of ``path`` (TTL rules)."""
        pattern = _pattern(path)
        if not self.authorizer.holds_on(self.user, privilege, pattern):
            raise denied(AccessDenied(privilege, [".".join(pattern)]))

    def visible(self, privilege: Privilege, prefixes: list[str]) -> list[str]:
        """The databases or devices under which the user holds ``privilege`` somewhere."""
        return [prefix for prefix in prefixes if self.authorizer.may_see_under(self.user, privilege, prefix)]

    def schema(self, engine: StorageBackend, privilege: Privilege) -> FilteredSchemaView:
        return FilteredSchemaView(engine, self, privilege)


def _pattern(path: ast.Path) -> tuple[str, ...]:
    text = check_path(path, wildcards=True)
    try:
        return parse_pattern(text)
    except PathError as exc:
        raise QueryError(ILLEGAL_PATH, str(exc)) from None


# ----------------------------------------------------------------------------- the security statements


def run_security(statement: Any, session: Session | None) -> MetadataResult | UpdateResult:
    """Run a user, role or privilege statement as ``session.user``."""
    if session is None:
        raise SemanticError(
            f"{_STATEMENT_NAMES[type(statement)]} needs a server's users: run it through `iotdb serve` (REST) "
            "or `iotdb query --data-dir`"
        )
    try:
        return _SecurityStatements(session).run(statement)
    except AccessDenied as exc:
        raise denied(exc) from None
    except AuthError as exc:
        raise QueryError(exc.code, exc.message) from None


_STATEMENT_NAMES: dict[type, str] = {
    ast.CreateUser: "CREATE USER", ast.AlterUserPassword: "ALTER USER", ast.DropUser: "DROP USER",
    ast.CreateRole: "CREATE ROLE", ast.DropRole: "DROP ROLE", ast.GrantPrivileges: "GRANT",
    ast.RevokePrivileges: "REVOKE", ast.GrantRole: "GRANT ROLE", ast.RevokeRole: "REVOKE ROLE",
    ast.ListUser: "LIST USER", ast.ListRole: "LIST ROLE", ast.ListPrivileges: "LIST PRIVILEGES",
}


class _SecurityStatements:
    def __init__(self, session: Session) -> None:
        self.user = session.user
        self.users = session.users
        self.authorizer = session.authorizer

    def run(self, statement: Any) -> MetadataResult | UpdateResult:
        handler = getattr(self, "_" + type(statement).__name__)
        result: MetadataResult | UpdateResult = handler(statement)
        return result

    def _require(self, privilege: Privilege) -> None:
        self.authorizer.check(self.user, privilege)

    # users -----------------------------------------------------------------------------------------------

    def _CreateUser(self, statement: ast.CreateUser) -> UpdateResult:
        self._require(Privilege.MANAGE_USER)
        self.users.add(statement.name, statement.password)
        return UpdateResult("CREATE USER", 1)

    def _AlterUserPassword(self, statement: ast.AlterUserPassword) -> UpdateResult:
        if statement.name != self.user:
            self._require(Privilege.MANAGE_USER)
        self.users.set_password(statement.name, statement.password)
        return UpdateResult("ALTER USER", 1)

    def _DropUser(self, statement: ast.DropUser) -> UpdateResult:
        self._require(Privilege.MANAGE_USER)
        self.users.delete(statement.name)
        return UpdateResult("DROP USER", 1)

    def _ListUser(self, statement: ast.ListUser) -> MetadataResult:
        self._require(Privilege.MANAGE_USER)
        names = self.users.names() if statement.of_role is None else self.users.users_of(statement.of_role)
        return MetadataResult(["User"], [(name,) for name in names])

    # roles -----------------------------------------------------------------------------------------------

    def _CreateRole(self, statement: ast.CreateRole) -> UpdateResult:
        self._require(Privilege.MANAGE_ROLE)
        self.users.create_role(statement.name)
        return UpdateResult("CREATE ROLE", 1)

    def _DropRole(self, statement: ast.DropRole) -> UpdateResult:
        self._require(Privilege.MANAGE_ROLE)
        self.users.drop_role(statement.name)
        return UpdateResult("DROP ROLE", 1)

    def _GrantRole(self, statement: ast.GrantRole) -> UpdateResult:
        self._require(Privilege.MANAGE_ROLE)
        self.users.grant_role(statement.role, statement.user)
        return UpdateResult("GRANT ROLE", 1)

    def _RevokeRole(self, statement: ast.RevokeRole) -> UpdateResult:
        self._require(Privilege.MANAGE_ROLE)
        self.users.revoke_role(statement.role, statement.user)
        return UpdateResult("REVOKE ROLE", 1)

    def _ListRole(self, statement: ast.ListRole) -> MetadataResult:
        if statement.of_user is None or statement.of_user != self.user:
            self._require(Privilege.MANAGE_ROLE)
        names = self.users.role_names() if statement.of_user is None else self.users.roles_of(statement.of_user)
        return MetadataResult(["Role"], [(name,) for name in names])

    # privileges ------------------------------------------------------------------------------------------

    def _privileges(self, names: tuple[str, ...], paths: tuple[ast.Path, ...]) -> tuple[set[Privilege], list[str]]:
        try:
            privileges = set(parse_privileges(names))
        except ValueError as exc:
            raise SemanticError(str(exc)) from None
        if not paths:
            if privileges & PATH_PRIVILEGES:
                shown = ", ".join(sorted(p.value for p in privileges & PATH_PRIVILEGES))
                raise SemanticError(f"{shown} hold on paths: add ON <path pattern> (e.g. ON root.sg.**)")
            return privileges, ["root.**"]
        return privileges, [".".join(_pattern(path)) for path in paths]

    def _check_grantable(self, privileges: set[Privilege], patterns: list[str]) -> None:
        for privilege in sorted(privileges, key=lambda p: p.value):
            for text in patterns:
                if not self.authorizer.can_grant(self.user, privilege, parse_pattern(text)):
                    raise AuthError(
                        "No permissions for this operation, please add grant option to privilege "
                        f"{privilege.value} on [{text}]", NO_PERMISSION,
                    )

    def _GrantPrivileges(self, statement: ast.GrantPrivileges) -> UpdateResult:
        privileges, patterns = self._privileges(statement.privileges, statement.paths)
        self._check_grantable(privileges, patterns)
        self.users.grant(statement.kind, statement.name, privileges, patterns, grant_option=statement.grant_option)
        return UpdateResult("GRANT", 1)

    def _RevokePrivileges(self, statement: ast.RevokePrivileges) -> UpdateResult:
        privileges, patterns = self._privileges(statement.privileges, statement.paths)
        self._check_grantable(privileges, patterns)
        self.users.revoke(statement.kind, statement.name, privileges, patterns)
        return UpdateResult("REVOKE", 1)

    def _ListPrivileges(self, statement: ast.ListPrivileges) -> MetadataResult:
        principal = self.users.principal(statement.kind, statement.name)
        if statement.kind == "user":
            if statement.name != self.user:
                self._require(Privilege.MANAGE_USER)
            if statement.name == ADMIN:
                return MetadataResult(PRIVILEGE_COLUMNS, _rows("", _everything()))
            rows = _rows("", principal)
            for role in principal.roles:
                held = self.users.access().roles.get(role)
                if held is not None:
                    rows.extend(_rows(role, held))
            return MetadataResult(PRIVILEGE_COLUMNS, rows)
        own_roles = self.users.access().users.get(self.user, Principal()).roles
        if statement.name not in own_roles:
            self._require(Privilege.MANAGE_ROLE)
        return MetadataResult(PRIVILEGE_COLUMNS, _rows(statement.name, principal))


def _everything() -> Principal:
    return Principal({"root.**": Grant(ROOT_ALL, frozenset(Privilege), frozenset(Privilege))})


def _rows(role: str, principal: Principal) -> list[tuple[Any, ...]]:
    """IoTDB's LIST PRIVILEGES rows: one per privilege; global ones with an empty scope, listed first."""
    global_rows: list[tuple[Any, ...]] = []
    path_rows: list[tuple[Any, ...]] = []
    for text in sorted(principal.grants):
        grant = principal.grants[text]
        for privilege in sorted(grant.privileges, key=lambda p: p.value):
            option = privilege in grant.grant_option
            if privilege in GLOBAL_PRIVILEGES:
                global_rows.append((role, "", privilege.value, option))
            else:
                path_rows.append((role, text, privilege.value, option))
    return global_rows + path_rows
