"""Forwarding every point stored here to an Apache IoTDB cluster, as a storage-hook plugin (see docs/scale-out.md)."""
