"""The asyncio adapter of one MQTT connection: moves bytes and results between a socket and its session.

Every protocol rule lives in :class:`~iotdb_mqtt.protocol.ServerSession`; this class feeds it the
transport's events and carries out its actions: writing bytes, closing, pausing reading, and running the
password check, the batch writes and the durability waits on the server's executors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from iotdb_core.tls import peer_common_name
from iotdb_mqtt.codec.reason_codes import ReasonCode
from iotdb_mqtt.ingest import IngestedBatch, PublishOutcome
from iotdb_mqtt.protocol import Batch, ServerSession

if TYPE_CHECKING:
    from iotdb_mqtt.server import MqttServer


#: Bytes sent that a connection adds up before adding them to the shared counter (whose lock would otherwise
#: be taken once per packet, a sixth of the time of a fan-out).
_BYTES_SENT_REPORT = 64 * 1024


class MqttConnection(asyncio.Protocol):
    """One client socket, driven by asyncio; the session it feeds is :attr:`session`."""

    def __init__(self, server: MqttServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session = ServerSession(server, self, now=time.monotonic())
        self._bytes_sent = 0
        #: The CN of the client's certificate when it stands for the user name (``mqtt_use_identity_as_username``).
        self.identity: str | None = None

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, so this is not an isinstance check).
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.session.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        if self.server.settings.mqtt_use_identity_as_username:
            self.identity = peer_common_name(transport)
        self.server.connection_opened(self.session, transport)

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, time.monotonic())

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._report_bytes_sent()
        self.session.connection_lost()

    def pause_writing(self) -> None:
        self.session.writable(False)

    def resume_writing(self) -> None:
        self.session.writable(True)

    # ------------------------------------------------------------------ actions of the session

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            self._bytes_sent += len(data)
            if self._bytes_sent >= _BYTES_SENT_REPORT:
                self._report_bytes_sent()

    def sync_sessions(self, done: Callable[[], None]) -> None:
        future = self.server.sync_sessions()
        future.add_done_callback(lambda finished: self._sessions_synced(finished, done))

    def _sessions_synced(self, finished: asyncio.Future[None], done: Callable[[], None]) -> None:
        if not finished.cancelled() and finished.exception() is not None:
            # The session log refuses further writes once a write failed: nothing more is acknowledged.
            error = finished.exception()
            self.session.close_for(ReasonCode.UNSPECIFIED_ERROR, f"the session log could not be written: {error}")
            return
        done()

    def report_counters(self) -> None:
        self._report_bytes_sent()

    def _report_bytes_sent(self) -> None:
        if self._bytes_sent:
            self.server.counters.add("mqtt_bytes_sent", self._bytes_sent)
            self._bytes_sent = 0

    def close(self, *, abort: bool = False) -> None:
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def authenticate(self, username: str | None, password: bytes | None) -> None:
        """Check the password, or with a certificate's CN as the user name, that the CN names a user."""
        loop = asyncio.get_running_loop()
        identity = self.identity
        if identity is not None:
            future = loop.run_in_executor(self.server.auth_executor, self.server.authenticate_identity, identity)
        else:
            future = loop.run_in_executor(self.server.auth_executor, self.server.authenticate, username, password)
        future.add_done_callback(lambda done: self._authenticated(done, identity))

    def _authenticated(self, done: asyncio.Future[bool], identity: str | None) -> None:
        self.session.authenticated(not done.cancelled() and done.exception() is None and done.result(), identity)

    def submit(self, batch: Batch) -> None:
        future = self.server.submit(self.session.context, batch.publishes)
        future.add_done_callback(lambda done: self._logged(batch, done))

    def _logged(self, batch: Batch, done: asyncio.Future[IngestedBatch]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        self.session.batch_logged(batch, None if error is not None else done.result(), error)

    def await_durable(self, batch: Batch, ingested: IngestedBatch) -> None:
        future = self.server.await_durable(ingested)
        future.add_done_callback(lambda done: self._durable(batch, done))

    def _durable(self, batch: Batch, done: asyncio.Future[list[PublishOutcome]]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        self.session.batch_durable(batch, None if error is not None else done.result(), error)
