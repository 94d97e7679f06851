"""Ingesting from upstream MQTT brokers: this server as a client of an existing broker (cluster), sharing a
subscription with other nodes; see docs/scale-out.md."""

from iotdb_mqtt.upstream.client import UpstreamIngestion
from iotdb_mqtt.upstream.config import UpstreamConfig

__all__ = ["UpstreamConfig", "UpstreamIngestion"]
