"""Privileges as IoTDB models them, and the one authorizer every surface asks.

Series privileges (READ_DATA, WRITE_DATA, READ_SCHEMA, WRITE_SCHEMA) hold on path patterns, where ``*``
stands for one node and ``**`` for one or more; global privileges (MANAGE_USER, MANAGE_ROLE, MANAGE_DATABASE,
...) hold everywhere. As in IoTDB, WRITE_DATA also lets a user read the data and WRITE_SCHEMA read the schema;
a user's privileges are its own grants plus those of its roles; ``root`` holds every privilege and is never
checked.

This module imports neither the storage engine nor the query layer, so the MQTT write path can call
:meth:`Authorizer.can` per row: answers are cached per user and privilege, and the whole cache is dropped
whenever the user store's generation changes (any user, role or grant change, or a reload of the file).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from iotdb_core.errors import IoTDBError
from iotdb_core.formatter import Row
from iotdb_core.paths import quote_node, split_path, unquote_node

__all__ = [
    "ADMIN",
    "COMPOSITES",
    "GLOBAL_PRIVILEGES",
    "NO_PERMISSION",
    "PATH_PRIVILEGES",
    "ROOT_ALL",
    "AccessDenied",
    "AccessSnapshot",
    "Authorizer",
    "Grant",
    "Principal",
    "Privilege",
    "covers",
    "matches",
    "overlaps",
    "parse_pattern",
    "parse_privileges",
]

#: IoTDB's status code for a statement the user lacks a privilege for.
NO_PERMISSION = 803
#: The administrator: every privilege, fixed, cannot be deleted.
ADMIN = "root"


class Privilege(StrEnum):
    """IoTDB's privilege types (1.3 and later)."""

    READ_DATA = "READ_DATA"
    WRITE_DATA = "WRITE_DATA"
    READ_SCHEMA = "READ_SCHEMA"
    WRITE_SCHEMA = "WRITE_SCHEMA"
    MANAGE_USER = "MANAGE_USER"
    MANAGE_ROLE = "MANAGE_ROLE"
    MANAGE_DATABASE = "MANAGE_DATABASE"
    USE_TRIGGER = "USE_TRIGGER"
    USE_UDF = "USE_UDF"
    USE_CQ = "USE_CQ"
    USE_PIPE = "USE_PIPE"
    EXTEND_TEMPLATE = "EXTEND_TEMPLATE"
    MAINTAIN = "MAINTAIN"
    AUDIT = "AUDIT"


PATH_PRIVILEGES = frozenset({Privilege.READ_DATA, Privilege.WRITE_DATA, Privilege.READ_SCHEMA, Privilege.WRITE_SCHEMA})
GLOBAL_PRIVILEGES = frozenset(set(Privilege) - PATH_PRIVILEGES)
#: IoTDB's shorthands in GRANT and REVOKE.
COMPOSITES: Mapping[str, frozenset[Privilege]] = {
    "ALL": frozenset(Privilege),
    "READ": frozenset({Privilege.READ_DATA, Privilege.READ_SCHEMA}),
    "WRITE": frozenset({Privilege.WRITE_DATA, Privilege.WRITE_SCHEMA}),
}
#: A held privilege that also grants another (IoTDB: WRITE_DATA reads data, WRITE_SCHEMA reads the schema).
_IMPLIED_BY: Mapping[Privilege, tuple[Privilege, ...]] = {
    Privilege.READ_DATA: (Privilege.READ_DATA, Privilege.WRITE_DATA),
    Privilege.READ_SCHEMA: (Privilege.READ_SCHEMA, Privilege.WRITE_SCHEMA),
}
#: The pattern global privileges are granted on (IoTDB requires it to be written so).
ROOT_ALL = ("root", "**")


class AccessDenied(IoTDBError):
    """The user lacks a privilege (IoTDB's 803); the message names the privilege and the paths, as IoTDB's."""

    code = NO_PERMISSION

    def __init__(self, privilege: Privilege, paths: Iterable[str] = ()) -> None:
        shown = list(paths)
        where = f" on [{', '.join(shown[:10])}{', ...' if len(shown) > 10 else ''}]" if shown else ""
        super().__init__(f"No permissions for this operation, please add privilege {privilege.value}{where}")
        self.privilege = privilege
        self.paths = shown
        self.message = str(self)


# ------------------------------------------------------------------------------------------ patterns


def parse_pattern(text: str) -> tuple[str, ...]:
    """A path pattern's canonical nodes (``*`` and ``**`` allowed anywhere after ``root``); ``PathError`` naming
    the problem otherwise."""
    nodes = split_path(text.strip(), allow_wildcards=True)
    return ("root", *(node if node in ("*", "**") else quote_node(unquote_node(node)) for node in nodes[1:]))


def _path_nodes(path: str) -> tuple[str, ...]:
    """A concrete series path's nodes; the fast split when nothing is backquoted."""
    return tuple(path.split(".")) if "`" not in path else split_path(path)


def matches(pattern: tuple[str, ...], nodes: tuple[str, ...]) -> bool:
    """Whether the concrete path ``nodes`` matches ``pattern`` (``*``: one node, ``**``: one or more)."""
    if "**" not in pattern:
        return len(pattern) == len(nodes) and all(p in ("*", n) for p, n in zip(pattern, nodes, strict=True))
    reachable = [True] + [False] * len(nodes)  # reachable[j]: the pattern so far consumed exactly nodes[:j]
    for node in pattern:
        following = [False] * (len(nodes) + 1)
        if node == "**":
            seen = False
            for j in range(len(nodes) + 1):
                following[j] = seen
                seen = seen or reachable[j]
        else:
            for j in range(len(nodes)):
                if reachable[j] and node in ("*", nodes[j]):
                    following[j + 1] = True
        if not any(following):
            return False
        reachable = following
    return reachable[len(nodes)]


def covers(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    """Whether every path ``inner`` matches also matches ``outer`` (sound: True only when it is so).

    ``inner``'s wildcards are treated as symbols: ``outer``'s ``*`` takes one node or ``*``, its ``**`` takes
    one or more nodes of any kind, a plain node only itself.
    """
    reachable = [True] + [False] * len(inner)
    for node in outer:
        following = [False] * (len(inner) + 1)
        if node == "**":
            seen = False
            for j in range(len(inner) + 1):
                following[j] = seen
                seen = seen or reachable[j]
        else:
            for j in range(len(inner)):
                if reachable[j] and (inner[j] == node or (node == "*" and inner[j] != "**")):
                    following[j + 1] = True
        if not any(following):
            return False
        reachable = following
    return reachable[len(inner)]


def overlaps(pattern: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    """Whether some path below or at ``prefix`` (a concrete path) matches ``pattern``."""
    reachable = [True] + [False] * len(prefix)
    for node in pattern:
        if reachable[len(prefix)]:
            return True  # the prefix is consumed: the rest of the pattern can match nodes below it
        following = [False] * (len(prefix) + 1)
        if node == "**":
            seen = False
            for j in range(len(prefix) + 1):
                following[j] = seen
                seen = seen or reachable[j]
        else:
            for j in range(len(prefix)):
                if reachable[j] and (node == "*" or node == prefix[j]):
                    following[j + 1] = True
        if not any(following):
            return False
        reachable = following
    return reachable[len(prefix)]


def parse_privileges(names: Iterable[str]) -> frozenset[Privilege]:
    """Privilege names (and the shorthands ALL, READ, WRITE) as a set; ValueError naming an unknown one."""
    found: set[Privilege] = set()
    for name in names:
        upper = name.upper()
        if upper in COMPOSITES:
            found |= COMPOSITES[upper]
            continue
        try:
            found.add(Privilege(upper))
        except ValueError:
            known = ", ".join([*COMPOSITES, *(p.value for p in Privilege)])
            raise ValueError(f"unknown privilege {name!r}; expected one of {known}") from None
    return frozenset(found)


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Grant:
    """Privileges held on one pattern; ``grant_option`` those the holder may pass on (WITH GRANT OPTION)."""

    pattern: tuple[str, ...]
    privileges: frozenset[Privilege]
    grant_option: frozenset[Privilege] = frozenset()

    @property
    def text(self) -> str:
        return ".".join(self.pattern)


@dataclass(frozen=True)
class Principal:
    """A user or a role: its grants (by pattern text) and, for a user, its roles."""

    grants: Mapping[str, Grant] = field(default_factory=dict)
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessSnapshot:
    """Users and roles at one generation of the store; never mutated."""

    users: Mapping[str, Principal]
    roles: Mapping[str, Principal]
    generation: int

    def grants_of(self, user: str) -> list[Grant]:
        """The user's own grants followed by those of each of its roles."""
        principal = self.users.get(user)
        if principal is None:
            return []
        found = list(principal.grants.values())
        for role in principal.roles:
            held = self.roles.get(role)
            if held is not None:
                found.extend(held.grants.values())
        return found


class AccessSource(Protocol):
    """What the authorizer reads: the user store."""

    def access(self) -> AccessSnapshot: ...


#: Key of the cached "holds the privilege on root.**" answer among a user's cached answers.
_EVERYWHERE = object()


class Authorizer:
    """Answers "may this user do that here?" from the store's current snapshot, with per-user caches."""

    def __init__(self, source: AccessSource, *, cache_size: int = 65536) -> None:
        self._source = source
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._generation = -1
        self._patterns: dict[tuple[str, Privilege], tuple[tuple[str, ...], ...]] = {}
        #: Per (user, privilege): answers by series path, and by (device, measurements) for rows.
        self._answers: dict[tuple[str, Privilege], dict[Any, Any]] = {}

    def _compiled(self, user: str, privilege: Privilege) -> tuple[dict[Any, Any], tuple[tuple[str, ...], ...]]:
        snapshot = self._source.access()
        key = (user, privilege)
        with self._lock:
            if snapshot.generation != self._generation:
                self._generation = snapshot.generation
                self._patterns.clear()
                self._answers.clear()
            patterns = self._patterns.get(key)
            if patterns is None:
                accepted = _IMPLIED_BY.get(privilege, (privilege,))
                patterns = tuple(
                    grant.pattern for grant in snapshot.grants_of(user) if grant.privileges.intersection(accepted)
                )
                self._patterns[key] = patterns
                self._answers[key] = {}
            return self._answers[key], patterns

    @staticmethod
    def is_admin(user: str | None) -> bool:
        return user == ADMIN

    def exists(self, user: str) -> bool:
        return user in self._source.access().users

    def has_global(self, user: str | None, privilege: Privilege) -> bool:
        """Whether ``user`` holds a global privilege (anywhere: IoTDB grants them on ``root.**``)."""
        if user is None:
            return False
        if user == ADMIN:
            return True
        return bool(self._compiled(user, privilege)[1])

    def can(self, user: str | None, privilege: Privilege, path: str) -> bool:
        """Whether ``user`` holds ``privilege`` on the series ``path`` (a concrete path, canonical form)."""
        if user == ADMIN:
            return True
        if user is None:
            return False
        answers, patterns = self._compiled(user, privilege)
        answer = answers.get(path)
        if answer is None:
            if not patterns:
                return False
            nodes = _path_nodes(path)
            answer = any(matches(pattern, nodes) for pattern in patterns)
            if len(answers) >= self._cache_size:
                answers.clear()
            answers[path] = answer
        return answer

    def may_see_under(self, user: str | None, privilege: Privilege, prefix: str) -> bool:
        """Whether ``user`` holds ``privilege`` on some path at or below ``prefix`` (a database, a device)."""
        if user == ADMIN:
            return True
        if user is None:
            return False
        nodes = _path_nodes(prefix)
        return any(overlaps(pattern, nodes) for pattern in self._compiled(user, privilege)[1])

    def refused(self, user: str | None, privilege: Privilege, paths: Iterable[str]) -> list[str]:
        """The paths among ``paths`` on which ``user`` lacks ``privilege``."""
        if user == ADMIN:
            return []
        return [path for path in paths if not self.can(user, privilege, path)]

    def check(self, user: str | None, privilege: Privilege, paths: Iterable[str] | None = None) -> None:
        """Raise :class:`AccessDenied` unless ``user`` holds ``privilege`` (globally, or on every path)."""
        if paths is None:
            if not self.has_global(user, privilege):
                raise AccessDenied(privilege)
            return
        missing = self.refused(user, privilege, paths)
        if missing:
            raise AccessDenied(privilege, missing)

    def holds_on(self, user: str | None, privilege: Privilege, pattern: tuple[str, ...]) -> bool:
        """Whether ``user`` holds ``privilege`` on a granted pattern covering all of ``pattern``."""
        if user == ADMIN:
            return True
        if user is None:
            return False
        return any(covers(granted, pattern) for granted in self._compiled(user, privilege)[1])

    def writable_rows(self, user: str | None, rows: Sequence[Row]) -> tuple[list[Row], list[str]]:
        """Split formatted rows by the WRITE_DATA of ``user``: the rows trimmed to the measurements it may write
        (rows left empty dropped), and the series paths it may not.

        The answer for a row's (device, measurements) is cached, so a device publishing the same measurements
        again costs one dictionary lookup per row.
        """
        if user == ADMIN:
            return list(rows), []
        masks: dict[Any, Any] = {} if user is None else self._compiled(user, Privilege.WRITE_DATA)[0]
        everywhere = masks.get(_EVERYWHERE)
        if everywhere is None:
            everywhere = masks[_EVERYWHERE] = self.holds_on(user, Privilege.WRITE_DATA, ROOT_ALL)
        if everywhere:
            return list(rows), []
        kept: list[Row] = []
        refused: list[str] = []
        for row in rows:
            key = (row.device, row.measurements)
            allowed = masks.get(key)
            if allowed is None:
                prefix = row.device + "."
                allowed = tuple(self.can(user, Privilege.WRITE_DATA, prefix + name) for name in row.measurements)
                masks[key] = allowed
            if all(allowed):
                kept.append(row)
                continue
            refused.extend(f"{row.device}.{name}" for name, ok in zip(row.measurements, allowed, strict=True) if not ok)
            if any(allowed):
                types = row.types
                kept.append(row._replace(
                    measurements=tuple(m for m, ok in zip(row.measurements, allowed, strict=True) if ok),
                    values=tuple(v for v, ok in zip(row.values, allowed, strict=True) if ok),
                    types=None if types is None else tuple(t for t, ok in zip(types, allowed, strict=True) if ok),
                ))
        return kept, refused

    def can_grant(self, user: str | None, privilege: Privilege, pattern: tuple[str, ...]) -> bool:
        """Whether ``user`` may grant or revoke ``privilege`` on ``pattern``: it holds it WITH GRANT OPTION
        on a pattern covering ``pattern`` (root always may)."""
        if user == ADMIN:
            return True
        if user is None:
            return False
        snapshot = self._source.access()
        return any(
            privilege in grant.grant_option and (privilege in GLOBAL_PRIVILEGES or covers(grant.pattern, pattern))
            for grant in snapshot.grants_of(user)
        )
