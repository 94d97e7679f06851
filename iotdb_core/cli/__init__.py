"""The ``iotdb`` command line."""
