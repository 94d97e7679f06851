"""The payload formatter contract, as a check any formatter — built-in or third-party — can run in its tests.

:func:`check_formatter_contract` feeds a formatter the caller's valid samples and a fixed set of
hostile payloads (empty, blank, garbage, 1 MiB of junk, non-UTF-8, random bytes, deep nesting,
truncated and corrupted copies of the samples) and raises :class:`ContractViolation` (an
``AssertionError``) naming the payload and the broken rule when:

* ``format`` raises anything but :class:`~iotdb_core.errors.FormatError`;
* it returns something other than a list of :class:`~iotdb_core.formatter.Row`;
* a row has an invalid device path or measurement node, a duplicate measurement, lengths that
  differ between measurements, values and types, a timestamp that is not an INT64 ``int``, a value
  that is not ``bool``/``int``/``float``/``str``/``None``, text that cannot be stored as UTF-8, or a
  value that does not fit its declared type (``iotdb_core.datatypes.coerce`` rejects it);
* a valid sample is rejected or gives no rows.

For property-based tests, :func:`payload_bytes` is a Hypothesis strategy of hostile payloads and
:func:`check_any_payload` checks one payload. Hypothesis is a test dependency, not a runtime one:
it is imported only when :func:`payload_bytes` is called.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from iotdb_core.config import Option
from iotdb_core.datatypes import INT64_MAX, INT64_MIN, TSDataType, ValueTypeError, coerce
from iotdb_core.errors import FormatError
from iotdb_core.formatter import FormatContext, PayloadFormatter, Row
from iotdb_core.paths import PathError, validate_device, validate_measurement

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "ContractViolation",
    "check_any_payload",
    "check_formatter_contract",
    "check_rows",
    "hostile_payloads",
    "payload_bytes",
]

MIB = 1024 * 1024
_VALUE_TYPES = frozenset({bool, int, float, str})
_CONTEXT = FormatContext(client_id="formatter-contract-check", username="contract", qos=1, protocol_level=4)
_SHOWN_PAYLOAD = 80


class ContractViolation(AssertionError):
    """A formatter broke the payload formatter contract; the message says which rule and for which payload."""


def check_formatter_contract(
    formatter: PayloadFormatter,
    valid_samples: Sequence[tuple[str, bytes]],
    *,
    context: FormatContext = _CONTEXT,
    seed: int = 0,
) -> None:
    """Check ``formatter`` against the contract with the caller's valid ``(topic, payload)`` samples.

    Every valid sample must give at least one well-formed row; every hostile payload (see
    :func:`hostile_payloads`), sent on each sample's topic, must give well-formed rows or raise
    ``FormatError``. ``seed`` fixes the random payloads, so a failure is reproducible.
    """
    _check_declaration(formatter)
    if not valid_samples:
        raise ContractViolation("check_formatter_contract needs at least one valid (topic, payload) sample")
    for topic, payload in valid_samples:
        try:
            rows = formatter.format(topic, payload, context)
        except FormatError as exc:
            raise ContractViolation(
                f"valid sample {_show(payload)} on topic {topic!r} was rejected: {exc}"
            ) from exc
        except Exception as exc:
            raise _unexpected(formatter, topic, payload, exc) from exc
        check_rows(rows, where=f"valid sample {_show(payload)} on topic {topic!r}")
        if not rows:
            raise ContractViolation(f"valid sample {_show(payload)} on topic {topic!r} gave no rows")
    topics = sorted({topic for topic, _ in valid_samples})
    payloads = [payload for _, payload in valid_samples]
    for name, payload in hostile_payloads(payloads, seed=seed):
        for topic in topics:
            check_any_payload(formatter, topic, payload, context=context, label=name)


def check_any_payload(
    formatter: PayloadFormatter,
    topic: str,
    payload: bytes,
    *,
    context: FormatContext = _CONTEXT,
    label: str = "payload",
) -> list[Row]:
    """Format one arbitrary payload: return its rows (``[]`` if rejected) after checking the contract.

    Meant for property-based tests: a ``FormatError`` is an allowed answer to any payload, any
    other exception or malformed row raises :class:`ContractViolation`.
    """
    try:
        rows = formatter.format(topic, payload, context)
    except FormatError as exc:
        if not str(exc):
            raise ContractViolation(
                f"{label} {_show(payload)}: FormatError without a message (it must say what is wrong and where)"
            ) from exc
        return []
    except Exception as exc:
        raise _unexpected(formatter, topic, payload, exc, label) from exc
    check_rows(rows, where=f"{label} {_show(payload)} on topic {topic!r}")
    return rows


def check_rows(rows: object, *, where: str = "rows") -> None:
    """Check that ``rows`` is a list of well-formed :class:`Row` objects (see the module documentation)."""
    if not isinstance(rows, list):
        raise ContractViolation(f"{where}: format returned {type(rows).__name__}, not a list of Row")
    for index, row in enumerate(rows):
        _check_row(row, f"{where}: row {index}")


def _check_row(row: object, where: str) -> None:
    if not isinstance(row, Row):
        raise ContractViolation(f"{where} is a {type(row).__name__}, not an iotdb_core.Row")
    _check_text(row.device, f"{where}: device")
    try:
        validate_device(row.device)
    except PathError as exc:
        raise ContractViolation(f"{where}: invalid device path {row.device!r}: {exc}") from None
    if type(row.timestamp) is not int:
        raise ContractViolation(f"{where}: timestamp {row.timestamp!r} is a {type(row.timestamp).__name__}, not int")
    if not INT64_MIN <= row.timestamp <= INT64_MAX:
        raise ContractViolation(f"{where}: timestamp {row.timestamp} is outside the INT64 range")
    if not isinstance(row.measurements, tuple) or not isinstance(row.values, tuple):
        raise ContractViolation(f"{where}: measurements and values must be tuples")
    if len(row.measurements) != len(row.values):
        raise ContractViolation(
            f"{where}: {len(row.measurements)} measurements but {len(row.values)} values"
        )
    _check_measurements(row.measurements, where)
    _check_values(row.values, row.measurements, where)
    if row.types is not None:
        _check_types(row, where)


def _check_measurements(measurements: tuple[object, ...], where: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(measurements):
        if type(name) is not str:
            raise ContractViolation(f"{where}: measurement {index} is {name!r}, not a str")
        _check_text(name, f"{where}: measurement {index}")
        try:
            validate_measurement(name)
        except PathError as exc:
            raise ContractViolation(f"{where}: invalid measurement node {name!r}: {exc}") from None
        if name in seen:
            raise ContractViolation(f"{where}: measurement {name!r} appears twice")
        seen.add(name)


def _check_values(values: tuple[object, ...], measurements: tuple[object, ...], where: str) -> None:
    for index, value in enumerate(values):
        if value is not None and type(value) not in _VALUE_TYPES:
            raise ContractViolation(
                f"{where}: value of {measurements[index]!r} is a {type(value).__name__} ({value!r}); "
                f"allowed are exactly bool, int, float, str and None (no subclasses such as numpy scalars)"
            )
        if type(value) is str:
            _check_text(value, f"{where}: value of {measurements[index]!r}")


def _check_types(row: Row, where: str) -> None:
    types = row.types
    if not isinstance(types, tuple) or len(types) != len(row.measurements):
        count = len(types) if isinstance(types, tuple) else type(types).__name__
        raise ContractViolation(f"{where}: types must be None or a tuple of {len(row.measurements)}, got {count}")
    for index, (declared, value) in enumerate(zip(types, row.values, strict=True)):
        if declared is None:
            continue
        if not isinstance(declared, TSDataType):
            raise ContractViolation(f"{where}: type {index} is {declared!r}, not a TSDataType or None")
        if value is None:
            continue
        try:
            coerce(value, declared)
        except ValueTypeError as exc:
            raise ContractViolation(
                f"{where}: value {value!r} of {row.measurements[index]!r} does not fit its declared type "
                f"{declared.value}: {exc}"
            ) from None


def _check_text(text: str, where: str) -> None:
    if type(text) is not str:
        raise ContractViolation(f"{where} is {text!r}, not a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractViolation(f"{where} {text!r} holds a lone surrogate and cannot be stored as UTF-8") from None


def _check_declaration(formatter: PayloadFormatter) -> None:
    cls = type(formatter)
    if not isinstance(formatter, PayloadFormatter):
        raise ContractViolation(f"{cls.__name__} is not a subclass of iotdb_core.PayloadFormatter")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ContractViolation(f"{cls.__name__}.name must be a non-empty str (the entry-point name)")
    keys: set[str] = set()
    for option in cls.options:
        if not isinstance(option, Option):
            raise ContractViolation(f"{cls.__name__}.options holds {option!r}, not an iotdb_core.Option")
        if option.key in keys:
            raise ContractViolation(f"{cls.__name__}.options declares {option.key!r} twice")
        keys.add(option.key)


def _unexpected(
    formatter: PayloadFormatter, topic: str, payload: bytes, exc: BaseException, label: str = "payload"
) -> ContractViolation:
    where = "".join(traceback.format_exception(exc)[-3:]).strip()
    return ContractViolation(
        f"{type(formatter).__name__}.format raised {type(exc).__name__} (not FormatError) for {label} "
        f"{_show(payload)} on topic {topic!r}: {exc}\n{where}"
    )


def _show(payload: bytes) -> str:
    if len(payload) <= _SHOWN_PAYLOAD:
        return repr(payload)
    return f"{payload[:_SHOWN_PAYLOAD]!r}... ({len(payload)} bytes)"


def hostile_payloads(samples: Sequence[bytes] = (), *, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """Named payloads a formatter must survive: fixed junk, random bytes, and damaged copies of ``samples``."""
    rng = random.Random(seed)
    yield "empty payload", b""
    yield "blank payload", b" \t\r\n \n"
    yield "NUL bytes", b"\x00" * 64
    yield "non-UTF-8 payload", b"\xff\xfe\xfd\xc0\xaf garbage \x80"
    yield "lone surrogate in UTF-8", b'"\xed\xa0\x80"'
    yield "escaped lone surrogate", b'{"device": "\\ud800", "values": ["\\udfff"]}'
    yield "garbage text", b"}{][,:= \\\" \\ ,,== # ` `` root.. \x01"
    yield "deep nesting", b"[" * 100_000
    yield "deep objects", b'{"a":' * 50_000
    yield "1 MiB of junk text", _junk_text(rng, MIB)
    yield "1 MiB of random bytes", rng.randbytes(MIB)
    for index in range(32):
        yield f"random bytes #{index}", rng.randbytes(rng.randint(1, 256))
    for number, sample in enumerate(samples):
        yield from _damaged(rng, sample, number)


def _damaged(rng: random.Random, sample: bytes, number: int) -> Iterator[tuple[str, bytes]]:
    label = f"sample {number}"
    for cut in sorted({len(sample) // 2, len(sample) - 1, 1}):
        if 0 < cut < len(sample):
            yield f"{label} cut to {cut} bytes", sample[:cut]
    yield f"{label} repeated to 1 MiB", _repeat(sample, MIB)
    yield f"{label} with a NUL inside", sample[: len(sample) // 2] + b"\x00" + sample[len(sample) // 2 :]
    yield f"{label} with invalid UTF-8 inside", sample[: len(sample) // 3] + b"\xff" + sample[len(sample) // 3 :]
    for index in range(16):
        damaged = bytearray(sample)
        for _ in range(rng.randint(1, 4)):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.choice(b'"\\,= {}[]:0-.e\n\x00\xff`#tfi')
        yield f"{label} corrupted #{index}", bytes(damaged)


def _repeat(sample: bytes, size: int) -> bytes:
    unit = sample + b"\n"
    return unit * max(1, size // max(1, len(unit)))


def _junk_text(rng: random.Random, size: int) -> bytes:
    alphabet = b'abcXYZ019 ,=."\\{}[]:-#`\n\t\r+eEiu'
    return bytes(rng.choice(alphabet) for _ in range(size // 64)) * 64


def payload_bytes(samples: Sequence[bytes] = ()) -> SearchStrategy[bytes]:
    """A Hypothesis strategy of payloads: raw bytes, text, JSON- and line-protocol-like junk, damaged ``samples``.

    Imports Hypothesis when called (it is a test dependency, not a runtime one).
    """
    from hypothesis import strategies as st  # noqa: PLC0415 - optional test dependency

    structured = st.text(alphabet=st.sampled_from(list(' ,="\\{}[]:.-#`\t\r\nabcXYZ0123456789eiuft')), max_size=200)
    strategies = [
        st.binary(max_size=512),
        st.text(max_size=200).map(lambda text: text.encode("utf-8")),
        structured.map(lambda text: text.encode("utf-8")),
    ]
    if samples:
        strategies.append(_mutated(list(samples)))
    return st.one_of(strategies)


def _mutated(samples: list[bytes]) -> SearchStrategy[bytes]:
    """Copies of ``samples`` with a few bytes replaced, inserted or deleted, or cut short."""
    from hypothesis import strategies as st  # noqa: PLC0415 - optional test dependency

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        sample = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(1, 4))):
            action = draw(st.sampled_from(("replace", "insert", "delete", "truncate")))
            position = draw(st.integers(0, max(0, len(sample) - 1)))
            byte = draw(st.integers(0, 255))
            if action == "replace" and sample:
                sample[position] = byte
            elif action == "insert":
                sample.insert(position, byte)
            elif action == "delete" and sample:
                del sample[position]
            elif action == "truncate":
                del sample[position:]
        return bytes(sample)

    return mutate()
