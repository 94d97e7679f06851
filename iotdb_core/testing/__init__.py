"""Test helpers shipped with the core, for the project's tests and for plugin and formatter authors.

:mod:`iotdb_core.testing.contract` checks a payload formatter against the formatter contract. The
helpers that build Hypothesis strategies import Hypothesis (a test dependency) only when called,
so importing this package never requires it.
"""

from iotdb_core.testing.contract import (
    ContractViolation,
    check_any_payload,
    check_formatter_contract,
    check_rows,
    hostile_payloads,
    payload_bytes,
)

__all__ = [
    "ContractViolation",
    "check_any_payload",
    "check_formatter_contract",
    "check_rows",
    "hostile_payloads",
    "payload_bytes",
]
