"""The ``mqtt_upstream_*`` settings, parsed into what the upstream clients need.

Broker URIs are ``mqtt://[user:password@]host[:port]`` (1883 by default) or ``mqtts://...`` (TLS, 8883 by
default), comma-separated. Anything else is a :class:`~iotdb_core.errors.ConfigError` naming the key, the
entry and what was wrong, raised when the service starts.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from iotdb_core.config import Settings
from iotdb_core.errors import ConfigError
from iotdb_mqtt.codec import validate_topic_filter
from iotdb_mqtt.codec.errors import MQTTProtocolError

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
#: MQTT 3.1.1 and 5.0 by the names operators use, as protocol levels.
PROTOCOL_LEVELS = {"3.1.1": 4, "5": 5}


@dataclass(frozen=True)
class BrokerUri:
    """One upstream broker: where it is, whether TLS is used, and the credentials to connect with."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        """``mqtt://host:port`` without the credentials, for logs and metrics."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class UpstreamConfig:
    """Everything the upstream clients are configured with."""

    brokers: tuple[BrokerUri, ...]
    topic_filters: tuple[str, ...]
    share_group: str
    client_id: str
    qos: int
    protocol_level: int
    session_expiry: int
    receive_maximum: int
    batch_delay_s: float
    keep_alive: int
    reconnect_max_s: float
    cafile: str | None

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The filters as subscribed: ``$share/<group>/<filter>`` when a share group is set."""
        if not self.share_group:
            return self.topic_filters
        return tuple(f"$share/{self.share_group}/{topic_filter}" for topic_filter in self.topic_filters)

    def client_id_for(self, index: int) -> str:
        """The client id used with the ``index``-th broker: a suffix tells them apart when there are several
        (brokers of one cluster share their client ids, so one id on two nodes would take itself over)."""
        return self.client_id if len(self.brokers) == 1 else f"{self.client_id}-{index}"

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamConfig | None:
        """The upstream configuration, or ``None`` when ``mqtt_upstream_uris`` is empty."""
        uris = [part.strip() for part in str(settings.mqtt_upstream_uris).split(",") if part.strip()]
        if not uris:
            return None
        brokers = tuple(parse_broker_uri(uri) for uri in uris)
        filters = tuple(part.strip() for part in str(settings.mqtt_upstream_topics).split(",") if part.strip())
        if not filters:
            raise ConfigError("mqtt_upstream_topics: at least one topic filter is needed when mqtt_upstream_uris "
                              "is set")
        for topic_filter in filters:
            try:
                validate_topic_filter(topic_filter)
            except MQTTProtocolError as exc:
                raise ConfigError(f"mqtt_upstream_topics: {topic_filter!r} is not a valid topic filter: {exc}") \
                    from None
            if topic_filter.startswith("$share/"):
                raise ConfigError(f"mqtt_upstream_topics: {topic_filter!r}: give the group in "
                                  "mqtt_upstream_share_group, not in the filter")
        group = str(settings.mqtt_upstream_share_group).strip()
        if any(char in group for char in "/+#") or "\x00" in group:
            raise ConfigError(f"mqtt_upstream_share_group={group}: a share group name may not contain '/', '+' "
                              "or '#'")
        client_id = str(settings.mqtt_upstream_client_id).strip() or default_client_id(Path(settings.data_dir))
        return cls(
            brokers=brokers,
            topic_filters=filters,
            share_group=group,
            client_id=client_id,
            qos=int(settings.mqtt_upstream_qos),
            protocol_level=PROTOCOL_LEVELS[settings.mqtt_upstream_protocol],
            session_expiry=int(settings.mqtt_upstream_session_expiry),
            receive_maximum=int(settings.mqtt_upstream_receive_maximum),
            batch_delay_s=int(settings.mqtt_upstream_batch_delay_in_ms) / 1000.0,
            keep_alive=int(settings.mqtt_upstream_keep_alive),
            reconnect_max_s=int(settings.mqtt_upstream_reconnect_max_in_ms) / 1000.0,
            cafile=str(settings.mqtt_upstream_cafile).strip() or None,
        )


def parse_broker_uri(uri: str) -> BrokerUri:
    """``mqtt://[user:password@]host[:port]`` or ``mqtts://...`` as a :class:`BrokerUri`."""
    where = f"mqtt_upstream_uris: {_without_password(uri)!r}"
    parts = urlsplit(uri)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"{where}: the scheme must be mqtt:// or mqtts://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{where}: expected mqtt://[user:password@]host:port with nothing after the port")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where}: the port must be a number 1-65535") from None
    if not parts.hostname:
        raise ConfigError(f"{where}: no host name")
    if port == 0:
        raise ConfigError(f"{where}: the port must be a number 1-65535")
    return BrokerUri(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def default_client_id(data_dir: Path) -> str:
    """A client id that stays the same across restarts of this node and differs between nodes:
    ``iotdb-<host name>-<digest of the data directory>``, so the broker keeps the session for it."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"iotdb-{socket.gethostname()}-{digest}"


def _without_password(uri: str) -> str:
    """``uri`` with the password replaced, fit for an error message."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostpart}"
