"""The core's formatter contract check, run on the ``topic`` formatter."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from iotdb_plugins_example.topic_formatter import TopicFormatter

from iotdb_core.config import Settings, default_settings
from iotdb_core.testing import contract

VALID_SAMPLES = [
    ("root/sg/d1/temperature", b"21.5"),
    ("root/sg/d1/count", b"42"),
    ("root/sg/d1/on", b"true"),
    ("root/sg/d1/status", b'"running"'),
    ("root/sg/d1/status", b"plain text"),
    ("plant/d-1/temperature", b'{"value": 20.0}'),
    ("plant/d-1/temperature", b'{"ts": 1714550400000, "value": 20.0}'),
    ("plant/d-1/temperature", b'{"ts": "2024-05-01T10:00:00Z", "value": -3}'),
]


def test_topic_formatter_meets_the_contract() -> None:
    contract.check_formatter_contract(TopicFormatter(default_settings()), VALID_SAMPLES)


@pytest.mark.parametrize("raw", [{}, {"topic_formatter_plain_text": "false"},
                                 {"topic_formatter_template": "root.f.{0}.{-1}", "timestamp_precision": "ns"}])
def test_every_configuration_meets_the_contract(make_settings: Callable[..., Settings], raw: dict[str, str]) -> None:
    contract.check_formatter_contract(TopicFormatter(make_settings(**raw)), VALID_SAMPLES[:4] + VALID_SAMPLES[5:])


@given(payload=contract.payload_bytes([payload for _, payload in VALID_SAMPLES]))
def test_any_payload_meets_the_contract(payload: bytes) -> None:
    contract.check_any_payload(TopicFormatter(default_settings()), "root/sg/d1/s", payload)
