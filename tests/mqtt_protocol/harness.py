"""Driving :class:`ServerSession` in process: a host made of the real router, ACL and session store, and an
output port that records every action, so protocol rules are checked deterministically, without sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iotdb_core.config import default_settings
from iotdb_core.formatter import FormatContext
from iotdb_core.metrics import ServiceCounters
from iotdb_mqtt.acl import TopicAcl
from iotdb_mqtt.codec import EMPTY_PROPERTIES, Connect, Packet, PacketReader, Properties, encode
from iotdb_mqtt.codec.packets import Will
from iotdb_mqtt.delivery import QueueLimits
from iotdb_mqtt.ingest import STORED, IngestedBatch, PublishOutcome
from iotdb_mqtt.protocol import Batch, ServerSession
from iotdb_mqtt.router import Router
from iotdb_mqtt.sessions import SessionStore


class Host:
    """A server for sessions driven by a test: real router and ACL, clients registered by id."""

    def __init__(self, data_dir: Path, limits: QueueLimits | None = None, **settings: object) -> None:
        self.settings = default_settings().replace(**settings) if settings else default_settings()
        self.counters = ServiceCounters()
        self.router = Router(limits or QueueLimits(), self.counters)
        self.acl = TopicAcl(data_dir)
        self.sessions = SessionStore()
        self.stopping = False
        self.by_client: dict[str, ServerSession] = {}
        self.delayed_wills: list[tuple[FormatContext, Will, float]] = []
        self.ingest_filter: set[str] | None = None

    def has_room_for(self, client_id: str) -> bool:
        return True

    def take_over(self, session: ServerSession, *, clean_start: bool) -> None:
        older = self.by_client.get(session.client_id)
        if older is not None and older is not session:
            older.close_for(0x8E, "taken over")
        self.by_client[session.client_id] = session

    def delay_will(self, context: FormatContext, will: Will, delay: float) -> None:
        self.delayed_wills.append((context, will, delay))

    def should_ingest(self, topic: str) -> bool:
        return self.ingest_filter is None or topic in self.ingest_filter

    def closed(self, session: ServerSession) -> None:
        if self.by_client.get(session.client_id) is session:
            del self.by_client[session.client_id]

    def batch_done(self, session: ServerSession) -> None:
        pass


@dataclass
class Output:
    """Records what a session asks of its connection."""

    sent: bytearray = field(default_factory=bytearray)
    closed: bool = False
    aborted: bool = False
    paused: bool = False
    auth: list[tuple[str | None, bytes | None]] = field(default_factory=list)
    submitted: list[Batch] = field(default_factory=list)
    awaiting: list[tuple[Batch, IngestedBatch]] = field(default_factory=list)
    host_router: Router | None = None
    syncs: int = 0

    def send(self, data: bytes) -> None:
        self.sent += data

    def close(self, *, abort: bool = False) -> None:
        self.closed = True
        self.aborted = abort

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def authenticate(self, username: str | None, password: bytes | None) -> None:
        self.auth.append((username, password))

    def submit(self, batch: Batch) -> None:
        self.submitted.append(batch)

    def await_durable(self, batch: Batch, ingested: IngestedBatch) -> None:
        self.awaiting.append((batch, ingested))

    def report_counters(self) -> None:
        pass

    def sync_sessions(self, done: Callable[[], None]) -> None:
        self.syncs += 1
        self.host_router.sync()
        done()


class Client:
    """One client's view: a session, its output, and the packets it received."""

    def __init__(self, host: Host, level: int = 5) -> None:
        self.host = host
        self.level = level
        self.output = Output(host_router=host.router)
        self.session = ServerSession(host, self.output, peer="test")  # type: ignore[arg-type]
        self.reader = PacketReader(level)
        self._read = 0
        self._unread: list[Packet] = []

    def send(self, *packets: Packet) -> None:
        self.session.receive_data(b"".join(encode(packet, self.level) for packet in packets), 0.0)

    def connect(self, client_id: str, *, username: str | None = "root", clean_start: bool = True,
                properties: Properties = EMPTY_PROPERTIES, will: Will | None = None) -> Packet:
        self.send(Connect(client_id=client_id, protocol_level=self.level, clean_start=clean_start,
                          username=username, password=b"pw" if username else None,
                          properties=properties, will=will))
        self.session.authenticated(True)
        packets = self.received()
        self._unread = packets[1:]
        return packets[0]

    def received(self) -> list[Packet]:
        """The packets sent to this client since the last call."""
        data = bytes(self.output.sent[self._read:])
        self._read = len(self.output.sent)
        unread, self._unread = self._unread, []
        return unread + (self.reader.feed(data) if data else [])

    def complete_writes(self, outcomes: list[PublishOutcome] | None = None) -> None:
        """Log and make durable every batch the session submitted, each publish stored (or ``outcomes``)."""
        while self.output.submitted or self.output.awaiting:
            while self.output.submitted:
                batch = self.output.submitted.pop(0)
                results = outcomes or [STORED] * len(batch.publishes)
                self.session.batch_logged(batch, IngestedBatch(list(results), None), None)
            while self.output.awaiting:
                batch, ingested = self.output.awaiting.pop(0)
                self.session.batch_durable(batch, ingested.outcomes, None)
