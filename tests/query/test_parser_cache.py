"""The SQL parser's tables are cached between processes in the user's cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PARSE = (
    "from iotdb_core.query import parse;"
    "print(repr(parse('select count(s1) from root.sg.d1 where s2 > 1 group by ([0, 100), 10ms)')))"
)


def run_parse(cache_home: Path) -> str:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run(
        [sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr == ""
    return done.stdout


def test_a_second_process_loads_the_cached_tables_and_parses_the_same(tmp_path: Path) -> None:
    first = run_parse(tmp_path)
    cache = tmp_path / "iotdb-py" / "sql-parser.lark-cache"
    assert cache.stat().st_size > 0
    assert (tmp_path / "iotdb-py").stat().st_mode & 0o077 == 0
    written = cache.stat().st_mtime_ns
    assert run_parse(tmp_path) == first
    assert cache.stat().st_mtime_ns == written  # loaded, not rebuilt


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    expected = run_parse(tmp_path / "clean")
    cache = tmp_path / "damaged" / "iotdb-py" / "sql-parser.lark-cache"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a cache\n\x80\x04garbage")
    assert run_parse(tmp_path / "damaged") == expected
    assert cache.read_bytes() != b"not a cache\n\x80\x04garbage"


def test_an_unusable_cache_directory_only_costs_the_build(tmp_path: Path) -> None:
    expected = run_parse(tmp_path / "clean")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory would go")
    assert run_parse(blocked) == expected
