"""The web console: pages and a small JSON API served by the REST service (see ``docs/console.md``).

:class:`Console` mounts its routes into the REST service's aiohttp application: ``/`` is the single-page
console and ``/console/`` holds its static assets (shipped as package data; no build step) and its API.
"""

from iotdb_core.console.app import Console

__all__ = ["Console"]
