"""TLS for every listener: building the server SSL contexts from PEM files, and reloading them on SIGHUP.

Each listener (``mqtt`` for MQTT over TLS and secure WebSocket, ``rest`` for HTTPS, ``rpc`` for the native
port) reads ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cafile`` and ``ssl_client_auth``, each of which it may
override with its own ``<listener>_ssl_...`` key. TLS 1.2 is the oldest version accepted.

Reloading must not drop open connections and must hand new handshakes the new certificate. A listening
socket keeps the :class:`ssl.SSLContext` it was created with, so :class:`ServerTls` gives it one context whose
``sni_callback`` (called on every ClientHello, with or without SNI) switches each new handshake to the
context built from the files as they are now. Open connections keep the context they were made with. A
reload whose files are bad keeps the previous context and says why.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotdb_core.config import Settings
from iotdb_core.errors import ConfigError

__all__ = [
    "CLIENT_AUTH_MODES",
    "LISTENERS",
    "ServerTls",
    "TlsFiles",
    "TlsListeners",
    "client_context",
    "peer_common_name",
    "tls_files",
]

log = logging.getLogger("iotdb.tls")

#: The listeners that serve TLS, by the prefix of their override keys, with what they serve.
LISTENERS = {"mqtt": "MQTT over TLS and secure WebSocket", "rest": "HTTPS (REST and console)",
             "rpc": "the native RPC port"}
#: ``ssl_client_auth`` values: no client certificate asked, one asked and checked if sent, one required.
CLIENT_AUTH_MODES = ("none", "optional", "required")
_VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class Setting:
    """One resolved value and the key it came from (the listener's override, or the shared key)."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True)
class TlsFiles:
    """What one listener's TLS is built from."""

    listener: str
    certfile: Setting
    keyfile: Setting
    cafile: Setting
    client_auth: Setting

    @property
    def configured(self) -> bool:
        """A certificate is configured, so the listener can serve TLS."""
        return bool(self.certfile.value)


def _resolve(settings: Settings, listener: str, name: str) -> Setting:
    override = f"{listener}_ssl_{name}"
    value = str(settings.get(override, "") or "")
    if value:
        return Setting(override, value)
    shared = f"ssl_{name}"
    return Setting(shared, str(settings.get(shared, "") or ""))


def tls_files(settings: Settings, listener: str) -> TlsFiles:
    """The files and client-certificate mode of ``listener`` (``mqtt``, ``rest`` or ``rpc``)."""
    if listener not in LISTENERS:
        raise ValueError(f"unknown TLS listener {listener!r}")
    return TlsFiles(listener, *(_resolve(settings, listener, name)
                                for name in ("certfile", "keyfile", "cafile", "client_auth")))


# ------------------------------------------------------------------------------------------ building


def _readable(setting: Setting, marker: str, what: str) -> None:
    """A one-line :class:`ConfigError` unless the file of ``setting`` can be read and holds ``marker``."""
    try:
        content = Path(setting.value).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{setting}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{setting}: a directory, not a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read the file: {exc.strerror or exc}") from None
    if marker.encode() not in content:
        raise ConfigError(f"{setting}: not a PEM file holding {what} (no '{marker}' line)")


def _no_password() -> str:
    raise ConfigError("the key is encrypted; give an unencrypted PEM key (openssl pkey -in KEY -out PLAIN_KEY)")


def _ssl_reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).replace("_", " ").lower()


def build_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context from ``files``; every problem is one :class:`ConfigError` line naming the key and path."""
    if not files.configured:
        raise ConfigError(f"{files.certfile.key} is empty: {LISTENERS[files.listener]} needs a certificate "
                          f"(set ssl_certfile, or {files.listener}_ssl_certfile)")
    mode = files.client_auth.value.lower()
    if mode not in _VERIFY_MODES:
        raise ConfigError(f"{files.client_auth}: expected one of {', '.join(CLIENT_AUTH_MODES)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MINIMUM_VERSION
    _readable(files.certfile, "-----BEGIN CERTIFICATE-----", "a certificate")
    key = files.keyfile if files.keyfile.value else files.certfile
    _readable(key, "PRIVATE KEY-----", "a private key")
    try:
        context.load_cert_chain(files.certfile.value, files.keyfile.value or None, password=_no_password)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(f"{key}: the key does not match the certificate {files.certfile}") from None
        raise ConfigError(f"{files.certfile}, {key}: cannot load the certificate and key: {_ssl_reason(exc)}") \
            from None
    if files.cafile.value:
        _readable(files.cafile, "-----BEGIN CERTIFICATE-----", "CA certificates")
        try:
            context.load_verify_locations(cafile=files.cafile.value)
        except ssl.SSLError as exc:
            raise ConfigError(f"{files.cafile}: cannot load the CA certificates: {_ssl_reason(exc)}") from None
    elif mode != "none":
        raise ConfigError(f"{files.client_auth} needs a CA to check client certificates against "
                          f"(set ssl_cafile, or {files.listener}_ssl_cafile)")
    context.verify_mode = _VERIFY_MODES[mode]
    return context


class ServerTls:
    """One listener's TLS: :attr:`context` for its listening socket, reloadable from the same files."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.context = build_context(files)
        self._current = self.context
        self.context.sni_callback = self._select

    @property
    def client_auth(self) -> str:
        """``none``, ``optional`` or ``required``."""
        return self.files.client_auth.value.lower()

    def _select(self, ssl_object: Any, _server_name: str | None, _context: ssl.SSLContext) -> None:
        if self._current is not self.context:
            ssl_object.context = self._current

    def reload(self) -> None:
        """Build a context from the files as they are now, for new handshakes; on error keep the previous one."""
        self._current = build_context(self.files)


class TlsListeners:
    """The TLS of every listener of a server, one :class:`ServerTls` per distinct set of files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_files: dict[tuple[str, ...], ServerTls] = {}
        self._users: dict[tuple[str, ...], list[str]] = {}

    def for_listener(self, listener: str, *, required_by: str | None = None) -> ServerTls | None:
        """The TLS of ``listener``; None without a certificate, unless ``required_by`` (the key turning TLS on)
        makes a missing certificate a :class:`ConfigError`."""
        files = tls_files(self.settings, listener)
        if not files.configured:
            if required_by is None:
                return None
            raise ConfigError(f"{required_by}=true needs a certificate: set ssl_certfile and ssl_keyfile "
                              f"(or {listener}_ssl_certfile and {listener}_ssl_keyfile)")
        keyed = (files.certfile.value, files.keyfile.value, files.cafile.value, files.client_auth.value.lower())
        tls = self._by_files.get(keyed)
        if tls is None:
            tls = self._by_files[keyed] = ServerTls(files)
            self._users[keyed] = []
        self._users[keyed].append(listener)
        return tls

    def reload(self) -> None:
        """Reload every listener's certificates (SIGHUP); one log line per outcome."""
        if not self._by_files:
            log.info("SIGHUP: no TLS listener, nothing to reload")
            return
        for keyed, tls in self._by_files.items():
            listeners = ", ".join(self._users[keyed])
            try:
                tls.reload()
            except ConfigError as exc:
                log.error("TLS certificates of %s not reloaded: %s; the previous ones stay in use", listeners, exc)
            else:
                log.info("TLS certificates of %s reloaded from %s", listeners, tls.files.certfile.value)


# ------------------------------------------------------------------------------------------ peers and clients


def peer_common_name(transport: Any) -> str | None:
    """The common name (CN) of the verified client certificate of a TLS connection, if it sent one."""
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    if not certificate:
        return None
    for rdn in certificate.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def client_context(cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                   *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context for the project's own clients (the CLI): the system CAs, or ``cafile``; optionally a
    client certificate. Unreadable files are one-line :class:`ConfigError` s naming the option."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = _MINIMUM_VERSION
    context.check_hostname = check_hostname
    for option, path, marker in _client_files(cafile, certfile, keyfile):
        _readable(Setting(option, path), marker, "a certificate" if "CERT" in marker else "a private key")
    try:
        if cafile:
            context.load_verify_locations(cafile=cafile)
        if certfile:
            context.load_cert_chain(certfile, keyfile or None, password=_no_password)
    except ssl.SSLError as exc:
        raise ConfigError(f"--cafile {cafile}, --cert {certfile}, --key {keyfile}: {_ssl_reason(exc)}") from None
    return context


def _client_files(cafile: str | None, certfile: str | None,
                  keyfile: str | None) -> Iterable[tuple[str, str, str]]:
    if cafile:
        yield "--cafile", cafile, "-----BEGIN CERTIFICATE-----"
    if certfile:
        yield "--cert", certfile, "-----BEGIN CERTIFICATE-----"
        yield "--key", keyfile or certfile, "PRIVATE KEY-----"
    elif keyfile:
        raise ConfigError("--key needs --cert (the client certificate it belongs to)")
