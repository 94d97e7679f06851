"""Time to live: rules that make old points invisible and let the engine reclaim them.

A rule is a path pattern and a TTL in milliseconds. As in IoTDB, a rule on a path covers the path and
everything below it: ``root.sg`` is stored as ``root.sg.**``, and covers every series under ``root.sg``
(``root.**`` covers all). Where several rules cover a series the most specific wins: the one with the
most levels before its trailing ``**``, then the most non-wildcard levels. Points with a timestamp
below ``now - ttl`` (``now`` and the TTL in the unit of ``timestamp_precision``) are invisible to reads
at once; compaction drops them and the engine removes files all of whose points have expired.

The rules are part of the manifest, so they change atomically and survive restarts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from iotdb_core.patterns import Pattern, compile_pattern, covers, pattern_text, series_nodes

SeriesKey = tuple[str, str]
INT64_MIN = -(2**63)
_UNITS_PER_MS = {"ms": 1, "us": 1_000, "ns": 1_000_000}


def normalize_rule_path(path: str) -> str:
    """The stored form of a TTL path: canonical nodes ending in ``**`` (``root.sg`` -> ``root.sg.**``)."""
    nodes = compile_pattern(path)
    if nodes[-1] != "**":
        nodes = (*nodes, "**")
    return pattern_text(nodes)


def check_ttl(ttl_ms: object) -> int:
    """A valid TTL (a positive integer of milliseconds). Raises ValueError or TypeError."""
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int):
        raise TypeError(f"TTL must be an integer number of milliseconds, got {type(ttl_ms).__name__}")
    if ttl_ms <= 0:
        raise ValueError(f"TTL must be positive, got {ttl_ms}")
    return ttl_ms


def now_in(precision: str) -> int:
    """The current time in the unit of ``timestamp_precision`` (ms, us or ns)."""
    nanos = time.time_ns()
    return nanos // (1_000_000 // _UNITS_PER_MS[precision])


class TtlRules:
    """An immutable set of TTL rules; :meth:`ttl_of` is memoised per series."""

    __slots__ = ("_base", "_memo", "_precision", "rules")

    def __init__(self, rules: Mapping[str, int], precision: str = "ms") -> None:
        self.rules: dict[str, int] = dict(sorted(rules.items()))
        self._precision = precision
        self._base: list[tuple[tuple[int, int, str], Pattern, int]] = []
        for text, ttl in self.rules.items():
            base = compile_pattern(text)[:-1]
            rank = (len(base), sum(node not in ("*", "**") for node in base), text)
            self._base.append((rank, base, ttl))
        self._base.sort(reverse=True)
        self._memo: dict[SeriesKey, int | None] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TtlRules) and self.rules == other.rules

    def __hash__(self) -> int:
        return hash(tuple(self.rules.items()))

    def __repr__(self) -> str:
        return f"TtlRules({self.rules})"

    def with_rule(self, path: str, ttl_ms: int | None) -> TtlRules:
        """The rules with ``path``'s TTL set (``None``: removed)."""
        rules = dict(self.rules)
        key = normalize_rule_path(path)
        if ttl_ms is None:
            rules.pop(key, None)
        else:
            rules[key] = check_ttl(ttl_ms)
        return TtlRules(rules, self._precision)

    def ttl_of(self, key: SeriesKey) -> int | None:
        """The TTL in milliseconds that applies to a series, or None."""
        try:
            return self._memo[key]
        except KeyError:
            pass
        nodes = series_nodes(key[0], key[1])
        found = next((ttl for _, base, ttl in self._base if covers(base, nodes)), None)
        self._memo[key] = found
        return found

    def cutoff(self, key: SeriesKey, now: int) -> int:
        """The smallest visible timestamp of a series at ``now`` (INT64_MIN when no rule covers it)."""
        if not self._base:
            return INT64_MIN
        ttl = self.ttl_of(key)
        if ttl is None:
            return INT64_MIN
        return max(INT64_MIN, now - ttl * _UNITS_PER_MS[self._precision])

    def now(self) -> int:
        return now_in(self._precision)
