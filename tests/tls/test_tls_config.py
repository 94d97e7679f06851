"""A TLS configuration that cannot work stops ``iotdb serve`` with one line naming the key and the path."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from .conftest import serve_fails
from .pki import Issued, Pki


def one_line_error(done: object) -> str:
    """The single error line of a failed start (stderr holds nothing else but log lines before it)."""
    stderr = getattr(done, "stderr", "")
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_missing_certificate_file(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    absent = tmp_path / "absent.pem"
    done = serve_fails(tmp_path / "s", ssl_certfile=absent, ssl_keyfile=server_cert.key)
    assert one_line_error(done).endswith(f"ssl_certfile={absent}: no such file")


def test_a_key_that_does_not_match_the_certificate(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    other = pki.server("other")
    done = serve_fails(tmp_path / "s", ssl_certfile=server_cert.cert, ssl_keyfile=other.key)
    assert one_line_error(done).endswith(
        f"ssl_keyfile={other.key}: the key does not match the certificate ssl_certfile={server_cert.cert}")


def test_a_listener_override_is_named_in_the_error(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    done = serve_fails(tmp_path / "s", ssl_certfile=server_cert.cert, ssl_keyfile=server_cert.key,
                       enable_https="true", rest_ssl_keyfile=tmp_path)
    assert one_line_error(done).endswith(f"rest_ssl_keyfile={tmp_path}: a directory, not a PEM file")


def test_a_file_that_is_not_pem(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 not a certificate")
    done = serve_fails(tmp_path / "s", ssl_certfile=server_cert.cert, ssl_keyfile=server_cert.key,
                       ssl_cafile=garbage)
    assert one_line_error(done).endswith(
        f"ssl_cafile={garbage}: not a PEM file holding CA certificates (no '-----BEGIN CERTIFICATE-----' line)")


def test_an_encrypted_key(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    key = serialization.load_pem_private_key(server_cert.key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    done = serve_fails(tmp_path / "s", ssl_certfile=server_cert.cert, ssl_keyfile=encrypted)
    assert f"ssl_keyfile={encrypted}: the key is encrypted" in one_line_error(done)


@pytest.mark.parametrize(("properties", "message"), [
    ({"enable_https": "true"}, "enable_https=true needs a certificate: set ssl_certfile and ssl_keyfile "
                               "(or rest_ssl_certfile and rest_ssl_keyfile)"),
    ({"enable_thrift_ssl": "true"}, "enable_thrift_ssl=true needs a certificate"),
    ({"mqtt_port": "-1", "mqtt_ws_port": "-1"}, "no MQTT listener is left: mqtt_port and mqtt_ws_port are -1"),
    ({"mqtt_use_identity_as_username": "true"}, "mqtt_use_identity_as_username=true needs client certificates"),
    ({"ssl_client_auth": "sometimes"}, "ssl_client_auth=sometimes: expected none, optional or required"),
], ids=["https", "thrift", "no-listener", "identity", "client-auth"])
def test_keys_that_do_not_fit_together(tmp_path: Path, properties: dict[str, str], message: str) -> None:
    assert message in one_line_error(serve_fails(tmp_path / "s", **properties))


def test_client_certificates_need_a_ca(tmp_path: Path, pki: Pki, server_cert: Issued) -> None:
    done = serve_fails(tmp_path / "s", ssl_certfile=server_cert.cert, ssl_keyfile=server_cert.key,
                       mqtt_ssl_client_auth="required")
    assert one_line_error(done).endswith("mqtt_ssl_client_auth=required needs a CA to check client certificates "
                                         "against (set ssl_cafile, or mqtt_ssl_cafile)")
