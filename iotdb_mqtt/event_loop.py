"""Choosing the event loop ``iotdb serve`` runs on (``mqtt_event_loop``).

uvloop (libuv under asyncio's API) moves bytes between sockets and protocols, and runs callbacks, with less
Python-level work per event than the standard loop; the MQTT ingest path spends part of its time there. It is
optional: ``auto`` takes it when it is installed and falls back to asyncio's own loop otherwise, ``asyncio``
never uses it, and ``uvloop`` insists on it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from iotdb_core.errors import IoTDBError

T = TypeVar("T")

log = logging.getLogger("iotdb.serve")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> tuple[str, LoopFactory | None]:
    """The loop's name and factory for ``mqtt_event_loop`` = ``choice`` (None: asyncio's default loop).

    Raises :class:`IoTDBError` when ``uvloop`` is asked for and cannot be imported.
    """
    if choice == "asyncio":
        return "asyncio", None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as exc:
        if choice == "uvloop":
            raise IoTDBError(f"mqtt_event_loop=uvloop, but uvloop cannot be imported ({exc}); install it with "
                             "`pip install uvloop` or set mqtt_event_loop=auto or asyncio") from None
        return "asyncio", None
    factory: LoopFactory = uvloop.new_event_loop
    return "uvloop", factory


def run(main: Callable[[], Coroutine[Any, Any, T]], choice: str) -> T:
    """Run the coroutine ``main()`` to completion on the loop ``choice`` names, as :func:`asyncio.run` does.

    The loop is chosen first, so a refused choice leaves no coroutine unawaited.
    """
    name, factory = loop_factory(choice)
    log.info("event loop: %s", name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
