"""Example third-party plugins for iotdb-py.

* :class:`~iotdb_plugins_example.topic_formatter.TopicFormatter` — the ``topic`` payload formatter:
  the series comes from the MQTT topic, the payload carries one value.
* :class:`~iotdb_plugins_example.bounds.BoundsPlugin` — the ``bounds`` storage plugin: clamps or
  drops numeric values outside configured bounds before they are written.
"""

__version__ = "0.1.0"
