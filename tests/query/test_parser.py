"""The parser: every statement form into its AST node, and readable 700 errors with line and column."""

from __future__ import annotations

import pytest

from iotdb_core.query import ParseError, parse
from iotdb_core.query import ast as q
from iotdb_core.query.timeexpr import DateTimeText, Duration, Now, TimeExpr

D1 = q.Path(("root", "sg", "d1"))


def path(text: str) -> q.Path:
    return q.Path(tuple(text.split(".")))


def lit(value: object, text: str | None = None) -> q.Literal:
    return q.Literal(value, text if text is not None else str(value))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- SELECT


def test_simple_select() -> None:
    assert parse("SELECT s1 FROM root.sg.d1") == q.Select((q.SeriesItem(path("s1")),), (D1,))


def test_keywords_are_case_insensitive_and_semicolon_optional() -> None:
    assert parse("select s1 from root.sg.d1;") == parse("SeLeCt s1 FrOm root.sg.d1")
    assert parse("SELECT s1 FROM ROOT.sg.d1").from_paths == (D1,)


def test_select_list_wildcards_and_multi_level_suffixes() -> None:
    statement = parse("SELECT *, **, d1.s1, `a.b` FROM root.sg, root.sg.**")
    assert [item.path for item in statement.items] == [path("*"), path("**"), path("d1.s1"), q.Path(("`a.b`",))]
    assert statement.from_paths == (path("root.sg"), path("root.sg.**"))


def test_aggregates_and_aliases() -> None:
    statement = parse(
        "SELECT count(s1), SUM(s1), avg(s1), min_value(s1), MAX_VALUE(s1), first_value(s1), last_value(s1), "
        "min_time(s1), max_time(s1), extreme(s1) AS e, COUNT(*) FROM root.sg.d1"
    )
    functions = [item.function for item in statement.items]
    assert functions == ["COUNT", "SUM", "AVG", "MIN_VALUE", "MAX_VALUE", "FIRST_VALUE", "LAST_VALUE", "MIN_TIME",
                         "MAX_TIME", "EXTREME", "COUNT"]
    assert statement.items[9].alias == "e"
    assert statement.items[10].path == path("*")
    assert statement.is_aggregate


def test_keywords_as_path_nodes() -> None:
    statement = parse("SELECT count, value, device, last_value FROM root.sg.select.time")
    assert [str(item.path) for item in statement.items] == ["count", "value", "device", "last_value"]
    assert statement.from_paths == (path("root.sg.select.time"),)
    assert parse("SELECT selection FROM root.sg.d1").items == (q.SeriesItem(path("selection")),)


def test_select_last() -> None:
    statement = parse("SELECT LAST s1, s2 FROM root.sg.d1 WHERE time > 10")
    assert statement.last and len(statement.items) == 2
    assert statement.where == q.Compare(q.TIME, ">", lit(10))


def test_all_clauses() -> None:
    statement = parse(
        "SELECT count(s1) FROM root.sg.d1 WHERE time >= 0 GROUP BY ([0, 100), 10ms, 5ms) FILL(PREVIOUS) "
        "ORDER BY TIME DESC LIMIT 5 OFFSET 2 SLIMIT 3 SOFFSET 1 ALIGN BY DEVICE"
    )
    assert statement.group_by == q.GroupBy(lit(0), lit(100), Duration("10ms", 10_000_000), Duration("5ms", 5_000_000))
    assert statement.fill == q.Fill("PREVIOUS")
    assert statement.order_desc and statement.align_by_device
    assert (statement.limit, statement.offset, statement.slimit, statement.soffset) == (5, 2, 3, 1)


def test_pagination_in_any_order_and_order_by_asc() -> None:
    statement = parse("SELECT s1 FROM root.sg.d1 OFFSET 2 SOFFSET 1 ORDER BY TIME ASC LIMIT 5 SLIMIT 3")
    assert (statement.limit, statement.offset, statement.slimit, statement.soffset) == (5, 2, 3, 1)
    assert not statement.order_desc


def test_fill_forms() -> None:
    assert parse("SELECT s1 FROM root.sg.d1 FILL(linear)").fill == q.Fill("LINEAR")
    assert parse("SELECT s1 FROM root.sg.d1 FILL(-2.5)").fill == q.Fill("CONSTANT", lit(-2.5, "-2.5"))
    assert parse("SELECT s1 FROM root.sg.d1 FILL('x')").fill == q.Fill("CONSTANT", lit("x", "'x'"))
    assert parse("SELECT s1 FROM root.sg.d1 FILL(true)").fill == q.Fill("CONSTANT", lit(True, "true"))
    assert parse("SELECT s1 FROM root.sg.d1 FILL(7)").fill == q.Fill("CONSTANT", lit(7))


def test_group_by_with_integer_interval() -> None:
    assert parse("SELECT count(s1) FROM root.sg.d1 GROUP BY ([1, 2), 3)").group_by == q.GroupBy(lit(1), lit(2), 3)


# ----------------------------------------------------------------------------------------------- WHERE


def where(text: str) -> q.Predicate:
    predicate = parse(f"SELECT s1 FROM root.sg.d1 WHERE {text}").where
    assert predicate is not None
    return predicate


def test_comparison_operators() -> None:
    for written, op in [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"),
                        (">=", ">=")]:
        assert where(f"time {written} 5") == q.Compare(q.TIME, op, lit(5))
    assert where("timestamp < 5") == q.Compare(q.TIME, "<", lit(5))


def test_reversed_comparisons_are_flipped() -> None:
    assert where("5 < time") == q.Compare(q.TIME, ">", lit(5))
    assert where("10 >= s1") == q.Compare(path("s1"), "<=", lit(10))


def test_value_comparisons_and_literals() -> None:
    assert where("s1 > 1.5") == q.Compare(path("s1"), ">", lit(1.5))
    assert where("s1 > -3") == q.Compare(path("s1"), ">", lit(-3, "-3"))
    assert where("s1 = 'on'") == q.Compare(path("s1"), "=", lit("on", "'on'"))
    assert where('s1 = "it""s"') == q.Compare(path("s1"), "=", lit('it"s', '"it""s"'))
    assert where("s1 = 'it\\'s'") == q.Compare(path("s1"), "=", lit("it's", "'it\\'s'"))
    assert where("s1 = true") == q.Compare(path("s1"), "=", lit(True, "true"))
    assert where("s1 < s2") == q.Compare(path("s1"), "<", path("s2"))
    assert where("d1.s1 >= 1e3") == q.Compare(path("d1.s1"), ">=", lit(1000.0, "1e3"))


def test_boolean_structure_and_precedence() -> None:
    a, b, c = (q.Compare(q.TIME, ">", lit(n)) for n in (1, 2, 3))
    assert where("time > 1 OR time > 2 AND time > 3") == q.Or((a, q.And((b, c))))
    assert where("(time > 1 OR time > 2) AND time > 3") == q.And((q.Or((a, b)), c))
    assert where("NOT time > 1 AND NOT (time > 2)") == q.And((q.Not(a), q.Not(b)))


def test_between_in_and_null() -> None:
    assert where("time BETWEEN 1 AND 5 AND s1 > 0") == q.And(
        (q.Between(q.TIME, lit(1), lit(5)), q.Compare(path("s1"), ">", lit(0)))
    )
    assert where("s1 NOT BETWEEN 1 AND 5") == q.Between(path("s1"), lit(1), lit(5), negated=True)
    assert where("s1 IN (1, 2.5, 'x')") == q.InList(path("s1"), (lit(1), lit(2.5), lit("x", "'x'")))
    assert where("time NOT IN (1)") == q.InList(q.TIME, (lit(1),), negated=True)
    assert where("s1 IS NULL") == q.IsNull(path("s1"))
    assert where("s1 IS NOT NULL") == q.IsNull(path("s1"), negated=True)


def test_time_expressions() -> None:
    assert where("time > now()") == q.Compare(q.TIME, ">", TimeExpr(Now()))
    day = Duration("1d", 86_400_000_000_000)
    assert where("time > now() - 1d") == q.Compare(q.TIME, ">", TimeExpr(Now(), ((-1, day),)))
    expr = where("time >= 2020-01-01T00:00:00+08:00 + 1h30m").right
    assert isinstance(expr, TimeExpr) and isinstance(expr.base, DateTimeText)
    assert expr.base.offset_minutes == 480 and expr.offsets[0][1].nanos == 5_400_000_000_000
    assert where("time < 100 + 1s") == q.Compare(q.TIME, "<", TimeExpr(100, ((1, Duration("1s", 10**9)),)))
    for text in ["2020-01-01", "2020/01/01 08:00:00", "2020.01.01T08:00", "2020-01-01T08:00:00.123Z",
                 "2020-01-01 08:00:00.123456789-0500"]:
        value = where(f"time > {text}").right
        assert isinstance(value, TimeExpr) and str(value.base) == text


# -------------------------------------------------------------------------------------------- metadata


def test_show_and_count() -> None:
    assert parse("SHOW DATABASES") == q.ShowDatabases()
    assert parse("show databases root.sg.**") == q.ShowDatabases(path("root.sg.**"))
    assert parse("SHOW DEVICES root.sg.*") == q.ShowDevices(path("root.sg.*"))
    assert parse("SHOW TIMESERIES") == q.ShowTimeseries()
    assert parse("SHOW TIMESERIES root.**") == q.ShowTimeseries(path("root.**"))
    assert parse("COUNT TIMESERIES root.sg.**") == q.CountTimeseries(path("root.sg.**"))
    assert parse("COUNT DEVICES") == q.CountDevices()


def test_create_statements() -> None:
    assert parse("CREATE DATABASE root.ln") == q.CreateDatabase(path("root.ln"))
    full = "CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=FLOAT, ENCODING=GORILLA, COMPRESSOR=SNAPPY"
    assert parse(full) == q.CreateTimeseries(path("root.sg.d1.s1"), "FLOAT", "GORILLA", "SNAPPY")
    assert parse("create timeseries root.sg.d1.s1 with datatype=int32") == q.CreateTimeseries(
        path("root.sg.d1.s1"), "INT32"
    )
    assert parse("CREATE TIMESERIES root.sg.d1.s1 TEXT encoding=PLAIN compression=LZ4") == q.CreateTimeseries(
        path("root.sg.d1.s1"), "TEXT", "PLAIN", "LZ4"
    )
    assert parse("CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE='DOUBLE'").data_type == "DOUBLE"


def test_insert() -> None:
    statement = parse("INSERT INTO root.sg.d1(timestamp, s1, s2, s3, s4) VALUES (1, 2.0, 'text', true, null), "
                      "(2020-01-01T00:00:00Z, -3, \"x\", FALSE, 4)")
    assert statement.device == D1
    assert statement.columns == ("time", "s1", "s2", "s3", "s4")
    assert statement.time_index == 0
    first, second = statement.rows
    assert first == (lit(1), lit(2.0, "2.0"), lit("text", "'text'"), lit(True, "true"), lit(None, "null"))
    assert isinstance(second[0], TimeExpr) and second[1] == lit(-3, "-3") and second[3] == lit(False, "false")
    assert parse("INSERT INTO root.sg.d1(time, s1) ALIGNED VALUES (now(), 1)").aligned
    assert parse("INSERT INTO root.sg.d1(s1, s2) VALUES (1, 2)").time_index is None


def test_delete_and_ttl() -> None:
    statement = parse("DELETE FROM root.sg.d1.s1, root.sg.*.s2 WHERE time <= 2017-11-01T16:26:00")
    assert statement.paths == (path("root.sg.d1.s1"), path("root.sg.*.s2"))
    assert isinstance(statement.where, q.Compare)
    assert parse("DELETE FROM root.sg.**") == q.DeleteData((path("root.sg.**"),))
    assert parse("DELETE TIMESERIES root.sg.d1.s1, root.sg.d2.*") == q.DeleteTimeseries(
        (path("root.sg.d1.s1"), path("root.sg.d2.*"))
    )
    assert parse("SET TTL TO root.sg 3600000") == q.SetTTL(path("root.sg"), 3600000)
    assert parse("SET TTL TO root.sg.** INF") == q.SetTTL(path("root.sg.**"), None)
    assert parse("UNSET TTL TO root.sg") == q.UnsetTTL(path("root.sg"))


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT s1, s2 WHERE time > 1", "line 1, column 15: expected FROM, got 'WHERE'"),
        ("SELECT", "line 1, column 7: expected one of LAST, a name, got end of input"),
        ("SELECT s1 FROM", "line 1, column 15: expected a name, got end of input"),
        ("SELECT s1 FROM root.sg.d1 WHERE time > 5 s1", "column 42: expected one of ALIGN, AND"),
        ("SELECT count(s1 FROM root.sg.d1", "line 1, column 17: expected ')', got 'FROM'"),
        ("SHOW", "line 1, column 5: expected one of DATABASES, DEVICES, TIMESERIES, got end of input"),
        (
            "selectx s1 FROM root.sg.d1",
            "line 1, column 1: expected one of ALTER, COUNT, CREATE, DELETE, DROP, GRANT, INSERT, LIST",
        ),
        ("SELECT s1 FROM root.sg.d1 LIMIT -1", "line 1, column 33: expected an integer, got '-'"),
        ("SELECT s1 FROM root.sg.d1 # comment", "line 1, column 27: unexpected character '#'"),
        ("SELECT s1 FROM root.sg.d1 WHERE s1 = 'abc", "line 1, column 38: unterminated string"),
        ("SELECT s1 FROM root.sg.`d1", "line 1, column 24: unterminated `quoted` name"),
        ("SELECT s1 FROM root.sg.d1 WHERE time > 2020-13-01", "line 1, column 40: '2020-13-01' is not a valid"),
        ("SELECT s1 FROM root.sg.d1 LIMIT 1 LIMIT 2", "line 1, column 35: LIMIT clause given twice"),
        ("SELECT s1 FROM root.sg.d1 GROUP BY ([1, 2), 1x)", "column 45: expected one of a duration, an integer"),
        ("SELECT s1\nFROM root.sg.d1\nWHERE", "line 3, column 6: expected one of"),
        ("INSERT INTO root.sg.d1(time, s1) VALUES (1, 2, 3)", "row 1 has 3 values for 2 columns"),
        ("INSERT INTO root.sg.d1(time, timestamp) VALUES (1, 2)", "the time column is given 2 times"),
        ("CREATE TIMESERIES root.sg.d1.s1 WITH ENCODING=PLAIN", "DATATYPE is required"),
        ("CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=INT32, DATATYPE=INT64", "DATATYPE given twice"),
        ("", "empty statement"),
        ("   ;", "expected one of"),
    ],
)
def test_parse_errors(sql: str, message: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse(sql)
    assert raised.value.code == 700
    assert message in raised.value.message, raised.value.message


def test_parse_error_carries_position() -> None:
    with pytest.raises(ParseError) as raised:
        parse("SELECT s1, s2 WHERE")
    assert (raised.value.line, raised.value.column) == (1, 15)
    assert str(raised.value) == "700: line 1, column 15: expected FROM, got 'WHERE'"


def test_deep_nesting_parses_without_a_crash() -> None:
    """5,000 nested parentheses collapse into the one comparison; 5,000 NOTs stay a chain of that depth."""
    statement = parse("SELECT s1 FROM root.sg.d1 WHERE " + "(" * 5000 + "time > 1" + ")" * 5000)
    assert isinstance(statement, q.Select)
    assert isinstance(statement.where, q.Compare) and str(statement.where) == "TIME > 1"
    statement = parse("SELECT s1 FROM root.sg.d1 WHERE " + "NOT " * 5000 + "time > 1")
    assert isinstance(statement, q.Select)
    depth, node = 0, statement.where
    while isinstance(node, q.Not):
        depth, node = depth + 1, node.operand
    assert depth == 5000 and isinstance(node, q.Compare) and str(node) == "TIME > 1"


def test_non_text_is_rejected() -> None:
    with pytest.raises(ParseError, match="must be text"):
        parse(b"SELECT")  # type: ignore[arg-type]
