"""Bad input on the native RPC port: malformed and oversize frames, random bytes, a client stopping mid-frame,
unknown calls, wrong session ids, tablets whose buffers disagree with their counts, out-of-range type codes,
and 10,000 concurrent session attempts. Each gets a clear TSStatus or a closed connection; the server goes on
serving the others, keeps every valid point, and logs no traceback (checked when the module's server stops)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from iotdb.Session import Session
from iotdb.thrift.rpc.IClientRPCService import Client
from iotdb.thrift.rpc.ttypes import (
    TSCreateSchemaTemplateReq,
    TSInsertRecordReq,
    TSInsertTabletReq,
    TSOpenSessionReq,
    TSProtocolVersion,
)
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TApplicationException, TMessageType
from thrift.transport import TSocket, TTransport

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, open_session


def raw_socket(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection((server.rpc_host, server.rpc_port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset) before sending anything."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def logged(server: ServerProcess, fragment: str) -> bool:
    """Whether the server's log shows ``fragment`` within the timeout (its output is read by a thread)."""
    deadline = time.monotonic() + TIMEOUT
    while fragment not in server.output:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def encoded(call: str, *args: object) -> bytes:
    """The framed bytes the generated client sends for ``call(*args)``."""
    buffer = TTransport.TMemoryBuffer()
    client = Client(TBinaryProtocol.TBinaryProtocol(buffer))
    getattr(client, f"send_{call}")(*args)
    return framed(buffer.getvalue())


def open_request() -> TSOpenSessionReq:
    return TSOpenSessionReq(TSProtocolVersion.IOTDB_SERVICE_PROTOCOL_V3, "UTC", "root", "root",
                            {"version": "V_1_0", "sql_dialect": "tree"})


class RawClient:
    """The generated Thrift client over its own framed socket, with an open session."""

    def __init__(self, server: ServerProcess) -> None:
        sock = TSocket.TSocket(server.rpc_host, server.rpc_port)
        sock.setTimeout(int(TIMEOUT * 1000))
        self.transport = TTransport.TFramedTransport(sock)
        self.transport.open()
        self.client = Client(TBinaryProtocol.TBinaryProtocol(self.transport))
        response = self.client.openSession(open_request())
        assert response.status.code == 200, response.status
        self.session_id = response.sessionId

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
def raw(rpc_server: ServerProcess) -> Iterator[RawClient]:
    client = RawClient(rpc_server)
    yield client
    client.close()


def assert_serving(server: ServerProcess, device: str = "root.alive.d1") -> None:
    """A fresh Session still writes and reads."""
    session = open_session(server)
    try:
        stamp = time.time_ns()
        session.insert_record(device, stamp, ["s"], [TSDataType.INT64], [stamp])
        with session.execute_query_statement(f"SELECT s FROM {device} WHERE time = {stamp}") as dataset:
            assert dataset.todf()[f"{device}.s"].tolist() == [stamp]
    finally:
        session.close()


# ------------------------------------------------------------------------------------------------ frames


@pytest.mark.parametrize("length", [2**31 - 1, 600 * 1024 * 1024, 0, -5])
def test_frame_length_out_of_range_closes_before_the_body(rpc_server: ServerProcess, length: int) -> None:
    with raw_socket(rpc_server) as sock:
        sock.sendall(struct.pack(">i", length))  # only the length: the body is never sent
        assert closed_by_server(sock)
    assert logged(rpc_server, f"frame length {length} is outside 1..536870912 (thrift_max_frame_size)")
    assert_serving(rpc_server)


def test_random_bytes_close_the_connection_and_others_go_on(rpc_server: ServerProcess) -> None:
    rng = os.urandom
    for size in (1, 7, 100, 4096):
        with raw_socket(rpc_server) as sock:
            body = rng(size)
            sock.sendall(framed(b"\x81" + body))  # not a protocol's first byte
            assert closed_by_server(sock)
        with raw_socket(rpc_server) as sock:
            sock.sendall(framed(b"\x80\x01\x00\x01" + body))  # a binary message header, then garbage
            assert closed_by_server(sock)
    assert logged(rpc_server, "malformed message")
    assert_serving(rpc_server)


def test_truncated_message_in_a_whole_frame_closes_the_connection(rpc_server: ServerProcess) -> None:
    message = encoded("openSession", open_request())
    body = message[4:]
    with raw_socket(rpc_server) as sock:
        sock.sendall(framed(body[: len(body) // 2]))
        assert closed_by_server(sock)
    assert_serving(rpc_server)


def test_a_client_stopping_mid_frame_holds_up_nobody(rpc_server: ServerProcess) -> None:
    message = encoded("openSession", open_request())
    stalled = [raw_socket(rpc_server) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(message[: len(message) // 2])
        assert_serving(rpc_server, "root.alive.mid")
        for sock in stalled[:10]:
            sock.sendall(message[len(message) // 2:])  # the rest arrives late: the call is still answered
        for sock in stalled[:10]:
            assert len(sock.recv(4)) == 4
    finally:
        for sock in stalled:
            sock.close()
    assert_serving(rpc_server)


# ------------------------------------------------------------------------------------------------- calls


def test_unknown_call_name_is_an_application_exception_and_the_connection_stays(raw: RawClient) -> None:
    protocol = raw.client._oprot
    protocol.writeMessageBegin("noSuchCall", TMessageType.CALL, 7)
    protocol.writeStructBegin("args")
    protocol.writeFieldStop()
    protocol.writeStructEnd()
    protocol.writeMessageEnd()
    protocol.trans.flush()
    name, kind, seqid = raw.client._iprot.readMessageBegin()
    assert (name, kind, seqid) == ("noSuchCall", TMessageType.EXCEPTION, 7)
    error = TApplicationException()
    error.read(raw.client._iprot)
    raw.client._iprot.readMessageEnd()
    assert error.type == TApplicationException.UNKNOWN_METHOD
    assert "noSuchCall" in str(error.message)
    assert raw.client.getTimeZone(raw.session_id).timeZone == "UTC"  # same connection, still in step


def test_unsupported_call_answers_a_status_naming_it(raw: RawClient) -> None:
    status = raw.client.createSchemaTemplate(TSCreateSchemaTemplateReq(raw.session_id, "t1", b""))
    assert status.code == 300
    assert "createSchemaTemplate is not supported" in status.message


def test_wrong_session_ids_are_not_login(raw: RawClient, rpc_server: ServerProcess) -> None:
    other = RawClient(rpc_server)
    try:
        for session_id in (raw.session_id + 10_000_000, -1, other.session_id):
            status = raw.client.insertRecord(
                TSInsertRecordReq(session_id, "root.wrong.d1", ["s"], Session.value_to_bytes([2], [1]), 1))
            assert status.code == 802, status
            assert "not open on this connection" in status.message
        assert raw.client.getTimeZone(other.session_id).status.code == 802  # another connection's session
    finally:
        other.close()
    assert raw.client.getTimeZone(raw.session_id).status.code == 200


def _tablet_request(session_id: int, device: str, **changes: object) -> TSInsertTabletReq:
    tablet = Tablet(device, ["a", "b"], [TSDataType.INT64, TSDataType.TEXT], [[1, "x"], [None, "y"], [3, None]],
                    [1, 2, 3])
    request = TSInsertTabletReq(session_id, device, tablet.get_measurements(), tablet.get_binary_values(),
                                tablet.get_binary_timestamps(), tablet.get_data_types(), tablet.get_row_number(),
                                False)
    for key, value in changes.items():
        setattr(request, key, value)
    return request


def test_tablet_buffers_that_disagree_with_their_counts_are_refused_whole(raw: RawClient) -> None:
    good = _tablet_request(raw.session_id, "root.badtab.d1")
    values, stamps = good.values, good.timestamps
    bad = {
        "values too short": ({"values": values[:5]}, "needs 24 bytes for 3 rows"),
        "values cut in the text": ({"values": values[:30]}, "column 'b'"),
        "bytes left over": ({"values": values + b"\x00\x00"}, "left over"),
        "bitmap too short": ({"values": values[:-1]}, "null bitmap needs 1 bytes"),
        "timestamps too short": ({"timestamps": stamps[:-8]}, "timestamps hold 16 bytes; size 3 needs 24"),
        "size larger than the buffers": ({"size": 4}, "size 4 needs 32"),
        "type code out of range": ({"types": [2, 42]}, "type code 42 is out of range"),
        "type this server lacks": ({"types": [2, 9]}, "type DATE (9) is not supported"),
        "types and measurements differ": ({"types": [2]}, "2 measurements but 1 types"),
    }
    for label, (changes, fragment) in bad.items():
        status = raw.client.insertTablet(_tablet_request(raw.session_id, "root.badtab.d1", **changes))
        assert status.code == 303, (label, status)
        assert fragment in status.message, (label, status.message)
    assert raw.client.insertTablet(good).code == 200


def test_refused_tablets_write_nothing_and_valid_ones_are_kept(raw: RawClient, rpc_server: ServerProcess) -> None:
    good = _tablet_request(raw.session_id, "root.keep.d1")
    assert raw.client.insertTablet(good).code == 200
    assert raw.client.insertTablet(_tablet_request(raw.session_id, "root.keep.d1", values=good.values[:-1])).code \
        == 303
    assert raw.client.insertTablet(_tablet_request(raw.session_id, "root.keep.d2", types=[2, 77])).code == 303
    session = open_session(rpc_server)
    try:
        with session.execute_query_statement("SELECT a, b FROM root.keep.d1") as dataset:
            frame = dataset.todf()
        assert frame["Time"].tolist() == [1, 2, 3]
        assert frame["root.keep.d1.b"].tolist()[:2] == ["x", "y"]
        with session.execute_query_statement("SHOW TIMESERIES root.keep.d2.*") as dataset:
            assert dataset.todf().empty
    finally:
        session.close()


def test_record_values_with_bad_type_codes_or_lengths(raw: RawClient) -> None:
    cases = {
        b"\x2a\x00\x00\x00\x01": "type code 42 is out of range",
        b"\x02\x00\x00": "INT64 needs 8 bytes, 2 remain",
        b"\x05\x00\x00\x00\x09ab": "text length 9 but 2 bytes remain",
        b"\x01\x00\x00\x00\x01\x00": "1 byte(s) left over",
        b"": "ends before value 0",
    }
    for values, fragment in cases.items():
        status = raw.client.insertRecord(TSInsertRecordReq(raw.session_id, "root.badrec.d1", ["s"], values, 1))
        assert status.code == 303, status
        assert fragment in status.message, status.message


# ------------------------------------------------------------------------------------------------- load


async def _attempt(host: str, port: int, message: bytes) -> int:
    """One session attempt: connect, openSession, read the framed reply; its status code (or -1 on a
    connection error, which the test counts)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return -1
    try:
        writer.write(message)
        await writer.drain()
        length = struct.unpack(">i", await reader.readexactly(4))[0]
        body = await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError):
        return -1
    finally:
        writer.close()
    buffer = TTransport.TMemoryBuffer(body)
    client = Client(TBinaryProtocol.TBinaryProtocol(buffer))
    return int(client.recv_openSession().status.code)


async def _attempts(host: str, port: int, count: int, message: bytes) -> list[int]:
    return await asyncio.gather(*(_attempt(host, port, message) for _ in range(count)))


@pytest.mark.slow
def test_ten_thousand_concurrent_session_attempts(rpc_server: ServerProcess) -> None:
    message = encoded("openSession", open_request())
    started = time.monotonic()
    codes = asyncio.run(asyncio.wait_for(_attempts(rpc_server.rpc_host, rpc_server.rpc_port, 10_000, message),
                                         timeout=240))
    elapsed = time.monotonic() - started
    succeeded = codes.count(200)
    assert set(codes) <= {200, -1}, sorted(set(codes))
    assert succeeded >= 9_900, (succeeded, codes.count(-1), elapsed)
    assert_serving(rpc_server)
