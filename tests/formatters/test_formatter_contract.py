"""The formatter contract check: both built-in formatters pass it, and it catches formatters that break it."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings

from formatters.json_formatter import JsonFormatter
from formatters.line_protocol import LineProtocolFormatter
from iotdb_core.config import Option, default_settings, text
from iotdb_core.datatypes import TSDataType
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, PayloadFormatter, Row
from iotdb_core.testing import (
    ContractViolation,
    check_any_payload,
    check_formatter_contract,
    check_rows,
    hostile_payloads,
    payload_bytes,
)

JSON_SAMPLES = [
    ("iotdb/json", json.dumps({"device": "root.sg.d1", "timestamp": 1586076045524, "measurements": ["s1", "s2"],
                               "values": [0.530635, True]}).encode()),
    ("iotdb/json", json.dumps({"device": "root.sg.`d-2`", "timestamps": [1, 2], "measurements": ["s1", "`s 2`"],
                               "datatypes": ["INT32", "TEXT"], "values": [[1, "a"], [None, "b"]]}).encode()),
    ("other", json.dumps([{"device": "root.sg.d3", "timestamp": -5, "measurements": ["x"],
                           "values": ["12"]}]).encode()),
]
LINE_SAMPLES = [
    ("farm/sensors", b"weather,location=us-midwest,season=summer temperature=82,humidity=71i 1465839830100400200"),
    ("farm", b'cpu,host=server\\ 01 value=1.0,msg="all \\"systems\\" nominal",ok=t,n=3u,m=4i32,f=1.5f\n'
             b"# comment\r\nmem used=1i 1434055562000000000\r\n"),
    ("plant_7/x", "温度,区=东城 值=1".encode()),
]


def test_json_formatter_meets_the_contract() -> None:
    check_formatter_contract(JsonFormatter(default_settings()), JSON_SAMPLES)


def test_line_formatter_meets_the_contract() -> None:
    check_formatter_contract(LineProtocolFormatter(default_settings()), LINE_SAMPLES)


def test_hostile_payloads_cover_the_required_kinds() -> None:
    payloads = dict(hostile_payloads([b"sample"]))
    assert payloads["empty payload"] == b""
    assert len(payloads["1 MiB of junk text"]) == 1024 * 1024
    assert len(payloads["1 MiB of random bytes"]) == 1024 * 1024
    assert any(name.startswith("random bytes #") for name in payloads)
    assert any(name.startswith("sample 0 corrupted") for name in payloads)
    with pytest.raises(UnicodeDecodeError):
        payloads["non-UTF-8 payload"].decode("utf-8")
    assert dict(hostile_payloads([b"sample"], seed=3))["random bytes #0"] != payloads["random bytes #0"]
    assert dict(hostile_payloads([b"sample"]))["random bytes #0"] == payloads["random bytes #0"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payload_bytes([payload for _, payload in JSON_SAMPLES + LINE_SAMPLES]))
def test_payload_bytes_strategy_with_both_formatters(payload: bytes) -> None:
    context = FormatContext("hypothesis")
    for formatter in (JsonFormatter(default_settings()), LineProtocolFormatter(default_settings())):
        check_any_payload(formatter, "farm/x", payload, context=context)


# Formatters that break one rule each; the check must name the rule.


class Fixed(PayloadFormatter):
    """Returns the rows of ``result`` for every payload, or raises ``error``."""

    name: ClassVar[str] = "fixed"
    result: ClassVar[object] = [Row("root.sg.d", 1, ("s",), (1,))]
    error: ClassVar[BaseException | None] = None

    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def fixed(result: object = None, error: BaseException | None = None, **attributes: object) -> Fixed:
    namespace: dict[str, object] = {"error": error, **attributes}
    if result is not None:
        namespace["result"] = result
    return type("Broken", (Fixed,), namespace)(default_settings())


class CrashesOnGarbage(PayloadFormatter):
    name: ClassVar[str] = "crashes"

    def format(self, topic: str, payload: bytes, context: FormatContext) -> list[Row]:
        document = json.loads(payload)  # json.JSONDecodeError escapes on garbage
        return [Row(document["device"], 1, ("s",), (1,))]


SAMPLE = [("t", b'{"device": "root.sg.d"}')]


class Celsius(float):
    """A float subclass: not one of the exact value types rows may carry."""


class Path(str):
    """A str subclass: not the exact str rows must carry."""

    __slots__ = ()

VIOLATIONS = [
    ("crash", CrashesOnGarbage(default_settings()), "raised JSONDecodeError (not FormatError) for empty payload b''"),
    ("rejects valid", fixed(error=FormatError("no")),
     "valid sample b'{\"device\": \"root.sg.d\"}' on topic 't' was rejected: no"),
    ("no rows", fixed(result=[]), "gave no rows"),
    ("empty message", fixed(error=FormatError("")), None),
    ("tuple", fixed(result=(Row("root.sg.d", 1, ("s",), (1,)),)), "format returned tuple, not a list of Row"),
    ("not a row", fixed(result=[("root.sg.d", 1)]), "row 0 is a tuple, not an iotdb_core.Row"),
    ("bad device", fixed(result=[Row("root.a-b", 1, ("s",), (1,))]), "invalid device path 'root.a-b'"),
    ("short device", fixed(result=[Row("root", 1, ("s",), (1,))]), "invalid device path 'root'"),
    ("bad measurement", fixed(result=[Row("root.sg.d", 1, ("a.b",), (1,))]), "invalid measurement node 'a.b'"),
    ("duplicate", fixed(result=[Row("root.sg.d", 1, ("s", "s"), (1, 2))]), "measurement 's' appears twice"),
    ("float time", fixed(result=[Row("root.sg.d", 1.5, ("s",), (1,))]), "timestamp 1.5 is a float, not int"),
    ("bool time", fixed(result=[Row("root.sg.d", True, ("s",), (1,))]), "timestamp True is a bool, not int"),
    ("huge time", fixed(result=[Row("root.sg.d", 2**63, ("s",), (1,))]), "outside the INT64 range"),
    ("lengths", fixed(result=[Row("root.sg.d", 1, ("s", "t"), (1,))]), "2 measurements but 1 values"),
    ("bytes value", fixed(result=[Row("root.sg.d", 1, ("s",), (b"x",))]), "value of 's' is a bytes"),
    ("float subclass", fixed(result=[Row("root.sg.d", 1, ("s",), (Celsius(1.5),))]), "value of 's' is a Celsius"),
    ("str subclass device", fixed(result=[Row(Path("root.sg.d"), 1, ("s",), (1,))]),
     "device is 'root.sg.d', not a str"),
    ("surrogate", fixed(result=[Row("root.sg.d", 1, ("s",), ("\ud800",))]), "cannot be stored as UTF-8"),
    ("types length", fixed(result=[Row("root.sg.d", 1, ("s",), (1,), ())]), "types must be None or a tuple of 1"),
    ("type name", fixed(result=[Row("root.sg.d", 1, ("s",), (1,), ("INT64",))]), "not a TSDataType or None"),
    ("type mismatch", fixed(result=[Row("root.sg.d", 1, ("s",), ("x",), (TSDataType.INT64,))]),
     "value 'x' of 's' does not fit its declared type INT64"),
    ("no name", fixed(name=""), "name must be a non-empty str"),
    ("bad option", fixed(options=("key",)), "options holds 'key', not an iotdb_core.Option"),
    ("twice", fixed(options=(Option("k", "", text, "x", "y"), Option("k", "", text, "x", "y"))),
     "declares 'k' twice"),
]


@pytest.mark.parametrize(("formatter", "message"), [case[1:] for case in VIOLATIONS], ids=[c[0] for c in VIOLATIONS])
def test_contract_violations_are_reported(formatter: PayloadFormatter, message: str | None) -> None:
    with pytest.raises(ContractViolation) as caught:
        check_formatter_contract(formatter, SAMPLE)
    assert isinstance(caught.value, AssertionError)
    if message is not None:
        assert message in str(caught.value)


def test_empty_format_error_is_reported() -> None:
    formatter = fixed(error=FormatError(""))
    with pytest.raises(ContractViolation, match="FormatError without a message"):
        check_any_payload(formatter, "t", b"x")


def test_check_needs_a_sample() -> None:
    with pytest.raises(ContractViolation, match="at least one valid"):
        check_formatter_contract(JsonFormatter(default_settings()), [])


def test_check_rows_accepts_well_formed_rows() -> None:
    check_rows([
        Row("root.sg.`d 1`", -(2**63), ("a", "`b.c`", "d"), (True, None, 1.5), (TSDataType.BOOLEAN, None, None)),
        Row("root.sg.d", 2**63 - 1, ("s",), (3,), (TSDataType.DOUBLE,)),
    ])
