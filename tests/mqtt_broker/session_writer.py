"""A deterministic workload of session-log changes, run as a subprocess by the SIGKILL test.

``python session_writer.py DIRECTORY FIRST_OP`` opens the log, rebuilds its model of the state from what
the log recovered, then applies operations FIRST_OP, FIRST_OP+1, ... to both, calling ``durable()`` after
every ``BATCH`` operations and printing the number of operations done after it returns, until killed.
The test applies the same operations to the same model and compares with what the log holds after the kill.
"""

from __future__ import annotations

import sys
from pathlib import Path

from iotdb_mqtt.broker.session_log import NEVER_EXPIRES, QueuedMessage, SessionLog, StoredSession
from iotdb_mqtt.broker.tree import Subscription, SubscriptionOptions

BATCH = 7
MAX_MESSAGES = 12
COMPACT_MIN_BYTES = 4 * 1024
FAR_FUTURE = 4_000_000_000.0
"""Disconnection times late enough that no session expires while the test runs."""

# client -> (expiry, disconnected_at, {filter: identifier}, {message_id: payload}, released ids)
Model = dict[str, tuple[int, float | None, dict[str, int], dict[int, bytes], set[int]]]


def model_of(sessions: dict[str, StoredSession]) -> Model:
    return {
        client_id: (
            session.expiry_interval,
            session.disconnected_at,
            {s.topic_filter: s.identifier or 0 for s in session.subscriptions},
            {m.message_id: m.payload for m in session.messages},
            set(session.released),
        )
        for client_id, session in sessions.items()
    }


def copy_model(model: Model) -> Model:
    return {
        client: (expiry, at, dict(subs), dict(messages), set(released))
        for client, (expiry, at, subs, messages, released) in model.items()
    }


def step(n: int, model: Model, log: SessionLog | None) -> None:
    """Apply operation ``n`` to ``model`` and, if given, to ``log``; the choice depends only on n and model."""
    client = f"c{(n // 12) % 3}"
    kind = n % 12
    if client not in model or kind == 0:
        expiry, _, subs, messages, released = model.get(client, (NEVER_EXPIRES, None, {}, {}, set()))
        model[client] = (expiry, None, subs, messages, released)
        if log is not None:
            log.begin(client, expiry)
        return
    expiry, disconnected_at, subs, messages, released = model[client]
    if kind == 1:
        subs[f"t/{n % 5}/#"] = n
        if log is not None:
            log.subscribe(Subscription(client, f"t/{n % 5}/#", SubscriptionOptions(qos=1 + n % 2), n))
    elif kind in (2, 3, 4, 5, 6):
        message_id = n
        payload = b"m%d-" % n + b"x" * (n % 200)
        fits = len(messages) < MAX_MESSAGES
        if fits:
            messages[message_id] = payload
        if log is not None:
            message = QueuedMessage(message_id, f"t/{n % 5}/x", payload, 2, False, {"content_type": "n"}, 1.0)
            assert log.enqueue(client, message) is fits
    elif kind == 7:
        pending = [message_id for message_id in messages if message_id not in released]
        if pending:
            released.add(pending[0])
            if log is not None:
                log.released(client, pending[0])
    elif kind == 8:
        if messages:
            oldest = next(iter(messages))
            del messages[oldest]
            released.discard(oldest)
            if log is not None:
                log.acknowledged(client, oldest)
    elif kind == 9:
        subs.pop(f"t/{(n - 8) % 5}/#", None)
        if log is not None:
            log.unsubscribe(client, f"t/{(n - 8) % 5}/#")
    elif kind == 10:
        model[client] = (expiry, FAR_FUTURE + n, subs, messages, released)
        if log is not None:
            log.disconnected(client, FAR_FUTURE + n)
    elif (n // 12) % 4 == 3:
        del model[client]
        if log is not None:
            log.end(client)
    else:
        model[client] = (n + 1000, disconnected_at, subs, messages, released)
        if log is not None:
            log.set_expiry(client, n + 1000)


def main() -> None:
    directory = Path(sys.argv[1])
    n = int(sys.argv[2])
    log = SessionLog.open(directory, max_messages_per_session=MAX_MESSAGES, compact_min_bytes=COMPACT_MIN_BYTES)
    model = model_of(log.sessions())
    while True:
        step(n, model, log)
        n += 1
        if n % BATCH == 0:
            log.durable()
            print(n, flush=True)


if __name__ == "__main__":
    main()
