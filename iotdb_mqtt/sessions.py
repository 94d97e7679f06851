"""The receiving half of session state that outlives a connection.

The receiver keeps, per session, the QoS 2 packet ids received whose PUBREL has not arrived: a resend
of such a publish must not be written twice, even after a reconnect. (The sending half — subscriptions
and queued messages — is the router's :class:`~iotdb_mqtt.router.SubscriberSession`.)
Each id keeps the outcome of the first receipt's write, so that a resend is not acknowledged before
that write is durable — it may still be under way on a connection that was dropped or taken over. A
session is kept after its connection closes when the client asked for it (MQTT 3.1.x: clean session
0; MQTT 5: clean start 0 and a session expiry interval > 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from iotdb_mqtt.ingest import PublishOutcome

#: MQTT 5's "never expires" session expiry interval.
NEVER_EXPIRES = 0xFFFFFFFF
#: Sessions kept at most; the oldest is dropped beyond it, so abandoned client ids cannot fill memory.
MAX_STORED_SESSIONS = 100_000


class FirstWrite:
    """The outcome of the first receipt's write of one QoS 2 message, once that write is durable.

    A resend arriving meanwhile (possibly on a newer connection) waits for it through :meth:`when_settled`.
    """

    __slots__ = ("_callbacks", "done", "outcome")

    def __init__(self) -> None:
        self.done = False
        self.outcome: PublishOutcome | None = None
        self._callbacks: list[Callable[[FirstWrite], None]] = []

    def settle(self, outcome: PublishOutcome | None) -> None:
        """Record the outcome (``None``: the write failed) and tell whoever waits."""
        self.done = True
        self.outcome = outcome
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def when_settled(self, callback: Callable[[FirstWrite], None]) -> None:
        """Call ``callback`` once settled (at once if already)."""
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)


@dataclass
class SessionState:
    """What must survive between connections of one client id."""

    qos2_pending: dict[int, FirstWrite] = field(default_factory=dict)
    """QoS 2 ids awaiting PUBREL, each with the outcome of its first receipt's write once durable
    (``None`` if that write failed; the id is then forgotten, so the client's next resend is written)."""
    expiry_interval: int = 0


class SessionStore:
    """Sessions of disconnected clients, by client id, until they expire."""

    def __init__(self) -> None:
        self._stored: dict[str, tuple[SessionState, float]] = {}

    def take(self, client_id: str, *, clean_start: bool) -> tuple[SessionState, bool]:
        """Return the client's session and whether it existed (``session present``).

        A clean start discards any stored session.
        """
        stored = self._stored.pop(client_id, None)
        if clean_start or stored is None:
            return SessionState(), False
        state, expires_at = stored
        if time.monotonic() > expires_at:
            return SessionState(), False
        return state, True

    def keep(self, client_id: str, state: SessionState) -> None:
        """Store ``state`` after its connection closed, if its expiry interval asks for it."""
        if state.expiry_interval <= 0:
            return
        interval = float("inf") if state.expiry_interval == NEVER_EXPIRES else state.expiry_interval
        if len(self._stored) >= MAX_STORED_SESSIONS:
            self._stored.pop(next(iter(self._stored)))
        self._stored[client_id] = (state, time.monotonic() + interval)

    def __len__(self) -> int:
        return len(self._stored)
