"""``GET /openapi.json`` describes exactly the routes the REST service registers, and is valid OpenAPI 3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from iotdb_core.auth import UserStore
from iotdb_core.config import default_settings
from iotdb_core.metrics import ServiceCounters
from iotdb_core.rest import REST_COUNTERS, RestService
from iotdb_core.rest.openapi import openapi_document
from iotdb_core.storage import Engine

from .conftest import RestClient

_METHODS = {"get", "post", "put", "delete", "patch"}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RestService]:
    """The service over a real engine and user store, as ``iotdb serve`` builds it."""
    settings = default_settings()
    engine = Engine.open(tmp_path / "data", settings)
    service = RestService(engine, settings, UserStore.open(tmp_path / "data"), ServiceCounters(REST_COUNTERS))
    try:
        yield service
    finally:
        service.close()
        engine.close()


def registered_routes(service: RestService) -> set[tuple[str, str]]:
    routes = set()
    for route in service.app().router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD beside every GET
            continue
        routes.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    return routes


def documented_routes(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method, path) for path, item in paths.items() for method in item if method in _METHODS}


def test_every_route_is_documented_and_every_documented_route_exists(service: RestService) -> None:
    registered = registered_routes(service)
    documented = documented_routes(openapi_document())
    assert registered - documented == set(), "registered but not in /openapi.json"
    assert documented - registered == set(), "in /openapi.json but not registered"
    assert ("post", "/grafana/v2/query/expression") in registered  # the comparison saw the new routes


def test_document_is_valid_openapi_3() -> None:
    validate(openapi_document())  # raises with the offending part


def test_served_without_credentials(rest: RestClient) -> None:
    reply = rest.request("GET", "/openapi.json", authorization=None)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == openapi_document()
    # every other route still needs credentials
    assert rest.request("GET", "/metrics", authorization=None).status == 401
