"""Client sessions of the native protocol: who opened them, their time zone, statement ids and open queries.

A session belongs to the connection that opened it: a call naming a session id that this connection did not
open (or already closed) is answered NOT_LOGIN, so one client cannot use or close another's session. When
the connection ends, its sessions and their query results are dropped.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
import threading
import zoneinfo
from dataclasses import dataclass, field

from iotdb_core.rpc.tsblock import ResultPages

__all__ = ["MAX_OPEN_QUERIES", "ClientSession", "parse_zone"]

#: Results one session may hold open at once; beyond that the oldest is dropped (a client that never calls
#: closeOperation must not grow the server without bound).
MAX_OPEN_QUERIES = 64
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_ids = itertools.count(1)
_ids_lock = threading.Lock()


def next_id() -> int:
    """A server-wide unique id for sessions and queries."""
    with _ids_lock:
        return next(_ids)


def parse_zone(name: str) -> _dt.tzinfo:
    """An IANA zone (``Asia/Shanghai``, ``UTC``) or an offset (``+08:00``, ``UTC+8``); ValueError otherwise."""
    text = name.strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return _dt.UTC
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 18 or minutes > 59:
            raise ValueError(f"time zone offset {name!r} is out of range")
        delta = _dt.timedelta(hours=hours, minutes=minutes)
        return _dt.timezone(-delta if sign == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai, or +08:00)") from None


@dataclass
class ClientSession:
    """One open session."""

    session_id: int
    user: str
    zone_name: str
    zone: _dt.tzinfo
    queries: dict[int, ResultPages] = field(default_factory=dict)

    def add_query(self, pages: ResultPages) -> int:
        """Keep ``pages`` for fetchResults; returns its query id."""
        while len(self.queries) >= MAX_OPEN_QUERIES:
            self.queries.pop(next(iter(self.queries)))
        query_id = next_id()
        self.queries[query_id] = pages
        return query_id
