"""Broker state that the MQTT service keeps beside its connections, free of I/O scheduling.

``tree`` matches publishes to subscriptions, ``retained`` keeps retained messages on disk and
``session_log`` keeps persistent sessions on disk. None of them imports asyncio: the service calls
them from its event loop or its worker threads, and the tests drive them directly.
"""
