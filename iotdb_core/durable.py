"""Making file-system changes durable: the one home of directory fsync and atomic file replacement.

Used by the storage engine (WAL, manifest, schema log, TsFiles), the user store and plugins. It imports
nothing of the project, so ``import iotdb_core.auth`` does not load the engine.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "fsync_file"]

_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Fsync a directory so that entries created, renamed or removed in it survive a crash.

    A file system that cannot fsync a directory (EINVAL) makes no promise to keep; other errors raise.
    """
    fd = os.open(directory, _DIRECTORY_FLAGS)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Fsync a file's data and metadata by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary file, fsync it, rename it over, fsync the directory.

    A failed write (a full disk) leaves ``path`` as it was and removes the temporary file.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)
