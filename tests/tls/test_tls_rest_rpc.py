"""HTTPS for REST and the console (curl, the CLI's --url), and TLS on the native RPC port (the ``apache-iotdb``
Session with ``use_ssl``, the CLI's --ssl/--cafile), with and without client certificates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from iotdb.Session import Session
from iotdb.utils.exception import IoTDBConnectionException
from iotdb.utils.IoTDBConstants import TSDataType
from mqtt.conftest import StartServer

from iotdb_core.testing.server import ServerProcess

from .conftest import TIMEOUT, assert_quiet, iotdb, tls_properties
from .pki import Issued, Pki


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("curl")
    if found is None:
        pytest.skip("curl is not installed")
    return subprocess.run([found, "-sS", "--max-time", str(int(TIMEOUT)), *args], capture_output=True, text=True,
                          timeout=TIMEOUT * 2, check=False)


def session(server: ServerProcess, pki: Pki | None, client: Issued | None = None) -> Session:
    """An opened Session; over TLS trusting ``pki``'s CA unless ``pki`` is None."""
    opened = Session(server.rpc_host, server.rpc_port, "root", "root", zone_id="UTC", use_ssl=pki is not None,
                     ca_certs=str(pki.ca) if pki else None, connection_timeout_in_ms=int(TIMEOUT * 1000),
                     client_cert=str(client.cert) if client else None,
                     client_key=str(client.key) if client else None)
    opened.open(False)
    return opened


def test_rest_and_console_over_https_with_curl_and_the_cli(start_server: StartServer, pki: Pki,
                                                           server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_https="true"))
    assert server.rest_url.startswith("https://")
    ping = curl("--cacert", str(pki.ca), f"{server.rest_url}/ping")
    assert ping.returncode == 0, ping.stderr
    assert json.loads(ping.stdout) == {"code": 200, "message": "SUCCESS_STATUS"}
    insert = '{"sql": "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1.5)"}'
    inserted = curl("--cacert", str(pki.ca), "-u", "root:root", "-H", "Content-Type: application/json", "-d",
                    insert, f"{server.rest_url}/rest/v2/nonQuery")
    assert json.loads(inserted.stdout)["code"] == 200, inserted
    console = curl("--cacert", str(pki.ca), f"{server.rest_url}/")
    assert console.returncode == 0 and "<html" in console.stdout.lower(), console
    assert f"web console at {server.rest_url}/" in server.output

    plain = curl(f"http://{server.rest_host}:{server.rest_port}/ping")
    assert plain.returncode != 0, "plain HTTP gets no answer on the HTTPS port"
    untrusted = curl(f"{server.rest_url}/ping")
    assert untrusted.returncode == 60, untrusted  # curl: the peer certificate cannot be authenticated
    old = curl("--cacert", str(pki.ca), "--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT:@SECLEVEL=0",
               f"{server.rest_url}/ping")
    assert old.returncode != 0, "TLS 1.1 is refused"

    queried = iotdb("query", "SELECT s1 FROM root.sg.d1", "--url", server.rest_url, "--cafile", str(pki.ca),
                    "--format", "csv", "--time-format", "epoch")
    assert queried.returncode == 0, queried.stderr
    assert queried.stdout.splitlines() == ["Time,root.sg.d1.s1", "1,1.5"]
    assert_quiet(server)


def test_https_with_required_client_certificates(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_https="true", rest_ssl_client_auth="required"))
    without = curl("--cacert", str(pki.ca), f"{server.rest_url}/ping")
    assert without.returncode != 0, without
    client = pki.client("dashboard")
    with_cert = curl("--cacert", str(pki.ca), "--cert", str(client.cert), "--key", str(client.key),
                     f"{server.rest_url}/ping")
    assert with_cert.returncode == 0 and json.loads(with_cert.stdout)["code"] == 200, with_cert
    cli = iotdb("query", "SHOW DATABASES", "--url", server.rest_url, "--cafile", str(pki.ca),
                "--cert", str(client.cert), "--key", str(client.key))
    assert cli.returncode == 0, cli.stderr
    assert_quiet(server)


def test_the_iotdb_session_over_tls(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_thrift_ssl="true"))
    assert f"serving RPC over TLS on 127.0.0.1:{server.rpc_port}" in server.output
    client = session(server, pki)
    client.insert_record("root.sg.d1", 1, ["s1"], [TSDataType.DOUBLE], [2.5])
    with client.execute_query_statement("SELECT s1 FROM root.sg.d1") as result:
        fields = result.next().get_fields()
        assert fields[0].get_double_value() == 2.5
    client.close()
    with pytest.raises(IoTDBConnectionException):
        session(server, None)  # a plain-TCP client cannot talk to the TLS port
    assert_quiet(server)


def test_the_cli_over_tls_rpc(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_thrift_ssl="true"))
    where = ["-h", server.rpc_host, "-p", str(server.rpc_port)]
    written = iotdb("query", "INSERT INTO root.sg.d1(time, s1) VALUES (7, 7.5)", *where, "--cafile", str(pki.ca))
    assert written.returncode == 0, written.stderr
    read = iotdb("query", "SELECT s1 FROM root.sg.d1", *where, "--cafile", str(pki.ca), "--format", "csv",
                 "--time-format", "epoch")
    assert read.stdout.splitlines() == ["Time,root.sg.d1.s1", "7,7.5"], read.stderr
    untrusted = iotdb("query", "SHOW DATABASES", *where, "--ssl")  # the system CAs do not know the test CA
    assert untrusted.returncode != 0
    assert untrusted.stderr.count("\n") == 1 and "Traceback" not in untrusted.stderr, untrusted.stderr
    assert re.search(r"TLS: [\w -]*certificate", untrusted.stderr), untrusted.stderr  # why it was not trusted
    plain = iotdb("query", "SHOW DATABASES", *where)
    assert plain.returncode != 0 and plain.stderr.count("\n") == 1, plain.stderr
    assert "over TLS (enable_thrift_ssl) give --ssl or --cafile" in plain.stderr
    missing = iotdb("query", "SHOW DATABASES", *where, "--cafile", str(pki.directory / "absent.pem"))
    assert missing.returncode != 0
    assert missing.stderr.strip().endswith(f"--cafile={pki.directory / 'absent.pem'}: no such file"), missing.stderr
    assert_quiet(server)


def test_rpc_with_required_client_certificates(start_server: StartServer, pki: Pki, server_cert: Issued) -> None:
    server = start_server(**tls_properties(pki, server_cert, enable_thrift_ssl="true",
                                           rpc_ssl_client_auth="required"))
    with pytest.raises(IoTDBConnectionException):
        session(server, pki)
    client = pki.client("ingest")
    with_cert = session(server, pki, client)
    with with_cert.execute_query_statement("SHOW DATABASES") as result:
        assert result is not None
    with_cert.close()
    cli = iotdb("query", "SHOW DATABASES", "-h", server.rpc_host, "-p", str(server.rpc_port), "--cafile",
                str(pki.ca), "--cert", str(client.cert), "--key", str(client.key))
    assert cli.returncode == 0, cli.stderr
    assert_quiet(server)

