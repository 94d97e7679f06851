"""Users and passwords, kept in ``<data_dir>/users.json`` as salted scrypt hashes (never plain text).

The first open of a data directory creates ``root``/``root`` and logs a warning to change it.
scrypt is deliberately slow (tens of milliseconds), so a successful check is remembered as a keyed
digest for the life of the process: a fleet of devices reconnecting with the same credentials costs
one scrypt per user, not one per connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from iotdb_core.durable import atomic_write
from iotdb_core.errors import IoTDBError

log = logging.getLogger("iotdb.auth")

USERS_FILE = "users.json"
DEFAULT_USER = "root"
DEFAULT_PASSWORD = "root"
_USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_MIN_PASSWORD = 4
_MAX_PASSWORD = 256


@dataclass(frozen=True)
class ScryptParameters:
    """Cost parameters stored with each hash, so they can be raised later without breaking old hashes."""

    n: int = 2**14
    r: int = 8
    p: int = 1


class AuthError(IoTDBError):
    """A user-management request that cannot be carried out (unknown user, weak password, ...)."""


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


class UserStore:
    """The users of one data directory. Thread-safe; changes are written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / USERS_FILE
        self._lock = threading.Lock()
        self._verified: dict[str, bytes] = {}
        self._cache_key = os.urandom(32)
        self._users: dict[str, dict[str, object]] = self._load()

    @classmethod
    def open(cls, data_dir: Path) -> UserStore:
        """Open the store, creating ``root``/``root`` (with a warning) when there are no users yet."""
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        store = cls(data_dir)
        with store._lock:
            if not store._users:
                store._users[DEFAULT_USER] = hash_password(DEFAULT_PASSWORD)
                store._save()
                log.warning("created user %r with the default password; change it with "
                            "`iotdb user passwd %s`", DEFAULT_USER, DEFAULT_USER)
        return store

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            content = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise AuthError(f"cannot read {self._path}: {exc}") from None
        try:
            data = json.loads(content)
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("users is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError(f"{self._path} is not a valid user file: {exc}") from None
        return users

    def _save(self) -> None:
        payload = json.dumps({"version": 1, "users": self._users}, indent=2, sort_keys=True)
        atomic_write(self._path, payload.encode("utf-8"))

    def names(self) -> list[str]:
        """User names, sorted."""
        with self._lock:
            return sorted(self._users)

    def add(self, name: str, password: str) -> None:
        """Create a user; fails if the name is taken or invalid, or the password too short."""
        _check_name(name)
        _check_password(password)
        record = hash_password(password)
        with self._lock:
            if name in self._users:
                raise AuthError(f"user {name!r} already exists")
            self._users[name] = record
            self._save()

    def set_password(self, name: str, password: str) -> None:
        """Change a user's password."""
        _check_password(password)
        record = hash_password(password)
        with self._lock:
            if name not in self._users:
                raise AuthError(f"no user named {name!r}")
            self._users[name] = record
            self._verified.pop(name, None)
            self._save()

    def delete(self, name: str) -> None:
        """Remove a user; the last user cannot be removed (nobody could log in)."""
        with self._lock:
            if name not in self._users:
                raise AuthError(f"no user named {name!r}")
            if len(self._users) == 1:
                raise AuthError(f"{name!r} is the only user; add another before deleting it")
            del self._users[name]
            self._verified.pop(name, None)
            self._save()

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


def _check_name(name: str) -> None:
    if not _USER_NAME.fullmatch(name):
        raise AuthError(f"user name {name!r} must be 1-64 letters, digits or any of _ . @ -")


def _check_password(password: str) -> None:
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise AuthError(f"a password must have {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
