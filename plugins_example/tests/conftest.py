"""Shared helpers: settings that carry the example plugins' options."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from iotdb_plugins_example.bounds import OPTIONS as BOUNDS_OPTIONS
from iotdb_plugins_example.topic_formatter import TopicFormatter

from iotdb_core.config import Settings, load_settings


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Build settings from raw ``key=value`` strings, with both plugins' options declared."""

    def make(**raw: str) -> Settings:
        return load_settings(None, extra_options=(*TopicFormatter.options, *BOUNDS_OPTIONS), environ={}, overrides=raw)

    return make
