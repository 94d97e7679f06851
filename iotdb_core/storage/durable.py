"""Durability helpers: moved to :mod:`iotdb_core.durable`; these names stay importable from here."""

from iotdb_core.durable import atomic_write, fsync_dir

__all__ = ["atomic_write", "fsync_dir"]
