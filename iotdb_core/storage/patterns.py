"""Path patterns of the tree model: ``*`` matches one level, ``**`` one or more levels.

A pattern is kept as a tuple of canonical nodes (each as :func:`iotdb_core.paths.quote_node` writes it,
the wildcards as themselves), so ``root.sg.`d1`.*`` and ``root.sg.d1.*`` are one pattern. Matching is
memoised: deletions, TTL rules and ``list_series`` test the same few patterns against many paths.
"""

from __future__ import annotations

from functools import lru_cache

from iotdb_core.paths import PathError, quote_node, split_path, unquote_node

Pattern = tuple[str, ...]
WILDCARDS = frozenset({"*", "**"})


def _canonical_node(node: str) -> str:
    return node if node in WILDCARDS else quote_node(unquote_node(node))


@lru_cache(maxsize=4096)
def compile_pattern(text: str) -> Pattern:
    """The canonical nodes of a pattern (starting with ``root``). Raises PathError."""
    nodes = tuple(_canonical_node(node) for node in split_path(text, allow_wildcards=True))
    if nodes[0] != "root":
        raise PathError(f"path pattern {text!r} must start with root")
    return nodes


def pattern_text(pattern: Pattern) -> str:
    """The canonical written form of a compiled pattern."""
    return ".".join(pattern)


@lru_cache(maxsize=65536)
def matches(pattern: Pattern, nodes: tuple[str, ...]) -> bool:
    """True when ``pattern`` matches the whole of ``nodes`` (canonical nodes of a path)."""
    if not pattern:
        return not nodes
    head = pattern[0]
    if head == "**":
        rest = pattern[1:]
        return any(matches(rest, nodes[skip:]) for skip in range(1, len(nodes) + 1))
    if not nodes or (head != "*" and head != nodes[0]):
        return False
    return matches(pattern[1:], nodes[1:])


def covers(pattern: Pattern, nodes: tuple[str, ...]) -> bool:
    """True when ``pattern`` matches ``nodes`` or one of its prefixes (a rule on a path covers its subtree)."""
    return matches(pattern, nodes) or matches((*pattern, "**"), nodes)


@lru_cache(maxsize=65536)
def series_nodes(device: str, measurement: str) -> tuple[str, ...]:
    """The canonical nodes of a series given by its canonical device and measurement."""
    return (*split_path(device), measurement)
