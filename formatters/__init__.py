"""The built-in MQTT payload formatters: ``json`` (IoTDB's JSON shapes) and ``line`` (InfluxDB line protocol).

Each is registered under the entry-point group ``iotdb.payload_formatters``; ``docs/formatters.md``
describes the accepted payloads, the options and the error messages.
"""

from formatters.json_formatter import JsonFormatter
from formatters.line_protocol import LineProtocolFormatter

__all__ = ["JsonFormatter", "LineProtocolFormatter"]
