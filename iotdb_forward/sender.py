"""The sending thread: outbox records to the target through ``apache-iotdb``'s SessionPool, in tablets.

One thread sends, so every series reaches the target in the order it was written here. A batch is at most
``forward_batch_size`` points; when less is waiting, the sender waits ``forward_interval_in_ms`` for more first.
A batch the target did not acknowledge — unreachable, or an error status — is sent again after a backoff
(doubling up to ``forward_retry_max_interval_in_ms``, with jitter); the cursor moves only past acknowledged
batches.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from iotdb.SessionPool import PoolConfig, SessionPool

from iotdb_core.backend import StorageBackend
from iotdb_core.backoff import Backoff
from iotdb_forward.outbox import Outbox, Record
from iotdb_forward.tablets import tablets

log = logging.getLogger("iotdb.forward")

#: First delay after a failed send.
RETRY_BASE_S = 0.2
#: Loggers of apache-iotdb and thrift that would log a traceback per failed connection attempt.
_CLIENT_LOGGERS = ("IoTDB", "thrift.transport.TSocket")
#: How long a connection to a target node may take to open.
CONNECT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Target:
    """Where and how to forward."""

    nodes: tuple[str, ...]
    user: str
    password: str
    batch_points: int
    interval_s: float
    retry_max_s: float


class Sender:
    """Sends the outbox to the target until stopped; its figures are read by the metrics hook."""

    def __init__(self, outbox: Outbox, target: Target, engine: StorageBackend,
                 acknowledged: Callable[[], None] = lambda: None) -> None:
        """``acknowledged`` is called on the sending thread after each batch the target acknowledged."""
        self.outbox = outbox
        self._acknowledged = acknowledged
        self.target = target
        self._engine = engine
        self._types: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iotdb-forward", daemon=True)
        self._pool: SessionPool | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_success_at: float | None = None
        self.send_failures = 0
        self.target_up = False

    def start(self) -> None:
        # The client libraries log every failed connection with a traceback; the sender reports each failure
        # itself, once per change of the error, without one.
        for name in _CLIENT_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in progress (what is left is sent after the restart)."""
        self._stop.set()
        self._thread.join(timeout)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.close()

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        backoff = Backoff(RETRY_BASE_S, self.target.retry_max_s)
        outbox = self.outbox
        while not self._stop.is_set():
            if not outbox.wait_for_data(self.target.interval_s):
                continue
            if outbox.backlog_points < self.target.batch_points:
                self._stop.wait(self.target.interval_s)  # let a partial batch fill up a little
            records = outbox.read(self.target.batch_points)
            if not records:
                continue
            try:
                self._send(records)
            except Exception as exc:  # any failure: the same records are sent again
                outbox.rewind()
                self._failed(exc)
                self._stop.wait(backoff.next_delay())
                continue
            outbox.acknowledge(records)
            self._acknowledged()
            backoff.reset()

    def _send(self, records: list[Record]) -> None:
        batch = tablets(records, self._local_type)
        if not batch:
            return
        pool = self._pool or self._open_pool()
        session = pool.get_session()
        try:
            if len(batch) == 1:
                session.insert_tablet(batch[0])
            else:
                session.insert_tablets(batch)
        except BaseException:
            with contextlib.suppress(Exception):
                session.close()  # a broken session is not put back into use
            with contextlib.suppress(Exception):
                pool.put_back(session)
            raise
        pool.put_back(session)
        if not self.target_up:
            log.info("forwarding to %s: the target acknowledges", ", ".join(self.target.nodes))
        self.target_up = True
        self.last_success_at = time.time()

    def _open_pool(self) -> SessionPool:
        config = PoolConfig(node_urls=list(self.target.nodes), user_name=self.target.user,
                            password=self.target.password, enable_redirection=False,
                            connection_timeout_in_ms=CONNECT_TIMEOUT_MS)
        self._pool = SessionPool(config, max_pool_size=1, wait_timeout_in_ms=CONNECT_TIMEOUT_MS)
        return self._pool

    def _failed(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".strip()
        if self.target_up or message != self.last_error:
            log.warning("forwarding to %s failed, retrying with backoff (%d points waiting): %s",
                        ", ".join(self.target.nodes), self.outbox.backlog_points, message)
        self.target_up = False
        self.last_error = message[:500]
        self.last_error_at = time.time()
        self.send_failures += 1

    def _local_type(self, device: str, measurement: str) -> str | None:
        """The local series' type (read from the schema once per series)."""
        key = (device, measurement)
        kind = self._types.get(key)
        if kind is None:
            known = {(s.device, s.measurement): s.data_type.value for s in self._engine.list_series()}
            kind = known.get(key, "")  # "": not found here, the values' own type is used
            self._types = {**self._types, **known, key: kind}
        return kind or None
