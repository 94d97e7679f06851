"""IoTDB's REST API v2 over aiohttp, served by ``iotdb serve`` unless ``enable_rest_service=false``.

:class:`RestServer` binds and serves; :class:`RestService` holds the endpoints (``app()`` is the aiohttp
application, usable with aiohttp's test utilities). See ``docs/rest.md`` for endpoints, shapes and codes.
"""

from iotdb_core.rest.app import RestServer, RestService
from iotdb_core.rest.metrics import REST_COUNTERS

__all__ = ["REST_COUNTERS", "RestServer", "RestService"]
