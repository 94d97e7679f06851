"""Which subscribers receive a message that feeds the database: READ_DATA on the series it carries.

The topic ACL (:mod:`iotdb_mqtt.acl`) decides whether a client may subscribe to a filter at all. A message on
a topic the service ingests (``mqtt_ingest_topics``) is also data of the series its payload carries, so, as a
SELECT of those series would, it reaches a subscriber only when the subscriber's user holds READ_DATA (or
WRITE_DATA) on every one of them; a payload the formatter rejected carries none (it fed nothing) and follows
the ACL alone. When the series are unknown — a retained message read back from the retained store — only a user
holding READ_DATA on all of ``root.**`` receives it.
``root`` is never checked; anonymous subscribers (only with ``mqtt_allow_anonymous=true``) are not, as
anonymous publishers are not. Messages on topics that are not ingested follow the topic ACL alone.
"""

from __future__ import annotations

from collections.abc import Callable

from iotdb_core.authz import ADMIN, ROOT_ALL, Authorizer, Privilege
from iotdb_mqtt.delivery import ApplicationMessage

__all__ = ["SubscriberReads"]


class SubscriberReads:
    """``(user, message) -> bool``: whether ``user`` may receive ``message`` (see the module docstring)."""

    def __init__(self, authorizer: Authorizer, is_ingested: Callable[[str], bool]) -> None:
        self._authorizer = authorizer
        self._is_ingested = is_ingested

    def __call__(self, user: str, message: ApplicationMessage) -> bool:
        if user == ADMIN or not self._is_ingested(message.topic):
            return True
        rows = message.rows
        if rows is None:
            return self._authorizer.holds_on(user, Privilege.READ_DATA, ROOT_ALL)
        can = self._authorizer.can
        return all(can(user, Privilege.READ_DATA, f"{row.device}.{name}") for row in rows for name in row.measurements)
