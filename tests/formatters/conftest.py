"""Fixtures for the built-in payload formatter tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from formatters.json_formatter import JsonFormatter
from formatters.line_protocol import LineProtocolFormatter
from iotdb_core.config import Settings, default_settings, load_settings
from iotdb_core.formatter import FormatContext

MakeLine = Callable[..., LineProtocolFormatter]


@pytest.fixture
def context() -> FormatContext:
    return FormatContext(client_id="sensor-7", username="alice", qos=1)


@pytest.fixture
def json_formatter() -> JsonFormatter:
    return JsonFormatter(default_settings())


def line_settings(**overrides: str) -> Settings:
    """Settings as the service builds them: core keys plus the line formatter's own, from raw strings."""
    return load_settings(None, extra_options=LineProtocolFormatter.options, environ={}, overrides=overrides)


@pytest.fixture
def make_line() -> MakeLine:
    """Build a line formatter from raw option strings, e.g. ``make_line(timestamp_precision="ns")``."""

    def make(**overrides: str) -> LineProtocolFormatter:
        return LineProtocolFormatter(line_settings(**overrides))

    return make


@pytest.fixture
def line_formatter(make_line: MakeLine) -> LineProtocolFormatter:
    """Line protocol in nanoseconds (InfluxDB's default) into a millisecond database."""
    return make_line()
