"""Configuration: a Java-style properties file, environment overrides and one validated settings object.

The file holds ``key=value`` lines and ``#`` comments, without sections, as IoTDB's
``iotdb-system.properties`` does; it is read with :mod:`configparser` under a synthetic section.
Every key has a default, so the service starts with no file at all. Precedence, lowest first:
defaults, the file, ``IOTDB_<KEY>`` environment variables (``IOTDB_MQTT_PORT=1884``).

An unknown key is a warning naming the closest known key (a typo must not silently keep a default);
a bad value is a :class:`ConfigError` naming key, value, expected form, file and line.
"""

from __future__ import annotations

import configparser
import difflib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from iotdb_core.errors import ConfigError

log = logging.getLogger("iotdb.config")

#: IoTDB's configuration file names, newest first; the first one found in a conf directory is used.
CONFIG_FILE_NAMES = ("iotdb-system.properties", "iotdb-common.properties", "iotdb-engine.properties")
ENV_PREFIX = "IOTDB_"
_SECTION = "iotdb"


@dataclass(frozen=True)
class Option:
    """One configuration key: its default, how its text is parsed, and one line of meaning."""

    key: str
    default: Any
    parse: Callable[[str], Any]
    expected: str
    description: str


def parse_bool(text: str) -> bool:
    """Parse ``true``/``false`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(text)


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A parser for integers within ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(text) from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(text)
        return value

    return parse


def number(low: float = 0.0) -> Callable[[str], float]:
    """A parser for floating-point numbers of at least ``low``."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(text) from None
        if not value >= low:
            raise ValueError(text)
        return value

    return parse


def choice(*names: str) -> Callable[[str], str]:
    """A parser accepting one of ``names`` (case-insensitive), returned in the case given here."""
    by_upper = {name.upper(): name for name in names}

    def parse(text: str) -> str:
        return by_upper[text.strip().upper()]

    return parse


def text(value: str) -> str:
    """A parser for free text, stripped of surrounding blanks."""
    return value.strip()


def non_empty(value: str) -> str:
    """A parser for text that must not be empty."""
    stripped = value.strip()
    if not stripped:
        raise ValueError(value)
    return stripped


_PORT = integer(0, 65535)


def optional_port(value: str) -> int:
    """A parser for a port number 0-65535, or ``-1`` / empty for "off"."""
    stripped = value.strip()
    return -1 if stripped in ("", "-1") else _PORT(stripped)


def url_path(value: str) -> str:
    """A parser for the path part of a URL: starts with ``/``, no blanks, no query or fragment."""
    stripped = value.strip()
    if not stripped.startswith("/") or re.search(r"[\s?#]", stripped):
        raise ValueError(value)
    return stripped


_MIB = 1024 * 1024
#: ``ssl_client_auth`` values (see :mod:`iotdb_core.tls`).
_CLIENT_AUTH = ("none", "optional", "required")


def _tls_overrides(listener: str, name: str) -> tuple[Option, ...]:
    """The keys with which one listener overrides the shared ``ssl_...`` keys (empty: the shared value)."""
    return (
        Option(f"{listener}_ssl_certfile", "", text, "a PEM file path, or empty for ssl_certfile",
               f"certificate of {name}"),
        Option(f"{listener}_ssl_keyfile", "", text, "a PEM file path, or empty for ssl_keyfile",
               f"private key of {name}"),
        Option(f"{listener}_ssl_cafile", "", text, "a PEM file path, or empty for ssl_cafile",
               f"CA of the client certificates of {name}"),
        Option(f"{listener}_ssl_client_auth", "", choice("", *_CLIENT_AUTH),
               "none, optional, required, or empty for ssl_client_auth",
               f"client certificates of {name}: none, optional or required"),
    )


#: Every key the core knows, in the order the shipped properties file lists them.
CORE_OPTIONS: tuple[Option, ...] = (
    # MQTT service
    Option("enable_mqtt_service", True, parse_bool, "true or false", "run the MQTT service in `iotdb serve`"),
    Option("mqtt_host", "127.0.0.1", non_empty, "a host name or IP address", "address the MQTT service binds"),
    Option("mqtt_port", 1883, optional_port, "a port number 0-65535, or -1 for off",
           "port of plain-text MQTT (0 picks a free one; -1: not served, e.g. to serve only MQTT over TLS)"),
    Option("mqtt_handler_pool_size", 1, integer(1, 1024), "an integer 1-1024",
           "threads that turn publishes into writes"),
    Option("mqtt_event_loop", "auto", choice("auto", "uvloop", "asyncio"), "auto, uvloop or asyncio",
           "event loop of `iotdb serve` (MQTT, REST, RPC); auto: uvloop when installed, else asyncio's"),
    Option("mqtt_payload_formatter", "json", non_empty, "an installed formatter name",
           "payload formatter plugin, by entry-point name (`iotdb formatters` lists them)"),
    Option("mqtt_max_message_size", 1048576, integer(16, 268435455), "bytes, 16-268435455",
           "largest accepted MQTT packet; larger ones close the connection"),
    Option("mqtt_max_connections", 10000, integer(1), "a positive integer", "most simultaneous MQTT connections"),
    Option("mqtt_connect_timeout_in_ms", 10000, integer(100), "milliseconds, at least 100",
           "time a new connection has to send CONNECT, and a started packet to complete"),
    Option("mqtt_allow_anonymous", False, parse_bool, "true or false",
           "accept MQTT connections without user name and password"),
    Option("mqtt_ack_reason_strings", False, parse_bool, "true or false",
           "put the reason a publish was refused on its MQTT 5 PUBACK / PUBREC as a Reason String"),
    Option("mqtt_dead_letter_max_bytes", 64 * _MIB, integer(4096), "bytes, at least 4096",
           "size of the rejected-payload log before its oldest file is removed"),
    Option("mqtt_ingest_topics", "#", text, "comma-separated MQTT topic filters",
           "topics whose publishes are written to the database; others are only routed to subscribers"),
    Option("mqtt_max_queued_messages", 1000, integer(1), "a positive integer",
           "messages one subscriber session may have waiting beyond its in-flight window; QoS 0 ones go first"),
    Option("mqtt_max_queued_bytes", 16 * _MIB, integer(1024), "bytes, at least 1024",
           "payload bytes one subscriber session may have waiting"),
    Option("mqtt_max_inflight_messages", 20, integer(1, 65535), "an integer 1-65535",
           "QoS 1 and 2 messages sent to an MQTT 3.1.x subscriber and not yet acknowledged"),
    Option("mqtt_retained_max_count", 100000, integer(0), "an integer, at least 0",
           "most retained messages kept (0: none)"),
    Option("mqtt_retained_max_bytes", 64 * _MIB, integer(0), "bytes, at least 0",
           "most payload bytes of retained messages kept"),
    Option("mqtt_max_stored_sessions", 100000, integer(1), "a positive integer",
           "subscriber sessions kept for disconnected clients; the oldest is ended beyond it"),
    Option("mqtt_max_subscriptions", 1_000_000, integer(1), "a positive integer",
           "most subscriptions of all clients together; a SUBSCRIBE past it is refused (MQTT 5: 0x97)"),
    Option("mqtt_max_subscriptions_per_client", 100_000, integer(1), "a positive integer",
           "most subscriptions of one client; a SUBSCRIBE past it is refused (MQTT 5: 0x97)"),
    Option("mqtt_sys_interval", 10, integer(0, 86400), "seconds, 0-86400",
           "interval between $SYS/broker/... updates (0: none)"),
    Option("mqtt_ws_port", 8083, optional_port, "a port number 0-65535, or -1 or empty for off",
           "port of MQTT over WebSocket (0 picks a free one; -1 or empty: not served)"),
    Option("mqtt_ws_host", "", text, "a host name or IP address, or empty for mqtt_host",
           "address MQTT over WebSocket binds (empty: the same as mqtt_host)"),
    Option("mqtt_ws_path", "/mqtt", url_path, "a URL path starting with /",
           "URL path of the MQTT over WebSocket endpoint"),
    # MQTT upstream ingestion (docs/scale-out.md)
    Option("mqtt_upstream_uris", "", text, "comma-separated mqtt://[user:password@]host:port or mqtts://...",
           "upstream brokers this server subscribes to as a client (empty: none)"),
    Option("mqtt_upstream_topics", "#", text, "comma-separated MQTT topic filters",
           "topic filters subscribed at the upstream brokers"),
    Option("mqtt_upstream_share_group", "", text, "a shared-subscription group name, or empty",
           "subscribe through $share/<group>/<filter> so the nodes of one group split the messages"),
    Option("mqtt_upstream_client_id", "", text, "an MQTT client id, or empty",
           "client id at the upstream brokers (empty: iotdb-<host>-<digest of data_dir>, stable across restarts)"),
    Option("mqtt_upstream_qos", 1, integer(0, 2), "0, 1 or 2", "QoS of the upstream subscriptions"),
    Option("mqtt_upstream_protocol", "5", choice("5", "3.1.1"), "5 or 3.1.1",
           "MQTT version spoken to the upstream brokers"),
    Option("mqtt_upstream_session_expiry", 86400, integer(1, 0xFFFFFFFF), "seconds, 1-4294967295",
           "how long an upstream broker keeps this node's session and queued messages while it is away (MQTT 5)"),
    Option("mqtt_upstream_receive_maximum", 1000, integer(1, 65535), "an integer 1-65535",
           "QoS 1 and 2 messages an upstream broker may have unacknowledged in flight to this node"),
    Option("mqtt_upstream_batch_delay_in_ms", 20, integer(0, 1000), "milliseconds, 0-1000",
           "most a message from an upstream broker waits for more to be written with it (0: written at once)"),
    Option("mqtt_upstream_keep_alive", 60, integer(0, 65535), "seconds, 0-65535",
           "keep alive of the upstream connections (0: none)"),
    Option("mqtt_upstream_reconnect_max_in_ms", 30000, integer(100), "milliseconds, at least 100",
           "longest delay between reconnect attempts (exponential backoff with jitter)"),
    Option("mqtt_upstream_cafile", "", text, "a PEM file path, or empty",
           "CA certificates for mqtts:// brokers (empty: the system's)"),
    # Storage
    Option("data_dir", "data", non_empty, "a directory path", "where the WAL, TsFiles, schema and users live"),
    Option("wal_mode", "SYNC", choice("SYNC", "ASYNC", "DISABLE"), "SYNC, ASYNC or DISABLE",
           "SYNC: a write returns after fsync; ASYNC: after write(2), fsync periodically; DISABLE: no WAL"),
    Option("wal_sync_mode_fsync_delay_in_ms", 1.0, number(0.0), "milliseconds, at least 0",
           "most a SYNC-mode fsync waits to gather concurrent writers into one fsync"),
    Option("wal_async_mode_fsync_delay_in_ms", 1000.0, number(1.0), "milliseconds, at least 1",
           "interval between fsyncs in ASYNC mode"),
    Option("wal_file_size_threshold_in_byte", 64 * _MIB, integer(_MIB), "bytes, at least 1048576",
           "size at which a WAL segment file is closed and a new one started"),
    Option("wal_skip_corrupt_records", False, parse_bool, "true or false",
           "skip corrupt WAL records found before the tail on startup instead of refusing to start"),
    Option("memtable_size_threshold", 64 * _MIB, integer(_MIB), "bytes, at least 1048576",
           "a memtable is flushed to a TsFile when it holds this much"),
    Option("memtable_memory_budget_in_byte", 512 * _MIB, integer(2 * _MIB), "bytes, at least 2097152",
           "memory all memtables may use; writers wait, then fail, beyond it"),
    Option("memtable_flush_interval_in_ms", 600000, integer(1000), "milliseconds, at least 1000",
           "a memtable older than this is flushed even when small"),
    Option("write_stall_timeout_in_ms", 30000, integer(0), "milliseconds, at least 0",
           "how long a writer waits for memory before its write is rejected"),
    Option("allocator_keep_freed_in_byte", 256 * _MIB, integer(0), "bytes, at least 0",
           "freed memory the process keeps for reuse instead of returning it to the OS (glibc; 0: its defaults)"),
    Option("enable_compaction", True, parse_bool, "true or false", "merge TsFiles in the background"),
    Option("compaction_files_per_level", 4, integer(2, 64), "an integer 2-64",
           "files of one level merged together into one file of the next level"),
    # Schema
    Option("enable_auto_create_schema", True, parse_bool, "true or false",
           "create a series on its first write instead of rejecting the write"),
    Option("default_database_level", 1, integer(1, 16), "an integer 1-16",
           "levels under root that name the database (1: root.sg0.d1.s2 is in root.sg0)"),
    Option("boolean_string_infer_type", "BOOLEAN", choice("BOOLEAN", "TEXT"), "BOOLEAN or TEXT",
           "type of a new series first written a boolean"),
    Option("integer_string_infer_type", "DOUBLE", choice("INT32", "INT64", "FLOAT", "DOUBLE"),
           "INT32, INT64, FLOAT or DOUBLE", "type of a new series first written an integer"),
    Option("floating_string_infer_type", "DOUBLE", choice("FLOAT", "DOUBLE"), "FLOAT or DOUBLE",
           "type of a new series first written a floating-point number"),
    Option("nan_string_infer_type", "DOUBLE", choice("FLOAT", "DOUBLE", "TEXT"), "FLOAT, DOUBLE or TEXT",
           "type of a new series first written NaN"),
    Option("enable_partial_insert", True, parse_bool, "true or false",
           "write a row's valid measurements when others fail (false: reject the whole row)"),
    Option("timestamp_precision", "ms", choice("ms", "us", "ns"), "ms, us or ns",
           "unit of stored timestamps"),
    # Query surface
    Option("enable_rest_service", True, parse_bool, "true or false",
           "run the REST API and the web console in `iotdb serve`"),
    Option("rest_service_host", "127.0.0.1", non_empty, "a host name or IP address", "address the REST API binds"),
    Option("rest_service_port", 18080, _PORT, "a port number 0-65535", "port the REST API binds"),
    Option("rest_query_default_row_size_limit", 10000, integer(1), "a positive integer",
           "most rows one REST query returns"),
    Option("rest_max_request_size", 16 * _MIB, integer(1024, 2**31 - 1), "bytes, 1024-2147483647",
           "largest accepted REST request body; larger ones are answered with HTTP 413"),
    Option("enable_rpc_service", True, parse_bool, "true or false",
           "serve IoTDB's native client protocol (apache-iotdb Session, the CLI) in `iotdb serve`"),
    Option("rpc_address", "127.0.0.1", non_empty, "a host name or IP address", "address the native RPC service binds"),
    Option("rpc_port", 6667, _PORT, "a port number 0-65535", "port the native RPC service binds"),
    Option("thrift_max_frame_size", 512 * _MIB, integer(1024, 2**31 - 1), "bytes, 1024-2147483647",
           "largest accepted Thrift frame; a larger frame length closes the connection before its body is read"),
    # TLS (see docs/security.md)
    Option("ssl_certfile", "", text, "a PEM file path, or empty for no TLS",
           "server certificate (and chain) of every TLS listener; MQTT over TLS and secure WebSocket start with it"),
    Option("ssl_keyfile", "", text, "a PEM file path, or empty when ssl_certfile holds the key",
           "unencrypted private key of ssl_certfile"),
    Option("ssl_cafile", "", text, "a PEM file path, or empty",
           "CA certificates that client certificates are checked against"),
    Option("ssl_client_auth", "none", choice(*_CLIENT_AUTH), "none, optional or required",
           "client certificates: not asked for, checked when sent, or required"),
    Option("mqtt_ssl_port", 8883, optional_port, "a port number 0-65535, or -1 for off",
           "port of MQTT over TLS, served when a certificate is configured (0 picks a free one; -1: not served)"),
    Option("mqtt_wss_port", 8084, optional_port, "a port number 0-65535, or -1 for off",
           "port of MQTT over secure WebSocket (host mqtt_ws_host, path mqtt_ws_path), served when a certificate "
           "is configured (0 picks a free one; -1: not served)"),
    Option("mqtt_use_identity_as_username", False, parse_bool, "true or false",
           "a client certificate's CN is the MQTT user name, with no password (needs mqtt client auth)"),
    Option("enable_https", False, parse_bool, "true or false",
           "serve the REST API and the web console over HTTPS (on rest_service_port) instead of HTTP"),
    Option("enable_thrift_ssl", False, parse_bool, "true or false",
           "serve the native RPC port over TLS instead of plain TCP"),
    *(option for listener, name in (("mqtt", "MQTT over TLS and secure WebSocket"), ("rest", "HTTPS"),
                                    ("rpc", "the RPC port"))
      for option in _tls_overrides(listener, name)),
)


@dataclass(frozen=True)
class Settings:
    """Validated configuration values by key, plus where each explicit value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    file: Path | None = None

    def __getitem__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"no configuration key {key!r}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when these settings were built without that key.

        Formatters and plugins read their own keys with it, so they also work on settings built
        without their options (``default_settings()`` in a test).
        """
        return self.values.get(key, default)

    def __getattr__(self, key: str) -> Any:
        values = object.__getattribute__(self, "values")
        if key in values:
            return values[key]
        raise AttributeError(key)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some values replaced (already-typed values, for programmatic use)."""
        unknown = set(changes) - set(self.values)
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        merged = dict(self.values)
        merged.update(changes)
        sources = dict(self.sources)
        sources.update({key: "set by the caller" for key in changes})
        return Settings(MappingProxyType(merged), MappingProxyType(sources), self.file)


def find_config_file(conf_dir: Path) -> Path | None:
    """Return the first of IoTDB's configuration file names present in ``conf_dir``."""
    for name in CONFIG_FILE_NAMES:
        candidate = conf_dir / name
        if candidate.is_file():
            return candidate
    return None


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """Pick the configuration file: ``--config`` (a file or a conf directory), else ``$IOTDB_CONF``, else none.

    With no file the embedded defaults apply.
    """
    if explicit is not None:
        path = Path(explicit)
        if path.is_dir():
            found = find_config_file(path)
            if found is None:
                names = ", ".join(CONFIG_FILE_NAMES)
                raise ConfigError(f"--config {path}: the directory holds none of {names}")
            return found
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        return path
    conf_dir = os.environ.get("IOTDB_CONF")
    if conf_dir:
        return find_config_file(Path(conf_dir))
    return None


def read_properties(path: Path) -> dict[str, tuple[str, int]]:
    """Read a properties file into ``{key: (raw value, line number)}``."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    parser = configparser.ConfigParser(
        delimiters=("=",), comment_prefixes=("#", "!"), inline_comment_prefixes=None,
        interpolation=None, strict=False, empty_lines_in_values=False,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(f"[{_SECTION}]\n" + content, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a key=value properties file: {_first_line(str(exc))}") from None
    lines = _line_numbers(content)
    return {key: (value, lines.get(key, 0)) for key, value in parser.items(_SECTION)}


def _line_numbers(content: str) -> dict[str, int]:
    numbers: dict[str, int] = {}
    pattern = re.compile(r"^\s*([^#!=\s][^=]*?)\s*=")
    for number_, line in enumerate(content.splitlines(), start=1):
        match = pattern.match(line)
        if match:
            numbers[match.group(1)] = number_
    return numbers


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def load_settings(
    path: Path | None = None,
    *,
    extra_options: Iterable[Option] = (),
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    warn_unknown: bool = True,
    unused_keys: Iterable[str] = (),
) -> Settings:
    """Build the settings from defaults, ``path`` (if any), the environment and ``overrides``.

    ``extra_options`` are keys declared by plugins and formatters; they are validated like the
    core's. ``overrides`` are raw strings, e.g. from command-line flags, applied last. ``unused_keys``
    are known keys that do not apply (those of installed formatters not chosen): ignored without a warning.
    """
    unused = frozenset(unused_keys)
    options = {option.key: option for option in CORE_OPTIONS}
    option: Option | None
    for option in extra_options:
        if option.key in options and options[option.key] is not option:
            raise ConfigError(f"configuration key {option.key!r} is declared twice")
        options[option.key] = option
    values = {key: option.default for key, option in options.items()}
    sources: dict[str, str] = {}

    raw: list[tuple[str, str, str]] = []
    if path is not None:
        for key, (value, line) in read_properties(path).items():
            raw.append((key, value, f"{path}, line {line}"))
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name not in {"IOTDB_CONF", "IOTDB_DISABLE_PLUGINS"}:
            key = name[len(ENV_PREFIX):].lower()
            if key in options:
                raw.append((key, value, f"environment variable {name}"))
    for key, value in (overrides or {}).items():
        raw.append((key, value, "command line"))

    for key, value, source in raw:
        option = options.get(key)
        if option is None:
            if warn_unknown and key not in unused:
                _warn_unknown(key, source, options)
            continue
        try:
            values[key] = option.parse(value)
        except (ValueError, KeyError, TypeError) as exc:
            detail = str(exc).strip("'\"")
            why = f": {detail}" if detail and detail != value.strip() and not isinstance(exc, KeyError) else ""
            raise ConfigError(f"{key}={value}: expected {option.expected} ({source}){why}") from None
        sources[key] = source
    return Settings(MappingProxyType(values), MappingProxyType(sources), path)


def _warn_unknown(key: str, source: str, options: Mapping[str, Option]) -> None:
    close = difflib.get_close_matches(key, options.keys(), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    log.warning("unknown configuration key %r ignored (%s)%s", key, source, hint)


def default_settings() -> Settings:
    """The embedded defaults, ignoring the environment."""
    return load_settings(None, environ={})


def render_properties(options: Iterable[Option] = CORE_OPTIONS) -> str:
    """Render a properties file listing every key with its default and meaning."""
    lines = [
        "# iotdb-py configuration: key=value lines, '#' starts a comment.",
        "# Every key is listed with its default. Environment variables IOTDB_<KEY> override this file.",
        "",
    ]
    for option in options:
        lines.append(f"# {option.description} ({option.expected})")
        lines.append(f"{option.key}={_render(option.default)}")
        lines.append("")
    return "\n".join(lines)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
