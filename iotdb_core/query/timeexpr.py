"""Time literals: epoch integers, ISO-8601 date-times, ``now()``, durations, and ``+``/``-`` between them.

A statement keeps its time literals unresolved (:class:`TimeExpr`); the executor resolves them with a
:class:`TimeContext` — the timestamp precision (``ms``, ``us``, ``ns``, from ``timestamp_precision``), the
time zone for date-times written without one, and the statement's ``now()`` — into integers in that
precision. Date-time forms, as IoTDB accepts them::

    2020-01-01            2020/01/01            2020.01.01              (midnight)
    2020-01-01T08:00      2020-01-01 08:00:00   2020-01-01T08:00:00.123456789
    2020-01-01T08:00:00Z  2020-01-01T08:00:00+08:00   2020-01-01T08:00:00-0500

Durations are sequences of ``<integer><unit>`` with units ``y`` (365 days), ``mo`` (30 days), ``w``, ``d``,
``h``, ``m``, ``s``, ``ms``, ``us``, ``ns`` — ``1d2h30m``. A duration finer than the precision (``1us`` at
``ms``) is rejected rather than rounded to zero.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from dataclasses import dataclass, field

from iotdb_core.datatypes import INT64_MAX, INT64_MIN
from iotdb_core.query.errors import SemanticError

NANOS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
    "mo": 30 * 86400 * 1_000_000_000,
    "y": 365 * 86400 * 1_000_000_000,
}
#: Nanoseconds in one unit of each timestamp precision.
PRECISION_NANOS: dict[str, int] = {"ms": 1_000_000, "us": 1_000, "ns": 1}

_DURATION_PART = re.compile(r"([0-9]+)(mo|ms|us|ns|y|w|d|h|m|s)", re.IGNORECASE)
_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})(?P<sep>[-/.])(?P<month>[0-9]{1,2})(?P=sep)(?P<day>[0-9]{1,2})"
    r"(?:[T ](?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@dataclass(frozen=True, slots=True)
class Duration:
    """A written duration such as ``1d2h``; ``nanos`` is its length in nanoseconds."""

    text: str
    nanos: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``1d2h30m``-style text. Raises ValueError."""
        position = 0
        total = 0
        for match in _DURATION_PART.finditer(text):
            if match.start() != position:
                break
            total += int(match.group(1)) * NANOS[match.group(2).lower()]
            position = match.end()
        if position != len(text) or not text:
            raise ValueError(f"{text!r} is not a duration (write e.g. 1d2h30m; units y mo w d h m s ms us ns)")
        return cls(text, total)

    def units(self, precision: str) -> int:
        """The duration in units of ``precision``; SemanticError when it is not a whole number of them."""
        per_unit = PRECISION_NANOS[precision]
        if self.nanos % per_unit:
            raise SemanticError(
                f"duration {self.text} is not a whole number of {precision} (timestamp_precision={precision})"
            )
        return self.nanos // per_unit

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class DateTimeText:
    """A validated date-time literal: its text and its parts (time zone offset in minutes, or None)."""

    text: str
    moment: _dt.datetime  # naive; wall time as written, to microseconds
    nanos_extra: int  # nanoseconds below the microsecond
    offset_minutes: int | None

    @classmethod
    def parse(cls, text: str) -> DateTimeText:
        """Validate a date-time literal. Raises ValueError naming what is wrong."""
        match = _DATETIME.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a date-time (write e.g. 2020-01-01T08:00:00+08:00)")
        fraction = (match.group("fraction") or "").ljust(9, "0")
        try:
            moment = _dt.datetime(
                int(match.group("year")),
                int(match.group("month")),
                int(match.group("day")),
                int(match.group("hour") or 0),
                int(match.group("minute") or 0),
                int(match.group("second") or 0),
                int(fraction[:6]),
            )
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date-time: {exc}") from None
        zone = match.group("zone")
        offset: int | None = None
        if zone == "Z":
            offset = 0
        elif zone:
            digits = zone[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 18 or minutes > 59:
                raise ValueError(f"{text!r} has an invalid time zone offset {zone}")
            offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
        return cls(text, moment, int(fraction[6:]), offset)

    def epoch_nanos(self, zone: _dt.tzinfo | None) -> int:
        """Nanoseconds since the epoch; a date-time without offset is read in ``zone`` (None: local time)."""
        if self.offset_minutes is not None:
            aware = self.moment.replace(tzinfo=_dt.timezone(_dt.timedelta(minutes=self.offset_minutes)))
        elif zone is not None:
            aware = self.moment.replace(tzinfo=zone)
        else:
            aware = self.moment.astimezone()  # the process's local zone, as IoTDB's CLI uses the client's
        delta = aware - _EPOCH
        return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000 + self.nanos_extra

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Now:
    """``now()``: the statement's start time."""

    def __str__(self) -> str:
        return "now()"


@dataclass(frozen=True, slots=True)
class TimeExpr:
    """A time literal plus or minus durations: ``now() - 1d``, ``2020-01-01 + 8h``, ``1000``."""

    base: int | DateTimeText | Now
    offsets: tuple[tuple[int, Duration], ...] = field(default=())  # (+1 or -1, duration)

    def __str__(self) -> str:
        text = str(self.base)
        for sign, duration in self.offsets:
            text += f" {'+' if sign > 0 else '-'} {duration}"
        return text


@dataclass(frozen=True, slots=True)
class TimeContext:
    """What resolving a time literal needs: precision, zone for zone-less date-times, and ``now()``."""

    precision: str = "ms"
    zone: _dt.tzinfo | None = None
    now_nanos: int = field(default_factory=time.time_ns)

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_NANOS:
            raise ValueError(f"timestamp precision must be one of ms, us, ns; got {self.precision!r}")

    def resolve(self, expr: TimeExpr | int) -> int:
        """The timestamp ``expr`` stands for, in this context's precision. SemanticError when out of range."""
        if isinstance(expr, int):
            value = expr
        else:
            per_unit = PRECISION_NANOS[self.precision]
            base = expr.base
            if isinstance(base, int):
                value = base
            elif isinstance(base, Now):
                value = self.now_nanos // per_unit
            else:
                try:
                    value = base.epoch_nanos(self.zone) // per_unit
                except (OverflowError, OSError, ValueError):
                    raise SemanticError(f"time {expr} cannot be placed in the time zone") from None
            for sign, duration in expr.offsets:
                value += sign * duration.units(self.precision)
        if not INT64_MIN <= value <= INT64_MAX:
            raise SemanticError(f"time {expr} is out of the 64-bit timestamp range")
        return value

    def format(self, timestamp: int) -> str:
        """``timestamp`` as ISO-8601 in this context's zone (IoTDB's display form), e.g. for messages."""
        nanos = timestamp * PRECISION_NANOS[self.precision]
        seconds, rest = divmod(nanos, 1_000_000_000)
        try:
            moment = _dt.datetime.fromtimestamp(seconds, tz=self.zone or _dt.UTC)
            if self.zone is None:
                moment = moment.astimezone()
        except (OverflowError, OSError, ValueError):
            return str(timestamp)
        digits = {"ms": 3, "us": 6, "ns": 9}[self.precision]
        offset = moment.strftime("%z") or "+0000"
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{str(rest).rjust(9, '0')[:digits]}{offset[:3]}:{offset[3:]}"
