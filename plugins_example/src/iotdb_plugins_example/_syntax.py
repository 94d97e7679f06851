"""Splitting configuration text on a separator while leaving backquoted path nodes intact."""

from __future__ import annotations


def split_unquoted(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` wherever it stands outside backquotes.

    A doubled backquote inside a quoted node toggles the state twice, so it needs no special case.
    Raises ``ValueError`` naming the column of a backquote that is never closed.
    """
    parts: list[str] = []
    start = 0
    quoted = False
    opened = 0
    for index, char in enumerate(text):
        if char == "`":
            quoted = not quoted
            opened = index
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    if quoted:
        raise ValueError(f"backquote at column {opened + 1} is never closed")
    parts.append(text[start:])
    return parts
