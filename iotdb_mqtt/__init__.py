"""Built-in MQTT server of the time-series database: wire codec, sessions and ingestion."""
