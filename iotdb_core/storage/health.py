"""The read-only state of an engine whose disk is full or whose WAL or TsFile directory is unwritable.

A write, fsync, flush or manifest update that fails with a storage error (ENOSPC, EDQUOT, EROFS, EACCES,
EPERM, EIO) puts the engine into the read-only state: writes are refused with :class:`StorageFullError` or
:class:`ReadOnlyError` (nothing is acknowledged), ``health()`` reports it, and the log says so once. A probe
thread then retries, with backoff, the engine's resume step (a small write and fsync in every directory,
the WAL cut back to its last durable record, the memtables flushed); when it succeeds the engine is
writable again and the log says so once.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable

from iotdb_core.model import Health
from iotdb_core.storage.errors import ReadOnlyError, StorageFullError

__all__ = ["HealthMonitor", "storage_failure"]

log = logging.getLogger("iotdb.storage")

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})
FIRST_PROBE = 0.1
LAST_PROBE = 2.0


def storage_failure(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself or a cause) when it is a full or unwritable disk, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL | _UNWRITABLE:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class HealthMonitor:
    """Whether the engine accepts writes, and the probe that makes it writable again."""

    def __init__(self, name: str, resume: Callable[[], None]) -> None:
        self._name = name
        self._resume = resume
        self._lock = threading.Lock()
        self._error: ReadOnlyError | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def health(self) -> Health:
        error = self._error
        return Health() if error is None else Health(False, str(error))

    def check(self) -> None:
        """Raise the read-only error while the engine is read-only."""
        error = self._error
        if error is not None:
            raise error

    def enter(self, cause: OSError) -> ReadOnlyError:
        """Become read-only because of ``cause`` (logged once); returns the error to raise to the writer."""
        with self._lock:
            if self._error is not None:
                return self._error
            kind = StorageFullError if cause.errno in _FULL else ReadOnlyError
            where = f" ({cause.filename})" if cause.filename else ""
            self._error = kind(f"storage of {self._name} is read-only: {cause.strerror}{where}; writes are refused "
                               f"until space or access is back")
            log.error("%s; probing until it can write again", self._error)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._probe, name="iotdb-health", daemon=True)
                self._thread.start()
            self._wake.set()
            return self._error

    def resume_now(self) -> Health:
        """Try to become writable at once (the operator's command); returns the health afterwards."""
        if self._error is not None:
            self._attempt()
        return self.health()

    def _attempt(self) -> bool:
        try:
            self._resume()
        except Exception as exc:  # still failing: stay read-only, say nothing new
            if storage_failure(exc) is None:
                log.warning("resuming writes on %s failed: %s", self._name, exc)
            return False
        with self._lock:
            if self._error is not None:
                log.info("storage of %s is writable again; writes are accepted", self._name)
            self._error = None
        return True

    def _probe(self) -> None:
        delay = FIRST_PROBE
        while not self._stopping:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping:
                return
            if self._error is None:
                delay = FIRST_PROBE
                continue
            delay = FIRST_PROBE if self._attempt() else min(delay * 2, LAST_PROBE)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
