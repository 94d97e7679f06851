"""The payload formatter contract: how an MQTT publish becomes rows (or tablets).

A formatter is a class registered under the entry-point group ``iotdb.payload_formatters``; the
name of its entry point is what operators put in ``mqtt_payload_formatter``. It is instantiated
once with the service's settings and called from several ingest threads at once, so ``format``
(and ``format_columns``) must not mutate shared state without a lock.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from iotdb_core.config import Option, Settings
from iotdb_core.errors import FormatError
from iotdb_core.model import Row, Tablet, Value

__all__ = ["FormatContext", "FormatError", "Formatted", "PayloadFormatter", "Row", "Tablet", "Value"]

#: What :meth:`PayloadFormatter.format_columns` returns items of: a row, or one device's rows as a tablet.
Formatted = Row | Tablet

@dataclass(frozen=True, slots=True)
class FormatContext:
    """Who sent the payload and how; formatters may route or authorise by it."""

    client_id: str
    username: str | None = None
    qos: int = 0
    protocol_level: int = 4


class PayloadFormatter(abc.ABC):
    """Turns one MQTT payload into rows.

    Subclasses set :attr:`name` (matching their entry-point name), may declare configuration
    :attr:`options` of their own, and implement :meth:`format`. ``format`` must raise
    :class:`FormatError` — never another exception — for any payload it cannot turn into rows,
    with a message that locates the problem (``values[3]: 2 measurements but 3 values``).
    """

    name: ClassVar[str]
    options: ClassVar[Sequence[Option]] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        """Return the rows carried by ``payload`` published on ``topic``."""

    def format_columns(self, topic: str, payload: bytes, context: FormatContext) -> Sequence[Formatted]:
        """Return what ``payload`` carries as rows and :class:`Tablet` items, in payload order.

        Optional: the MQTT service calls it instead of :meth:`format` when the formatter is the only
        ``iotdb_format_payload`` implementation and the storage backend writes tablets
        (``SupportsTabletWrites``). A tablet must mean exactly the rows :meth:`format` would return for the
        same payload (same values, same Python kinds, so type inference gives the same series types), and the
        errors must be the same. The default returns :meth:`format`'s rows, so a formatter that does not
        override it works unchanged.
        """
        return self.format(topic, payload, context)
