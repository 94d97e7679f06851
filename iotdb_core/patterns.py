"""Path patterns of the tree model: ``*`` matches one level, ``**`` one or more levels.

The one home of pattern matching: the storage engine (deletions, TTL rules, ``list_series``), SQL
(``SHOW DEVICES root.sg.*``) and plugins (the ``bounds`` example) all match here. A pattern is kept as
a tuple of canonical nodes (each as :func:`iotdb_core.paths.canonical_node` writes it, the wildcards as
themselves), so ``root.sg.`d1`.*`` and ``root.sg.d1.*`` are one pattern. Matching runs in
``O(len(pattern) * len(nodes))`` whatever the number of ``**`` and is memoised: the same few patterns
are tested against many paths.
"""

from __future__ import annotations

from functools import lru_cache

from iotdb_core.paths import PathError, canonical_node, split_path

__all__ = ["WILDCARDS", "Pattern", "compile_pattern", "covers", "matches", "pattern_text", "series_nodes"]

Pattern = tuple[str, ...]
WILDCARDS = frozenset({"*", "**"})


@lru_cache(maxsize=4096)
def compile_pattern(text: str) -> Pattern:
    """The canonical nodes of a pattern (starting with ``root``). Raises PathError."""
    nodes = tuple(canonical_node(node) for node in split_path(text, allow_wildcards=True))
    if nodes[0] != "root":
        raise PathError(f"path pattern {text!r} must start with root")
    return nodes


def pattern_text(pattern: Pattern) -> str:
    """The canonical written form of a compiled pattern."""
    return ".".join(pattern)


@lru_cache(maxsize=65536)
def matches(pattern: Pattern, nodes: tuple[str, ...]) -> bool:
    """True when ``pattern`` matches the whole of ``nodes`` (canonical nodes of a path)."""
    width = len(nodes)
    reachable = [True] + [False] * width  # reachable[j]: the pattern so far consumes exactly nodes[:j]
    for node in pattern:
        following = [False] * (width + 1)
        if node == "**":  # one or more nodes: following[j] when some i < j is reachable
            seen = False
            for j in range(width + 1):
                if seen:
                    following[j] = True
                if reachable[j]:
                    seen = True
        else:
            for j in range(width):
                if reachable[j] and (node == "*" or node == nodes[j]):
                    following[j + 1] = True
        reachable = following
        if not any(reachable):
            return False
    return reachable[width]


def covers(pattern: Pattern, nodes: tuple[str, ...]) -> bool:
    """True when ``pattern`` matches ``nodes`` or one of its prefixes (a rule on a path covers its subtree)."""
    return matches(pattern, nodes) or matches((*pattern, "**"), nodes)


@lru_cache(maxsize=65536)
def series_nodes(device: str, measurement: str) -> tuple[str, ...]:
    """The canonical nodes of a series given by its canonical device and measurement."""
    return (*split_path(device), measurement)
