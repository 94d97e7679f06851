"""The ``bounds`` storage plugin: clamp or drop numeric values outside configured bounds, per series.

Configuration
    ``bounds_rules`` holds rules separated by ``;``, each ``PATTERN:LOW:HIGH[:ACTION]``:

    * PATTERN is a series path (device and measurement) in which ``*`` matches exactly one node and
      ``**`` one or more nodes: ``root.sg.*.temperature``, ``root.**.humidity``; nodes may be
      backquoted (```root.sg.`d-1`.temperature```);
    * LOW and HIGH are inclusive bounds; an empty one means no bound on that side
      (``root.**.pressure::1100``); both empty is an error;
    * ACTION is ``clamp`` (the value becomes the bound it crossed) or ``drop`` (the value is removed,
      and a row left without values is removed); without it ``bounds_default_action`` applies.

    The first rule whose pattern matches a series is the one applied, so list specific rules first::

        bounds_rules=root.sg.*.temperature:-40:85:clamp;root.**.humidity:0:100:drop
        bounds_default_action=clamp

Values
    Only integers and floating-point numbers are checked; booleans, text and NaN pass untouched. An
    integer is clamped to the nearest integer within the bounds, so integer series keep receiving
    integers; when no integer lies within the bounds an integer is dropped.

Counters of clamped and dropped values per series are kept for one engine run (reset by
``iotdb_startup``), read with :meth:`BoundsPlugin.counts` and logged by ``iotdb_shutdown``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from iotdb_core import Option, Row, Settings, hookimpl
from iotdb_core.config import choice
from iotdb_core.formatter import Value
from iotdb_core.paths import PathError, canonical_node, quote_node, split_path, unquote_node
from iotdb_core.patterns import matches
from iotdb_plugins_example._syntax import split_unquoted

log = logging.getLogger("iotdb.plugins.bounds")

RULES_KEY = "bounds_rules"
DEFAULT_ACTION_KEY = "bounds_default_action"
CLAMP = "clamp"
DROP = "drop"
ACTIONS = (CLAMP, DROP)
_LOGGED_SERIES = 20


class BoundsRuleError(ValueError):
    """``bounds_rules`` text that cannot be used; the message names the rule and what is wrong."""


class _Outcome(enum.Enum):
    CLAMPED = "clamped"
    DROPPED = "dropped"


@dataclass(frozen=True)
class BoundsRule:
    """One rule: the series it covers, its inclusive bounds (``None``: unbounded) and its action."""

    pattern: str
    nodes: tuple[str, ...] = dataclasses.field(repr=False)
    low: float | None
    high: float | None
    action: str | None = None

    def matches(self, series: tuple[str, ...]) -> bool:
        """True when the series, given as unquoted node names, is covered by this rule's pattern."""
        return matches(self.nodes, tuple(quote_node(name) for name in series))

    def check(self, value: int | float, action: str) -> tuple[Value | None, _Outcome | None]:
        """Return the value to write (``None``: dropped) and what was done to it (``None``: nothing)."""
        low, high = self.low, self.high
        if isinstance(value, int):
            low = None if low is None else math.ceil(low)
            high = None if high is None else math.floor(high)
            if low is not None and high is not None and low > high:
                return None, _Outcome.DROPPED
        if low is not None and value < low:
            target = low
        elif high is not None and value > high:
            target = high
        else:
            return value, None
        if action == DROP:
            return None, _Outcome.DROPPED
        return (float(target) if isinstance(value, float) else target), _Outcome.CLAMPED


class BoundsRules:
    """Parsed ``bounds_rules``: rules in order, with a cached series-to-rule lookup."""

    def __init__(self, rules: Sequence[BoundsRule]) -> None:
        self.rules = tuple(rules)
        self.rule_for = functools.lru_cache(maxsize=65536)(self._find)

    def __len__(self) -> int:
        return len(self.rules)

    def _find(self, device: str, measurement: str) -> BoundsRule | None:
        """The first rule covering ``device.measurement`` (both in written form), if any."""
        try:
            nodes = (*(unquote_node(node) for node in split_path(device)), unquote_node(measurement))
        except PathError:
            return None  # not a valid path: left for the engine to reject
        return next((rule for rule in self.rules if rule.matches(nodes)), None)


def parse_rules(text: str) -> BoundsRules:
    """Parse ``bounds_rules`` text; raises :class:`BoundsRuleError` naming the rule and the problem."""
    try:
        entries = split_unquoted(text, ";")
    except ValueError as exc:
        raise BoundsRuleError(f"{RULES_KEY} {text!r}: {exc}") from None
    rules = []
    for number, entry in enumerate(entries, start=1):
        if entry.strip():
            rules.append(parse_rule(entry.strip(), number))
    return BoundsRules(rules)


@functools.lru_cache(maxsize=32)
def compile_rules(text: str) -> BoundsRules:
    """:func:`parse_rules`, cached: the rules are read from the settings on every write."""
    return parse_rules(text)


def parse_rule(entry: str, number: int = 1) -> BoundsRule:
    """Parse one ``PATTERN:LOW:HIGH[:ACTION]`` rule, the ``number``-th of its list."""
    where = f"{RULES_KEY} rule {number} {entry!r}"
    try:
        pattern, *fields = (field.strip() for field in split_unquoted(entry, ":"))
    except ValueError as exc:
        raise BoundsRuleError(f"{where}: {exc}") from None
    if len(fields) not in (2, 3):
        raise BoundsRuleError(
            f"{where}: expected PATTERN:LOW:HIGH or PATTERN:LOW:HIGH:ACTION, got {len(fields) + 1} field(s)"
        )
    try:
        written = split_path(pattern, allow_wildcards=True)
    except PathError as exc:
        raise BoundsRuleError(f"{where}: {exc}") from None
    if len(written) < 2:
        raise BoundsRuleError(f"{where}: pattern {pattern!r} matches no series; add the nodes below root")
    low = _bound(where, "lower", fields[0])
    high = _bound(where, "upper", fields[1])
    if low is None and high is None:
        raise BoundsRuleError(f"{where}: sets neither a lower nor an upper bound")
    if low is not None and high is not None and low > high:
        raise BoundsRuleError(f"{where}: lower bound {fields[0]} is above upper bound {fields[1]}")
    action = None
    if len(fields) == 3:
        action = fields[2].lower()
        if action not in ACTIONS:
            raise BoundsRuleError(f"{where}: action {fields[2]!r} is neither {CLAMP} nor {DROP}")
    return BoundsRule(pattern, tuple(canonical_node(node) for node in written), low, high, action)


def _bound(where: str, side: str, text: str) -> float | None:
    if not text:
        return None
    try:
        bound = float(text)
    except ValueError:
        raise BoundsRuleError(f"{where}: {side} bound {text!r} is not a number") from None
    if not math.isfinite(bound):
        raise BoundsRuleError(f"{where}: {side} bound {text!r} must be a finite number; leave it empty for none")
    return bound


def _rules_option(value: str) -> str:
    stripped = value.strip()
    parse_rules(stripped)
    return stripped


RULES_OPTION = Option(
    RULES_KEY, "", _rules_option, "rules PATTERN:LOW:HIGH[:clamp|drop] separated by ';'",
    "bounds plugin: numeric values outside LOW..HIGH on series matching PATTERN (* one node, ** several) "
    "are clamped or dropped; the first matching rule applies",
)
DEFAULT_ACTION_OPTION = Option(
    DEFAULT_ACTION_KEY, CLAMP, choice(*ACTIONS), "clamp or drop",
    "bounds plugin: action of a rule that names none",
)
#: Module-level objects, so that several registered instances declare the very same options.
OPTIONS = (RULES_OPTION, DEFAULT_ACTION_OPTION)


@dataclass(frozen=True)
class BoundsCount:
    """How many values of one series (or of all) were clamped and dropped."""

    clamped: int = 0
    dropped: int = 0


class BoundsPlugin:
    """Clamps or drops numeric values outside their series' bounds in ``iotdb_before_write``.

    ``rules`` and ``default_action`` given here take precedence over ``bounds_rules`` and
    ``bounds_default_action`` in the settings; the installed plugin (:data:`plugin`) has neither and
    follows the settings. Safe to call from several write threads at once.
    """

    def __init__(self, rules: str | None = None, default_action: str | None = None) -> None:
        self._rules = None if rules is None else parse_rules(rules)
        if default_action is not None and default_action.lower() not in ACTIONS:
            raise BoundsRuleError(f"default action {default_action!r} is neither {CLAMP} nor {DROP}")
        self._default_action = None if default_action is None else default_action.lower()
        self._lock = threading.Lock()
        self._clamped: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    # Counters

    def counts(self) -> dict[str, BoundsCount]:
        """Clamped and dropped values per series (``device.measurement``) since the last reset."""
        with self._lock:
            series = set(self._clamped) | set(self._dropped)
            return {name: BoundsCount(self._clamped[name], self._dropped[name]) for name in sorted(series)}

    def totals(self) -> BoundsCount:
        """Clamped and dropped values over all series since the last reset."""
        with self._lock:
            return BoundsCount(self._clamped.total(), self._dropped.total())

    def reset_counts(self) -> None:
        """Forget every count."""
        with self._lock:
            self._clamped.clear()
            self._dropped.clear()

    # Hooks

    @hookimpl
    def iotdb_config_options(self) -> Sequence[Option]:
        return OPTIONS

    @hookimpl
    def iotdb_startup(self, settings: Settings) -> None:
        self.reset_counts()
        log.info("bounds: %d rule(s) in force", len(self._rules_in(settings)))

    @hookimpl
    def iotdb_before_write(self, rows: list[Row], settings: Settings) -> None:
        rules = self._rules_in(settings)
        if not rules:
            return
        default_action = self._default_action or settings.values.get(DEFAULT_ACTION_KEY, CLAMP)
        clamped: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        kept: list[Row] = []
        for row in rows:
            checked = _check_row(row, rules, default_action, clamped, dropped)
            if checked is not None:
                kept.append(checked)
        if not (clamped or dropped):
            return
        rows[:] = kept
        with self._lock:
            self._clamped.update(clamped)
            self._dropped.update(dropped)

    @hookimpl
    def iotdb_shutdown(self) -> None:
        counts = self.counts()
        if not counts:
            log.info("bounds: no value was outside its bounds")
            return
        totals = self.totals()
        busiest = sorted(counts.items(), key=lambda item: -(item[1].clamped + item[1].dropped))
        shown = "; ".join(f"{name}: {count.clamped} clamped, {count.dropped} dropped"
                          for name, count in busiest[:_LOGGED_SERIES])
        more = f"; and {len(counts) - _LOGGED_SERIES} more series" if len(counts) > _LOGGED_SERIES else ""
        log.info("bounds: %d value(s) clamped, %d dropped in %d series: %s%s",
                 totals.clamped, totals.dropped, len(counts), shown, more)

    def _rules_in(self, settings: Settings) -> BoundsRules:
        if self._rules is not None:
            return self._rules
        return compile_rules(settings.values.get(RULES_KEY, ""))


def _check_row(
    row: Row, rules: BoundsRules, default_action: str, clamped: Counter[str], dropped: Counter[str]
) -> Row | None:
    """Return ``row`` with out-of-bounds values clamped or removed, or ``None`` when none is left."""
    values: list[Value | None] | None = None
    for index, (measurement, value) in enumerate(zip(row.measurements, row.values, strict=False)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        rule = rules.rule_for(row.device, measurement)
        if rule is None:
            continue
        new_value, outcome = rule.check(value, rule.action or default_action)
        if outcome is None:
            continue
        (clamped if outcome is _Outcome.CLAMPED else dropped)[f"{row.device}.{measurement}"] += 1
        if values is None:
            values = list(row.values)
        values[index] = new_value
    if values is None:
        return row
    if all(value is None for value in values):
        return None
    return row._replace(values=tuple(values))


#: The instance the ``iotdb`` entry point registers; it follows ``bounds_rules`` in the settings.
plugin = BoundsPlugin()
