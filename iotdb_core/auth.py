"""Users, roles and their privileges, kept in ``<data_dir>/users.json`` (passwords as salted scrypt hashes).

The first open of a data directory creates ``root``/``root`` and logs a warning to change it.
scrypt is deliberately slow (tens of milliseconds), so a successful check is remembered as a keyed
digest until the user's password changes: a fleet of devices reconnecting with the same credentials costs
one scrypt per user, not one per connection.

The file may be changed by another process (``iotdb user ...`` on the data directory of a running server):
:meth:`UserStore.refresh` notices a new file by its inode, modification time and size (one ``stat``) and
loads it whole — the file is only ever replaced by a rename, so a half-written file is never read — and
:meth:`UserStore.watch` calls it every quarter second. Changes are made under an exclusive ``flock`` on
``users.json.lock`` after reloading the file, so two processes never overwrite each other's change.
Subscribers (:meth:`UserStore.on_change`) learn which users' credentials changed or were deleted.

Format version 2 adds roles and grants; a version 1 file (users and hashes only) is read as version 2 with
each existing user other than root granted ALL on ``root.**``, the access every user had before privileges
existed, and is written as version 2 on the next change.
"""

from __future__ import annotations

import base64
import copy
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotdb_core.authz import (
    ADMIN,
    GLOBAL_PRIVILEGES,
    ROOT_ALL,
    AccessSnapshot,
    Authorizer,
    Grant,
    Principal,
    Privilege,
    covers,
    parse_pattern,
)
from iotdb_core.errors import IoTDBError
from iotdb_core.paths import PathError

log = logging.getLogger("iotdb.auth")

USERS_FILE = "users.json"
LOCK_FILE = USERS_FILE + ".lock"
FORMAT_VERSION = 2
DEFAULT_USER = ADMIN
DEFAULT_PASSWORD = "root"
#: How often :meth:`UserStore.watch` looks at the file.
WATCH_INTERVAL_S = 0.25
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_MIN_PASSWORD = 4
_MAX_PASSWORD = 256
_PASSWORD_FIELDS = ("scheme", "n", "r", "p", "salt", "hash")

# IoTDB's status codes for user and role management (TSStatusCode).
USER_NOT_EXIST = 804
USER_ALREADY_EXIST = 805
USER_ALREADY_HAS_ROLE = 806
USER_NOT_HAS_ROLE = 807
ROLE_NOT_EXIST = 808
ROLE_ALREADY_EXIST = 809
ILLEGAL_PRIVILEGE = 816
UNSUPPORTED_AUTH_OPERATION = 814
SEMANTIC_ERROR = 701

Records = dict[str, dict[str, Any]]
ChangeCallback = Callable[[frozenset[str]], None]


@dataclass(frozen=True)
class ScryptParameters:
    """Cost parameters stored with each hash, so they can be raised later without breaking old hashes."""

    n: int = 2**14
    r: int = 8
    p: int = 1


class AuthError(IoTDBError):
    """A user-management request that cannot be carried out; ``code`` is IoTDB's status code for it."""

    def __init__(self, message: str, code: int = SEMANTIC_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def hash_password(password: str, params: ScryptParameters = ScryptParameters()) -> dict[str, object]:
    """Return a fresh salted scrypt record for ``password``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=params.n, r=params.r, p=params.p, dklen=32)
    return {
        "scheme": "scrypt", "n": params.n, "r": params.r, "p": params.p,
        "salt": base64.b64encode(salt).decode("ascii"), "hash": base64.b64encode(digest).decode("ascii"),
    }


def check_password(password: str, record: dict[str, object]) -> bool:
    """True when ``password`` matches the stored scrypt ``record``."""
    salt = base64.b64decode(str(record["salt"]))
    expected = base64.b64decode(str(record["hash"]))
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(str(record["n"])),
                            r=int(str(record["r"])), p=int(str(record["p"])), dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path``: temporary file, fsync, rename over, fsync the directory (readers see old or new)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UserStore:
    """The users and roles of one data directory. Thread-safe; changes are written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / USERS_FILE
        self._lock_path = Path(data_dir) / LOCK_FILE
        self._lock = threading.Lock()
        self._verified: dict[str, bytes] = {}
        self._cache_key = os.urandom(32)
        self._listeners: list[ChangeCallback] = []
        self._users: Records = {}
        self._roles: Records = {}
        self._signature: tuple[int, int, int] | None = None
        self._generation = 0
        self._snapshot = AccessSnapshot({}, {}, 0)
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._reload_failed = False
        #: Set by :meth:`open` when it created ``root``/``root`` (and said so).
        self.created_root = False
        #: The one authorizer over this store (its caches follow the store's generation).
        self.authorizer = Authorizer(self)
        loaded = self._read()
        if loaded is not None:
            self._install(*loaded)

    @classmethod
    def open(cls, data_dir: Path) -> UserStore:
        """Open the store, creating ``root``/``root`` (with a warning) when there are no users yet."""
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        store = cls(data_dir)
        if not store.names():
            created = hash_password(DEFAULT_PASSWORD)

            def create_root(users: Records, _roles: Records) -> set[str]:
                if not users:
                    users[DEFAULT_USER] = {**created, "roles": [], "privileges": {}}
                    log.warning("created user %r with the default password; change it with "
                                "`iotdb user passwd %s`", DEFAULT_USER, DEFAULT_USER)
                return set()

            store._change(create_root)
            store.created_root = True
        return store

    # ------------------------------------------------------------------------------ reading the file

    def _read(self) -> tuple[Records, Records, tuple[int, int, int] | None] | None:
        """The file's users, roles and signature; None when there is no file."""
        try:
            with open(self._path, "rb") as handle:
                status = os.fstat(handle.fileno())
                content = handle.read().decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read {self._path}: {exc}") from None
        signature = (status.st_ino, status.st_mtime_ns, status.st_size)
        try:
            data = json.loads(content)
            users, roles = _upgrade(data)
            _snapshot_of(users, roles, 0)  # validates every grant
        except (ValueError, KeyError, TypeError, AttributeError, PathError) as exc:
            raise AuthError(f"{self._path} is not a valid user file: {exc}") from None
        return users, roles, signature

    def _current_signature(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            return None
        return (status.st_ino, status.st_mtime_ns, status.st_size)

    def refresh(self) -> bool:
        """Load the file again if another process replaced it; True when it did. One ``stat`` otherwise."""
        if self._current_signature() == self._signature:
            return False
        loaded = self._read()
        if loaded is None:
            return False  # removed by hand: keep serving the users known
        changed = self._install(*loaded)
        self._notify(changed)
        return True

    def _install(self, users: Records, roles: Records, signature: tuple[int, int, int] | None) -> frozenset[str]:
        """Make ``users`` and ``roles`` current; returns the users whose credentials changed or went away."""
        with self._lock:
            changed = frozenset(
                name for name, record in self._users.items()
                if name not in users or users[name].get("hash") != record.get("hash")
            )
            for name in changed:
                self._verified.pop(name, None)
            self._users, self._roles, self._signature = users, roles, signature
            self._generation += 1
            self._snapshot = _snapshot_of(users, roles, self._generation)
        return changed

    # ------------------------------------------------------------------------------ watching

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(names)`` after each change with the users whose password changed or who were
        deleted (possibly none); from the thread that made or noticed the change."""
        self._listeners.append(callback)

    def _notify(self, changed: frozenset[str]) -> None:
        for callback in list(self._listeners):
            try:
                callback(changed)
            except Exception:
                log.exception("a user-change subscriber failed")

    def watch(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Check the file every ``interval`` seconds on a daemon thread until :meth:`close`."""
        if self._watcher is not None:
            return
        self._stop_watching.clear()
        self._watcher = threading.Thread(target=self._watch, args=(interval,), name="iotdb-users", daemon=True)
        self._watcher.start()

    def _watch(self, interval: float) -> None:
        while not self._stop_watching.wait(interval):
            try:
                self.refresh()
                self._reload_failed = False
            except AuthError as exc:
                if not self._reload_failed:  # say it once, not four times a second
                    log.error("%s; keeping the users loaded before", exc)
                self._reload_failed = True

    def close(self) -> None:
        """Stop watching the file."""
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    # ------------------------------------------------------------------------------ changing

    @contextmanager
    def _file_locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _change(self, apply: Callable[[Records, Records], set[str]]) -> None:
        """Apply a change to copies of the current users and roles, write them and make them current.

        ``apply`` raises :class:`AuthError` to refuse (nothing changes) and returns the users whose
        credentials it changed; users it removed are found by comparison.
        """
        with self._file_locked():
            loaded = self._read() if self._current_signature() != self._signature else None
            if loaded is not None:
                self._notify(self._install(*loaded))
            with self._lock:
                users, roles = copy.deepcopy(self._users), copy.deepcopy(self._roles)
            touched = apply(users, roles)
            _snapshot_of(users, roles, 0)
            payload = json.dumps({"version": FORMAT_VERSION, "users": users, "roles": roles}, indent=2,
                                 sort_keys=True)
            _write_atomically(self._path, payload.encode("utf-8"))
            changed = self._install(users, roles, self._current_signature())
        self._notify(changed | frozenset(touched))

    # users ---------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """User names, sorted."""
        with self._lock:
            return sorted(self._users)

    def add(self, name: str, password: str) -> None:
        """Create a user (no privileges); fails if the name is taken or invalid, or the password too short."""
        _check_name(name, "user")
        _check_password(password)
        record = hash_password(password)

        def apply(users: Records, roles: Records) -> set[str]:
            if name in users:
                raise AuthError(f"user {name!r} already exists", USER_ALREADY_EXIST)
            users[name] = {**record, "roles": [], "privileges": {}}
            return set()

        self._change(apply)

    def set_password(self, name: str, password: str) -> None:
        """Change a user's password."""
        _check_password(password)
        record = hash_password(password)

        def apply(users: Records, roles: Records) -> set[str]:
            _user(users, name).update(record)
            return {name}

        self._change(apply)

    def delete(self, name: str) -> None:
        """Remove a user; root (the administrator) cannot be removed."""

        def apply(users: Records, roles: Records) -> set[str]:
            _user(users, name)
            if len(users) == 1:
                raise AuthError(f"{name!r} is the only user; add another before deleting it",
                                UNSUPPORTED_AUTH_OPERATION)
            if name == ADMIN:
                raise AuthError(f"{name!r} is the administrator and cannot be deleted", UNSUPPORTED_AUTH_OPERATION)
            del users[name]
            return {name}

        self._change(apply)

    def verify(self, name: str | None, password: str | bytes | None) -> bool:
        """True when ``name`` exists and ``password`` is its password."""
        if name is None or password is None:
            return False
        if isinstance(password, bytes):
            try:
                password = password.decode("utf-8")
            except UnicodeDecodeError:
                return False
        fingerprint = hmac.new(self._cache_key, password.encode("utf-8"), hashlib.sha256).digest()
        with self._lock:
            record = self._users.get(name)
            remembered = self._verified.get(name)
        if record is None:
            return False
        if remembered is not None and hmac.compare_digest(remembered, fingerprint):
            return True
        if not check_password(password, record):
            return False
        with self._lock:
            if self._users.get(name) is record:
                self._verified[name] = fingerprint
        return True

    def root_has_default_password(self) -> bool:
        """Whether ``root`` still logs in with ``root`` (one scrypt, then remembered)."""
        return self.verify(DEFAULT_USER, DEFAULT_PASSWORD)

    # roles ---------------------------------------------------------------------------------------------

    def role_names(self) -> list[str]:
        """Role names, sorted."""
        with self._lock:
            return sorted(self._roles)

    def roles_of(self, user: str) -> list[str]:
        """The roles granted to ``user``, sorted."""
        with self._lock:
            return sorted(_user(self._users, user).get("roles", []))

    def users_of(self, role: str) -> list[str]:
        """The users holding ``role``, sorted."""
        with self._lock:
            _role(self._roles, role)
            return sorted(name for name, record in self._users.items() if role in record.get("roles", []))

    def create_role(self, name: str) -> None:
        """Create a role without privileges."""
        _check_name(name, "role")

        def apply(users: Records, roles: Records) -> set[str]:
            if name in roles:
                raise AuthError(f"role {name!r} already exists", ROLE_ALREADY_EXIST)
            roles[name] = {"privileges": {}}
            return set()

        self._change(apply)

    def drop_role(self, name: str) -> None:
        """Remove a role, and it from every user holding it."""

        def apply(users: Records, roles: Records) -> set[str]:
            _role(roles, name)
            del roles[name]
            for record in users.values():
                if name in record.get("roles", []):
                    record["roles"].remove(name)
            return set()

        self._change(apply)

    def grant_role(self, role: str, user: str) -> None:
        """Give ``user`` the privileges of ``role``."""

        def apply(users: Records, roles: Records) -> set[str]:
            record = _user(users, user)
            _role(roles, role)
            held = record.setdefault("roles", [])
            if role in held:
                raise AuthError(f"user {user!r} already has role {role!r}", USER_ALREADY_HAS_ROLE)
            held.append(role)
            return set()

        self._change(apply)

    def revoke_role(self, role: str, user: str) -> None:
        """Take ``role`` from ``user``."""

        def apply(users: Records, roles: Records) -> set[str]:
            record = _user(users, user)
            _role(roles, role)
            held = record.setdefault("roles", [])
            if role not in held:
                raise AuthError(f"user {user!r} does not have role {role!r}", USER_NOT_HAS_ROLE)
            held.remove(role)
            return set()

        self._change(apply)

    # privileges ----------------------------------------------------------------------------------------

    def grant(self, kind: str, name: str, privileges: Iterable[Privilege], patterns: Iterable[str],
              *, grant_option: bool = False) -> None:
        """Grant ``privileges`` on each of ``patterns`` to the user or role (``kind``) ``name``."""
        wanted, parsed = _privileges_on(privileges, patterns)

        def apply(users: Records, roles: Records) -> set[str]:
            grants = _grants_of(users, roles, kind, name)
            for pattern in parsed:
                text = ".".join(pattern)
                entry = grants.setdefault(text, {"privileges": [], "grant_option": []})
                entry["privileges"] = sorted(set(entry["privileges"]) | {p.value for p in wanted})
                if grant_option:
                    entry["grant_option"] = sorted(set(entry["grant_option"]) | {p.value for p in wanted})
            return set()

        self._change(apply)

    def revoke(self, kind: str, name: str, privileges: Iterable[Privilege], patterns: Iterable[str]) -> None:
        """Revoke ``privileges`` from every grant of ``name`` whose pattern lies within one of ``patterns``
        (IoTDB: revoking on ``root.sg.**`` also clears a grant on ``root.sg.d1``)."""
        wanted, parsed = _privileges_on(privileges, patterns)
        removed = {p.value for p in wanted}

        def apply(users: Records, roles: Records) -> set[str]:
            grants = _grants_of(users, roles, kind, name)
            for text in list(grants):
                pattern = parse_pattern(text)
                if not any(covers(outer, pattern) for outer in parsed):
                    continue
                entry = grants[text]
                entry["privileges"] = sorted(set(entry["privileges"]) - removed)
                entry["grant_option"] = sorted(set(entry.get("grant_option", [])) - removed)
                if not entry["privileges"]:
                    del grants[text]
            return set()

        self._change(apply)

    def access(self) -> AccessSnapshot:
        """The users, roles and grants as they are now (an immutable snapshot; cheap)."""
        return self._snapshot

    def session(self, user: str) -> Session:
        """What the query layer needs to run statements as ``user`` (an authenticated user name)."""
        return Session(user, self)

    def principal(self, kind: str, name: str) -> Principal:
        """The grants (and, for a user, the roles) of one user or role; AuthError if unknown."""
        snapshot = self._snapshot
        found = (snapshot.users if kind == "user" else snapshot.roles).get(name)
        if found is None:
            if kind == "user":
                raise AuthError(f"no user named {name!r}", USER_NOT_EXIST)
            raise AuthError(f"no role named {name!r}", ROLE_NOT_EXIST)
        return found


@dataclass(frozen=True)
class Session:
    """Who runs a statement, and the store its privileges and user statements go to."""

    user: str
    users: UserStore

    @property
    def authorizer(self) -> Authorizer:
        return self.users.authorizer


# ------------------------------------------------------------------------------------------ helpers


def _upgrade(data: Any) -> tuple[Records, Records]:
    """Users and roles of a parsed file of any known version, as version 2 records."""
    if not isinstance(data, dict):
        raise TypeError("the file is not a JSON object")
    version = data.get("version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"format version {version!r} is newer than this program reads ({FORMAT_VERSION})")
    users = data["users"]
    if not isinstance(users, dict):
        raise TypeError("users is not an object")
    roles = data.get("roles", {}) if version >= 2 else {}
    if not isinstance(roles, dict):
        raise TypeError("roles is not an object")
    if version == 1:
        migrated = []
        for name, record in users.items():
            users[name] = {**record, "roles": [], "privileges": {}}
            if name != ADMIN:
                users[name]["privileges"]["root.**"] = {"privileges": sorted(p.value for p in Privilege),
                                                        "grant_option": []}
                migrated.append(name)
        if migrated:
            log.warning("users.json is of format version 1 (no privileges): users %s keep the full access they "
                        "had (ALL on root.**); narrow it with REVOKE ALL ON root.** FROM USER <name> and GRANT",
                        ", ".join(sorted(migrated)))
    for name, record in users.items():
        missing = [key for key in _PASSWORD_FIELDS if key not in record]
        if missing:
            raise KeyError(f"user {name!r} lacks {', '.join(missing)}")
    return users, roles


def _grants(raw: Any, owner: str) -> dict[str, Grant]:
    if not isinstance(raw, dict):
        raise TypeError(f"privileges of {owner} is not an object")
    grants = {}
    for text, entry in raw.items():
        pattern = parse_pattern(text)
        grants[".".join(pattern)] = Grant(
            pattern,
            frozenset(Privilege(p) for p in entry["privileges"]),
            frozenset(Privilege(p) for p in entry.get("grant_option", [])),
        )
    return grants


def _snapshot_of(users: Records, roles: Records, generation: int) -> AccessSnapshot:
    return AccessSnapshot(
        {
            name: Principal(_grants(record.get("privileges", {}), f"user {name!r}"), tuple(record.get("roles", [])))
            for name, record in users.items()
        },
        {name: Principal(_grants(record.get("privileges", {}), f"role {name!r}")) for name, record in roles.items()},
        generation,
    )


def _user(users: Records, name: str) -> dict[str, Any]:
    record = users.get(name)
    if record is None:
        raise AuthError(f"no user named {name!r}", USER_NOT_EXIST)
    return record


def _role(roles: Records, name: str) -> dict[str, Any]:
    record = roles.get(name)
    if record is None:
        raise AuthError(f"no role named {name!r}", ROLE_NOT_EXIST)
    return record


def _grants_of(users: Records, roles: Records, kind: str, name: str) -> dict[str, Any]:
    if kind == "user":
        if name == ADMIN:
            raise AuthError(f"the privileges of {ADMIN!r} are fixed (it holds every privilege)",
                            UNSUPPORTED_AUTH_OPERATION)
        record = _user(users, name)
    else:
        record = _role(roles, name)
    privileges: dict[str, Any] = record.setdefault("privileges", {})
    return privileges


def _privileges_on(privileges: Iterable[Privilege], patterns: Iterable[str]) -> tuple[set[Privilege],
                                                                                        list[tuple[str, ...]]]:
    """Check a GRANT/REVOKE's privileges and patterns: global privileges only on ``root.**``, as in IoTDB."""
    wanted = set(privileges)
    if not wanted:
        raise AuthError("no privilege given", ILLEGAL_PRIVILEGE)
    try:
        parsed = [parse_pattern(text) for text in patterns]
    except PathError as exc:
        raise AuthError(str(exc), ILLEGAL_PRIVILEGE) from None
    if not parsed:
        raise AuthError("no path given", ILLEGAL_PRIVILEGE)
    global_ones = sorted(p.value for p in wanted & GLOBAL_PRIVILEGES)
    if global_ones and any(pattern != ROOT_ALL for pattern in parsed):
        raise AuthError(f"global privileges ({', '.join(global_ones)}) are granted on root.** only",
                        ILLEGAL_PRIVILEGE)
    return wanted, parsed


def _check_name(name: str, kind: str) -> None:
    if not _NAME.fullmatch(name):
        raise AuthError(f"{kind} name {name!r} must be 1-64 letters, digits or any of _ . @ -")


def _check_password(password: str) -> None:
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise AuthError(f"a password must have {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
