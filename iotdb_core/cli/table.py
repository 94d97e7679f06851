"""Aligned plain-text tables for command output."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as left-aligned columns under a header line."""
    cells = [[str(cell) for cell in line] for line in [headers, *rows]]
    widths = [max(len(line[index]) for line in cells) for index in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)
