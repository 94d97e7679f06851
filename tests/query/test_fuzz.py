"""Whatever text a user sends, ``execute`` answers with a result or a QueryError — never another exception.

Three sources of input: arbitrary text, soups of the dialect's own tokens, and valid statements with
random tokens inserted, deleted or replaced (which reach deep into the executor).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotdb_core.config import default_settings
from iotdb_core.query import ParseError, QueryError, execute, parse
from iotdb_core.storage import Engine

KEYWORDS = [
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "FILL", "ORDER", "TIME", "TIMESTAMP", "DESC", "ASC", "LIMIT",
    "OFFSET", "SLIMIT", "SOFFSET", "ALIGN", "DEVICE", "LAST", "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL",
    "TRUE", "FALSE", "NOW", "PREVIOUS", "LINEAR", "AS", "SHOW", "DATABASES", "DATABASE", "DEVICES", "TIMESERIES",
    "COUNT", "SUM", "AVG", "MIN_VALUE", "MAX_VALUE", "FIRST_VALUE", "LAST_VALUE", "MIN_TIME", "MAX_TIME",
    "EXTREME", "CREATE", "WITH", "DATATYPE", "ENCODING", "COMPRESSOR", "INSERT", "INTO", "VALUES", "DELETE", "SET",
    "UNSET", "TTL", "TO", "INF", "ALIGNED",
]
PUNCTUATION = ["(", ")", "[", ",", ".", ";", "*", "**", "+", "-", "=", "==", "!=", "<>", "<", "<=", ">", ">="]
WORDS = ["s1", "s2", "txt", "flag", "d1", "root", "root.fz.d1", "root.fz.*", "root.**", "root.fz.d1.s1", "`q.x`",
         "FLOAT", "INT32", "TEXT", "BOOLEAN", "GORILLA", "PLAIN", "SNAPPY", "123", "1x", "_"]
LITERALS = ["0", "1", "5", "100", "-1", "1.5", "-2.5e3", "'on'", '"x"', "''", "2020-01-01", "2020-01-01T00:00:00Z",
            "1970-01-01 00:00:00.001+08:00", "1d", "1h", "10ms", "3mo", "9223372036854775807", "-9223372036854775808",
            "99999999999999999999", "now()"]
TOKENS = KEYWORDS + PUNCTUATION + WORDS + LITERALS
VALID = [
    "SELECT s1 , s2 FROM root.fz.d1 WHERE time > 1 AND s1 < 50",
    "SELECT * FROM root.fz.* WHERE s1 > 2 OR txt = 'on' FILL ( PREVIOUS ) ORDER BY TIME DESC LIMIT 5 OFFSET 1",
    "SELECT count ( s1 ) , avg ( s2 ) FROM root.fz.d1 GROUP BY ( [ 0 , 100 ) , 10ms , 5ms ) FILL ( LINEAR )",
    "SELECT LAST * FROM root.fz.** WHERE time >= 10",
    "SELECT * FROM root.fz.* ALIGN BY DEVICE",
    "SELECT extreme ( s1 ) FROM root.fz.* WHERE flag = true ALIGN BY DEVICE",
    "SHOW TIMESERIES root.fz.**",
    "COUNT DEVICES root.**",
    "INSERT INTO root.fz.d1 ( time , s1 , txt ) VALUES ( 7 , 1.5 , 'x' ) , ( now() , 2 , null )",
    "CREATE TIMESERIES root.fz.d3.s1 WITH DATATYPE = INT64 , ENCODING = RLE",
    "DELETE FROM root.fz.d1.s1 WHERE time < 5",
    "SELECT s1 FROM root.fz.d1 WHERE time BETWEEN 2020-01-01 AND now() - 1d AND s1 IN ( 1 , 2 )",
]
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def open_loaded(directory: Path) -> Engine:
    opened = Engine.open(directory, default_settings().replace(wal_mode="DISABLE"))
    stamps = np.arange(0, 60, 3, dtype=np.int64)
    opened.insert_tablet("root.fz.d1", stamps, ["s1", "s2", "txt", "flag"], [
        np.arange(len(stamps), dtype=np.float64), np.arange(len(stamps), dtype=np.int32),
        ["on" if i % 2 else "off" for i in range(len(stamps))], np.arange(len(stamps)) % 3 == 0,
    ])
    opened.insert_tablet("root.fz.d2", stamps[::2], ["s1"], [np.arange(len(stamps[::2]), dtype=np.float64)])
    return opened


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with open_loaded(tmp_path_factory.mktemp("fuzz")) as opened:
        yield opened


def run(engine: Engine, sql: str) -> None:
    with contextlib.suppress(QueryError):
        execute(engine, sql, row_limit=100_000)


@FUZZ
@given(text=st.text(max_size=80))
def test_arbitrary_text(engine: Engine, text: str) -> None:
    run(engine, text)
    with contextlib.suppress(ParseError):
        parse(text)


@FUZZ
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=25), spaced=st.booleans())
def test_token_soup(engine: Engine, tokens: list[str], spaced: bool) -> None:
    run(engine, (" " if spaced else "").join(tokens))
    run(engine, "SELECT " + " ".join(tokens))


@FUZZ
@given(
    base=st.sampled_from(VALID),
    edits=st.lists(
        st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 40), st.sampled_from(TOKENS)),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_statements(engine: Engine, base: str, edits: list[tuple[str, int, str]]) -> None:
    tokens = base.split(" ")
    for kind, position, token in edits:
        index = position % (len(tokens) + 1)
        if kind == "insert":
            tokens.insert(index, token)
        elif tokens and index < len(tokens):
            if kind == "delete":
                del tokens[index]
            else:
                tokens[index] = token
    run(engine, " ".join(tokens))


def test_valid_statements_run(tmp_path: Path) -> None:
    with open_loaded(tmp_path / "data") as engine:
        for sql in VALID:
            try:
                execute(engine, sql)
            except QueryError as exc:
                assert exc.code == 701 and "not supported by this storage engine" in exc.message, (sql, exc)
