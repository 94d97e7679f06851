"""Series paths in IoTDB's tree model: ``root.<database>.<device levels...>.<measurement>``.

A node name is either plain — letters, digits, ``_`` and CJK characters, but not digits only — or
backquoted, in which case it may hold any character except U+0000 and a backquote is written twice.
Paths are kept in their written (canonical) form: a node that needs quoting stays quoted.
"""

from __future__ import annotations

import re
from functools import lru_cache

_PLAIN_NODE = re.compile(r"[A-Za-z0-9_\u2E80-\u9FFF]+")
_DIGITS = re.compile(r"[0-9]+")
_WILDCARDS = frozenset({"*", "**"})


class PathError(ValueError):
    """A path that IoTDB would reject (IoTDB status 509, illegal path)."""


def quote_node(name: str) -> str:
    """Return ``name`` as it must be written inside a path (backquoted when not plain)."""
    if not name:
        raise PathError("a node name cannot be empty")
    if "\x00" in name:
        raise PathError(f"node name {name!r} contains U+0000")
    if _PLAIN_NODE.fullmatch(name) and not _DIGITS.fullmatch(name):
        return name
    return "`" + name.replace("`", "``") + "`"


def unquote_node(node: str) -> str:
    """Return the name a written node stands for (``a`` for ``a``, ``a.b`` for ```a.b```)."""
    if len(node) >= 2 and node[0] == "`" and node[-1] == "`":
        return node[1:-1].replace("``", "`")
    return node


def canonical_node(node: str) -> str:
    """The one stored form of a written node: ```d1``` and ``d1`` are both ``d1``; wildcards stay as they are."""
    return node if node in _WILDCARDS else quote_node(unquote_node(node))


@lru_cache(maxsize=65536)
def split_path(path: str, *, allow_wildcards: bool = False) -> tuple[str, ...]:
    """Split a written path into its nodes (each kept in written form) and validate every node.

    Raises :class:`PathError` naming the path, the position and what is wrong.
    """
    if not path:
        raise PathError("path is empty")
    nodes: list[str] = []
    position = 0
    length = len(path)
    while True:
        if position < length and path[position] == "`":
            end = position + 1
            while True:
                end = path.find("`", end)
                if end < 0:
                    raise PathError(f"path {path!r}: unclosed backquote at column {position + 1}")
                if end + 1 < length and path[end + 1] == "`":
                    end += 2
                    continue
                break
            node = path[position : end + 1]
            if node == "``":
                raise PathError(f"path {path!r}: empty backquoted node at column {position + 1}")
            if "\x00" in node:
                raise PathError(f"path {path!r}: node at column {position + 1} contains U+0000")
            position = end + 1
            if position < length and path[position] != ".":
                raise PathError(f"path {path!r}: expected '.' after backquoted node at column {position + 1}")
        else:
            end = path.find(".", position)
            if end < 0:
                end = length
            node = path[position:end]
            _check_plain_node(path, node, position, allow_wildcards)
            position = end
        nodes.append(node)
        if position >= length:
            break
        position += 1
        if position >= length:
            raise PathError(f"path {path!r}: ends with '.'")
    if nodes[0] != "root":
        raise PathError(f"path {path!r}: must start with 'root'")
    return tuple(nodes)


def _check_plain_node(path: str, node: str, position: int, allow_wildcards: bool) -> None:
    if not node:
        raise PathError(f"path {path!r}: empty node at column {position + 1}")
    if node in _WILDCARDS:
        if allow_wildcards:
            return
        raise PathError(f"path {path!r}: wildcard {node!r} is not allowed here (column {position + 1})")
    if not _PLAIN_NODE.fullmatch(node):
        raise PathError(
            f"path {path!r}: node {node!r} at column {position + 1} has characters that need backquotes "
            f"(plain nodes hold letters, digits and '_')"
        )
    if _DIGITS.fullmatch(node):
        raise PathError(f"path {path!r}: node {node!r} at column {position + 1} is all digits; write `{node}`")


def join_path(*nodes: str) -> str:
    """Join written nodes into a path."""
    return ".".join(nodes)


def validate_device(device: str) -> tuple[str, ...]:
    """Validate a device path (``root`` plus at least one level) and return its nodes."""
    nodes = split_path(device)
    if len(nodes) < 2:
        raise PathError(f"device path {device!r} needs at least one level under root")
    return nodes


def validate_measurement(measurement: str) -> str:
    """Validate one written measurement node (no dots outside backquotes) and return it."""
    nodes = split_path("root." + measurement)
    if len(nodes) != 2:
        raise PathError(f"measurement {measurement!r} must be a single node")
    return measurement


def database_of(device_nodes: tuple[str, ...], database_level: int) -> str:
    """Return the database a device belongs to: ``root`` plus the first ``database_level`` levels."""
    if len(device_nodes) <= database_level:
        raise PathError(
            f"device {join_path(*device_nodes)!r} has no level below its database "
            f"(default_database_level={database_level})"
        )
    return join_path(*device_nodes[: database_level + 1])
