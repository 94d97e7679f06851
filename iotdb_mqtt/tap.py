"""The broker's routed messages as an :class:`iotdb_core.fleet.TopicTap`, for the console's live topic view.

A watch is a tap on the :class:`~iotdb_mqtt.router.Router` under the topic ACL of the console's user: it
starts only when the user may subscribe to the filter (as an MQTT client of that user could), and it ends
when an ACL change takes that right away. The console user has no MQTT client id, so ``%c`` rules never
apply to it. A message that feeds the database reaches the view only when the user holds READ_DATA on its
series, as for an MQTT subscriber of that user (:mod:`iotdb_mqtt.reads`). Everything runs on the event loop;
a sink that cannot keep up drops, never blocks routing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from iotdb_core.fleet import TopicMessage, TopicRefused, TopicSink
from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.codec.topics import SHARED_PREFIX, topic_filter_problem
from iotdb_mqtt.delivery import ApplicationMessage
from iotdb_mqtt.router import Router

__all__ = ["MqttTopicTap"]

#: The console user is not an MQTT client: no client id, so no ``%c`` rule can grant it anything.
_NO_CLIENT_ID = ""


class MqttTopicTap:
    """Watches of the router's messages, each under the topic ACL of a user."""

    def __init__(self, router: Router, acl: TopicAcl) -> None:
        self._router = router
        self._acl = acl

    def refusal(self, user: str, topic_filter: str) -> TopicRefused | None:
        """Why ``user`` may not watch ``topic_filter``, or ``None`` when the user may."""
        if topic_filter.startswith(SHARED_PREFIX):
            return TopicRefused(f"{topic_filter!r} is a shared subscription, which would take messages away from "
                                "its group; watch the filter after the group name instead", forbidden=False)
        problem = topic_filter_problem(topic_filter, shared=False)
        if problem is not None:
            return TopicRefused(f"{topic_filter!r} is not a valid topic filter: {problem}", forbidden=False)
        if not self._acl.may_subscribe(user, _NO_CLIENT_ID, topic_filter):
            return TopicRefused(f"user {user!r} may not subscribe to {topic_filter!r}: no read rule of the MQTT "
                                f"topic ACL covers it (see `iotdb acl list {user}`)", forbidden=True)
        return None

    def watch(self, user: str, topic_filter: str, sink: TopicSink) -> Callable[[], None]:
        """See :meth:`iotdb_core.fleet.TopicTap.watch`; the retained messages come first, with ``retain`` set."""
        refusal = self.refusal(user, topic_filter)
        if refusal is not None:
            raise refusal
        now = time.time()
        may_read = self._router.may_receive
        for retained in self._router.retained_matching(topic_filter):
            if may_read is not None and not may_read(user, retained):
                continue
            sink.offer(TopicMessage(retained.topic, retained.payload, retained.qos, True, now))
        generation = self._acl.generation
        tap_id = ""

        def receive(message: ApplicationMessage) -> None:
            nonlocal generation
            if self._acl.generation != generation:
                generation = self._acl.generation
                refusal = self.refusal(user, topic_filter)
                if refusal is not None:
                    self._router.remove_tap(tap_id)
                    sink.end(f"the topic ACL changed: {refusal}")
                    return
            if may_read is not None and not may_read(user, message):
                return
            sink.offer(TopicMessage(message.topic, message.payload, message.qos, message.retain, time.time()))

        tap_id = self._router.add_tap(topic_filter, receive)
        return lambda: self._router.remove_tap(tap_id)
