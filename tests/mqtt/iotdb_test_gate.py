"""A storage hook plugin for the MQTT tests: holds, fails and records the server's writes.

:class:`tests.mqtt.conftest.WriteGate` installs it for an ``iotdb serve`` subprocess (a module plus a
``dist-info`` directory on ``PYTHONPATH``, registered in the entry-point group ``iotdb``). Files in the
directory named by ``IOTDB_TEST_GATE`` control it, so a test steers the server from outside:

- while ``hold`` exists, a write with a row of :data:`HELD_DEVICE` waits (after touching ``holding``);
- when ``fail`` exists as such a write goes on, it raises, so the engine refuses the write as a whole;
- every durable row is appended to ``written.log`` as ``device timestamp``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from iotdb_core import Row, hookimpl

#: Only writes with a row of this device are held or failed; every other write passes.
HELD_DEVICE = "root.gate.held"
#: A forgotten ``hold`` file must not hang the server for ever.
HOLD_LIMIT_S = 60.0


@hookimpl
def iotdb_before_write(rows: list[Row]) -> None:
    """Hold, then maybe fail, a write of :data:`HELD_DEVICE`."""
    if not any(row.device == HELD_DEVICE for row in rows):
        return
    gate = _gate()
    hold = gate / "hold"
    if hold.exists():
        (gate / "holding").touch()
        deadline = time.monotonic() + HOLD_LIMIT_S
        while hold.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    if (gate / "fail").exists():
        raise RuntimeError("the test gate fails this write")


@hookimpl
def iotdb_after_write(rows: Sequence[Row]) -> None:
    """Record the durable rows (one durability thread calls this: appends do not interleave)."""
    with (_gate() / "written.log").open("a", encoding="utf-8") as log:
        log.writelines(f"{row.device} {row.timestamp}\n" for row in rows)


def _gate() -> Path:
    return Path(os.environ["IOTDB_TEST_GATE"])
