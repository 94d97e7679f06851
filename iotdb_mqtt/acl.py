"""Per-user topic access for MQTT publish and subscribe, kept in ``<data_dir>/mqtt_acl.json``.

Rules grant ``read`` (subscribe), ``write`` (publish) or ``readwrite`` on topic patterns written like
topic filters, where ``%u`` stands for the user name and ``%c`` for the client id. What is not granted
is refused:

- ``root`` may publish and subscribe everywhere;
- any other user only where a rule of theirs allows: a new user can do nothing until an administrator
  grants it (``iotdb acl add USER readwrite 'devices/%u/#'``);
- anonymous clients (only with ``mqtt_allow_anonymous=true``) follow the rules stored for ``anonymous``;
  while none are stored they may use every topic but ``$SYS`` — the operator opened the broker;
- ``$SYS/...`` is read-only for everyone and readable only where a rule names it (root always).

A subscription is allowed when every topic its filter can match is allowed, so ``devices/#`` does not
let a user subscribe to ``#``. A ``%c`` rule never matches for a client id containing ``/``, ``+`` or ``#``.

The server re-reads the file when it changes (``iotdb acl`` edits it, also while the server runs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from iotdb_core.auth import DEFAULT_USER
from iotdb_core.errors import IoTDBError
from iotdb_core.storage.durable import atomic_write
from iotdb_mqtt.codec.topics import topic_filter_problem, topic_matches_filter

ACL_FILE: Final = "mqtt_acl.json"
ANONYMOUS: Final = "anonymous"
ACCESS_KINDS: Final = ("read", "write", "readwrite")
_SYS_PREFIX: Final = "$SYS"


class AclError(IoTDBError):
    """An ACL request that cannot be carried out (bad pattern, unknown access kind, unreadable file)."""


@dataclass(frozen=True, slots=True)
class AclRule:
    """One grant: ``access`` (read, write or readwrite) on topics matching ``pattern``."""

    access: str
    pattern: str

    @property
    def reads(self) -> bool:
        return self.access in ("read", "readwrite")

    @property
    def writes(self) -> bool:
        return self.access in ("write", "readwrite")


def filter_covers(pattern: str, topic_filter: str) -> bool:
    """True if every topic name ``topic_filter`` matches also matches ``pattern`` (both valid filters)."""
    if topic_filter.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    if pattern.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # the filter matches no $ topic, but it does match non-$ ones the pattern excludes
    wanted = topic_filter.split("/")
    granted = pattern.split("/")
    for index, level in enumerate(wanted):
        if index < len(granted) and granted[index] == "#":
            return True
        if index >= len(granted) or level == "#":
            return False
        if granted[index] != "+" and (level == "+" or level != granted[index]):
            return False
    if len(granted) == len(wanted):
        return True
    return len(granted) == len(wanted) + 1 and granted[-1] == "#"


class TopicAcl:
    """The topic rules of one data directory (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / ACL_FILE
        self._stamp: tuple[int, int, int] | None = None
        self._rules: dict[str, tuple[AclRule, ...]] = {}
        #: Goes up whenever the rules change, so callers may remember answers until it moves.
        self.generation = 0
        self.reload()

    # ------------------------------------------------------------------ file

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino, stat.st_size

    def reload(self) -> bool:
        """Read the file again if it changed since the last read; True if the rules changed."""
        stamp = self._file_stamp()
        if stamp == self._stamp and (stamp is not None or not self._rules):
            return False
        self._rules = self._read() if stamp is not None else {}
        self._stamp = stamp
        self.generation += 1
        return True

    def _read(self) -> dict[str, tuple[AclRule, ...]]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("'users' is not an object")
            return {name: tuple(_rule(entry) for entry in entries) for name, entries in users.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AclError(f"{self._path} is not a valid ACL file: {exc}") from None

    def _save(self) -> None:
        users = {name: [{"access": rule.access, "pattern": rule.pattern} for rule in rules]
                 for name, rules in sorted(self._rules.items()) if rules}
        atomic_write(self._path, json.dumps({"version": 1, "users": users}, indent=2).encode("utf-8"))
        self._stamp = self._file_stamp()
        self.generation += 1

    # ------------------------------------------------------------------ management

    def rules_of(self, user: str) -> tuple[AclRule, ...]:
        """The rules stored for ``user`` (``anonymous`` for clients without a user name)."""
        return self._rules.get(user, ())

    def users(self) -> list[str]:
        """Users that have rules, sorted."""
        return sorted(name for name, rules in self._rules.items() if rules)

    def grant(self, user: str, access: str, pattern: str) -> None:
        """Add a rule (replacing one on the same pattern)."""
        rule = _rule({"access": access, "pattern": pattern})
        self.reload()
        kept = tuple(existing for existing in self._rules.get(user, ()) if existing.pattern != pattern)
        self._rules[user] = (*kept, rule)
        self._save()

    def revoke(self, user: str, pattern: str) -> bool:
        """Remove the rule of ``user`` on ``pattern``; False if there was none."""
        self.reload()
        rules = self._rules.get(user, ())
        kept = tuple(rule for rule in rules if rule.pattern != pattern)
        if len(kept) == len(rules):
            return False
        self._rules[user] = kept
        self._save()
        return True

    # ------------------------------------------------------------------ checks

    def may_publish(self, user: str | None, client_id: str, topic: str) -> bool:
        """True if the client may publish to topic name ``topic``."""
        if topic.startswith(_SYS_PREFIX):
            return False
        if user == DEFAULT_USER:
            return True
        rules = self._rules_for(user)
        if rules is None:
            return True
        for rule in rules:
            if not rule.writes:
                continue
            pattern = _expand(rule.pattern, user, client_id)
            if pattern is not None and topic_matches_filter(topic, pattern):
                return True
        return False

    def may_subscribe(self, user: str | None, client_id: str, topic_filter: str) -> bool:
        """True if the client may subscribe to ``topic_filter`` (the filter of a shared one, without ``$share``)."""
        if user == DEFAULT_USER:
            return True
        rules = self._rules_for(user)
        if rules is None:
            return not topic_filter.startswith(_SYS_PREFIX)
        for rule in rules:
            if not rule.reads:
                continue
            pattern = _expand(rule.pattern, user, client_id)
            if pattern is not None and filter_covers(pattern, topic_filter):
                return True
        return False

    def _rules_for(self, user: str | None) -> tuple[AclRule, ...] | None:
        """The rules that apply; ``None`` means "anything but $SYS" (anonymous with no stored rules)."""
        if user is None:
            return self._rules.get(ANONYMOUS) or None
        return self._rules.get(user, ())


def _expand(pattern: str, user: str | None, client_id: str) -> str | None:
    if "%" not in pattern:
        return pattern
    if "%c" in pattern and not _usable_level(client_id):
        return None
    if "%u" in pattern and (user is None or not _usable_level(user)):
        return None
    return pattern.replace("%u", user or "").replace("%c", client_id)


def _usable_level(value: str) -> bool:
    """True if ``value`` can stand for one topic level without widening the pattern."""
    return bool(value) and not any(char in value for char in "/+#")


def _rule(entry: object) -> AclRule:
    if not isinstance(entry, dict):
        raise AclError(f"an ACL rule must be an object with access and pattern, not {entry!r}")
    access, pattern = entry.get("access"), entry.get("pattern")
    if access not in ACCESS_KINDS:
        raise AclError(f"ACL access must be one of {', '.join(ACCESS_KINDS)}, not {access!r}")
    if not isinstance(pattern, str):
        raise AclError(f"an ACL pattern must be a string, not {pattern!r}")
    problem = topic_filter_problem(pattern.replace("%u", "u").replace("%c", "c"), shared=False)
    if problem is not None:
        raise AclError(f"ACL pattern {pattern!r}: {problem}")
    return AclRule(str(access), pattern)
