"""Console log-in sessions: an opaque cookie token per session, with its own CSRF token.

A session lives in the server's memory (a restart logs everyone out) and ends after ``IDLE_TIMEOUT_S``
without a request, at log-out, or when its user is deleted or gets a new password. The CSRF token is
returned by the log-in answer and ``GET /console/api/session`` (readable only by the console's own origin)
and must come back in the ``X-CSRF-Token`` header of every state-changing request made with the cookie.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

__all__ = ["COOKIE", "CSRF_HEADER", "IDLE_TIMEOUT_S", "Session", "SessionStore"]

COOKIE = "iotdb_console"
CSRF_HEADER = "X-CSRF-Token"
IDLE_TIMEOUT_S = 8 * 3600.0
_MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One logged-in browser."""

    token: str
    user: str
    csrf: str
    last_seen: float

    def csrf_matches(self, presented: str | None) -> bool:
        """True when ``presented`` is this session's CSRF token (constant-time comparison)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class SessionStore:
    """The open sessions, by token. Thread-safe."""

    def __init__(self, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, user: str) -> Session:
        """A new session for ``user``; the oldest sessions are dropped beyond a bound."""
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), time.monotonic())
        with self._lock:
            self._expire(session.last_seen)
            while len(self._sessions) >= _MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session.token] = session
        return session

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``, its idle clock restarted; None when unknown or expired."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > self.idle_timeout_s:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def close(self, token: str) -> None:
        """End one session."""
        with self._lock:
            self._sessions.pop(token, None)

    def close_user(self, user: str, keep: str | None = None) -> None:
        """End every session of ``user`` except the one with token ``keep``."""
        with self._lock:
            for token in [t for t, s in self._sessions.items() if s.user == user and t != keep]:
                del self._sessions[token]

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.idle_timeout_s]:
            del self._sessions[token]
