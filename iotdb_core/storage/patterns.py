"""Path patterns: moved to :mod:`iotdb_core.patterns`; these names stay importable from here."""

from iotdb_core.patterns import WILDCARDS, Pattern, compile_pattern, covers, matches, pattern_text, series_nodes

__all__ = ["WILDCARDS", "Pattern", "compile_pattern", "covers", "matches", "pattern_text", "series_nodes"]
