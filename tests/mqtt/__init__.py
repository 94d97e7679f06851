"""MQTT service tests against real ``iotdb serve`` subprocesses."""
