"""SQL text → statement (:mod:`iotdb_core.query.ast`), with lark's LALR parser over ``grammar.lark``.

The grammar is loaded from the package (``importlib.resources``) and compiled once per process; the compiled
tables are cached in the user's cache directory for the next process (:func:`parser_cache_file`). Rules
are turned into AST nodes while parsing (lark's inline transformer), so no parse tree is built. A lark
error becomes a :class:`~iotdb_core.query.errors.ParseError` (code 700) such as
``line 1, column 15: expected FROM, got 'WHERE'``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, cast

import lark
from lark import Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from iotdb_core.query import ast
from iotdb_core.query.errors import ParseError, QueryError
from iotdb_core.query.timeexpr import DateTimeText, Duration, Now, TimeExpr

__all__ = ["parse"]

_COMPARISONS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SOFT_TO_CANONICAL = {"COMPRESSION": "COMPRESSOR"}

#: How terminals are named in error messages.
_DISPLAY = {
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "COMMA": "','",
    "DOT": "'.'",
    "SEMICOLON": "';'",
    "DSTAR": "'**'",
    "STAR": "'*'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "EQ": "'='",
    "NEQ": "'!='",
    "LT": "'<'",
    "LTE": "'<='",
    "GT": "'>'",
    "GTE": "'>='",
    "NAME": "a name",
    "QUOTED_ID": "a `quoted` name",
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "DURATION": "a duration",
    "DATETIME": "a date-time",
    "TAGS_KW": "TAGS",
    "ATTRIBUTES_KW": "ATTRIBUTES",
    "$END": "end of input",
}
#: Terminals that only continue or decorate what came before (a path, a list, an alias): left out of
#: "expected" when others remain, so the message names what the statement needs next.
_CONTINUATIONS = frozenset({"DOT", "COMMA", "AS"})
#: Terminals that stand for "a path node" in messages, once NAME is among the expected ones.
_NODE_TERMINALS = frozenset({"NAME", "QUOTED_ID", "STAR", "DSTAR", "INT"})


class _PassThrough:
    """A no-op post-lexer whose only job is to make NAME acceptable in every lexer state.

    Keywords are then always read as whole words (``selection`` is a name, not SELECT + ``ion``) and a
    misplaced word is reported as the word it is.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


class _Grantee(NamedTuple):
    """``USER name`` or ``ROLE name`` in GRANT, REVOKE and LIST PRIVILEGES."""

    kind: str
    name: str


def _values(children: list[Any]) -> list[Any]:
    return [child for child in children if not isinstance(child, Token)]


def _has(children: list[Any], kind: str) -> bool:
    return any(isinstance(child, Token) and child.type == kind for child in children)


def _unquote_string(text: str) -> str:
    quote = text[0]
    body = text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            out.append(following if following in ("'", '"', "\\") else char + following)
            index += 2
            continue
        if char == quote:  # a doubled quote
            out.append(quote)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _unquote_name(text: str) -> str:
    if len(text) >= 2 and text[0] == "`" and text[-1] == "`":
        return text[1:-1].replace("``", "`")
    return text


def _error_at(token: Token, message: str) -> ParseError:
    return ParseError(message, token.line, token.column)


class _Builder(Transformer):
    """Rule callbacks building AST nodes (run inside the LALR parser; each gets its children list)."""

    # ---------------------------------------------------------------------------------------- statement

    def start(self, children: list[Any]) -> ast.Statement:
        return _values(children)[0]

    # ------------------------------------------------------------------------------------------- SELECT

    def select_stmt(self, children: list[Any]) -> ast.Select:
        values = _values(children)
        last, items, from_paths = values[0], values[1], values[2]
        clauses: dict[str, Any] = {}
        for kind, value, token in values[3:]:
            if kind in clauses:
                raise _error_at(token, f"{kind.upper()} clause given twice")
            clauses[kind] = value
        group_by = clauses.get("GROUP BY")
        return ast.Select(
            items=tuple(items),
            from_paths=tuple(from_paths),
            where=clauses.get("WHERE"),
            group_by=group_by,
            fill=clauses.get("FILL"),
            order_desc=clauses.get("ORDER BY", False),
            limit=clauses.get("limit"),
            offset=clauses.get("offset", 0),
            slimit=clauses.get("slimit"),
            soffset=clauses.get("soffset", 0),
            align_by_device=clauses.get("ALIGN BY DEVICE", False),
            last=last,
        )

    def last_mark(self, children: list[Any]) -> bool:
        return bool(children)

    def select_list(self, children: list[Any]) -> list[ast.SelectItem]:
        return _values(children)

    def series_item(self, children: list[Any]) -> ast.SeriesItem:
        values = _values(children)
        return ast.SeriesItem(values[0], values[1] if len(values) > 1 else None)

    def aggregate_item(self, children: list[Any]) -> ast.AggregateItem:
        values = _values(children)
        return ast.AggregateItem(values[0], values[1], values[2] if len(values) > 2 else None)

    def alias(self, children: list[Any]) -> str:
        return _values(children)[0]

    def alias_name(self, children: list[Any]) -> str:
        return _unquote_name(str(children[0]))

    def agg_name(self, children: list[Any]) -> str:
        return str(children[0]).upper()

    def prefix_list(self, children: list[Any]) -> list[ast.Path]:
        return _values(children)

    def where_clause(self, children: list[Any]) -> tuple[str, ast.Predicate, Token]:
        return ("WHERE", _values(children)[0], children[0])

    def group_by_clause(self, children: list[Any]) -> tuple[str, ast.GroupBy, Token]:
        values = _values(children)
        step = values[3] if len(values) > 3 else None
        return ("GROUP BY", ast.GroupBy(values[0], values[1], values[2], step), children[0])

    def duration_value(self, children: list[Any]) -> Duration | int:
        token = children[0]
        if token.type == "INT":
            return int(token)
        try:
            return Duration.parse(str(token))
        except ValueError as exc:  # pragma: no cover - the DURATION terminal only lexes valid text
            raise _error_at(token, str(exc)) from None

    def fill_clause(self, children: list[Any]) -> tuple[str, ast.Fill, Token]:
        return ("FILL", _values(children)[0], children[0])

    def fill_previous(self, children: list[Any]) -> ast.Fill:
        return ast.Fill("PREVIOUS")

    def fill_linear(self, children: list[Any]) -> ast.Fill:
        return ast.Fill("LINEAR")

    def fill_constant(self, children: list[Any]) -> ast.Fill:
        return ast.Fill("CONSTANT", _values(children)[0])

    def order_clause(self, children: list[Any]) -> tuple[str, bool, Token]:
        values = _values(children)
        return ("ORDER BY", bool(values and values[0]), children[0])

    def order_direction(self, children: list[Any]) -> bool:
        return str(children[0]).upper() == "DESC"

    def _count_clause(self, kind: str, children: list[Any]) -> tuple[str, int, Token]:
        return (kind, int(children[1]), children[0])

    def limit_clause(self, children: list[Any]) -> tuple[str, int, Token]:
        return self._count_clause("limit", children)

    def offset_clause(self, children: list[Any]) -> tuple[str, int, Token]:
        return self._count_clause("offset", children)

    def slimit_clause(self, children: list[Any]) -> tuple[str, int, Token]:
        return self._count_clause("slimit", children)

    def soffset_clause(self, children: list[Any]) -> tuple[str, int, Token]:
        return self._count_clause("soffset", children)

    def align_clause(self, children: list[Any]) -> tuple[str, bool, Token]:
        return ("ALIGN BY DEVICE", True, children[0])

    # -------------------------------------------------------------------------------------------- WHERE

    def or_pred(self, children: list[Any]) -> ast.Or:
        return ast.Or(tuple(_values(children)))

    def and_pred(self, children: list[Any]) -> ast.And:
        return ast.And(tuple(_values(children)))

    def not_pred(self, children: list[Any]) -> ast.Not:
        return ast.Not(_values(children)[0])

    def atom_pred(self, children: list[Any]) -> ast.Predicate:  # "(" predicate ")"
        return _values(children)[0]

    def compare_right(self, children: list[Any]) -> ast.Compare:
        left, op, right = children
        return ast.Compare(left, op, right)

    def compare_left(self, children: list[Any]) -> ast.Compare:
        left, op, right = children
        return ast.Compare(right, _FLIPPED[op], left)

    def comp_op(self, children: list[Any]) -> str:
        return _COMPARISONS[str(children[0])]

    def operand(self, children: list[Any]) -> ast.TimeColumn | ast.Path:
        child = children[0]
        if isinstance(child, Token):
            return ast.TIME
        return child

    def between_pred(self, children: list[Any]) -> ast.Between:
        operand, low, high = _values(children)
        return ast.Between(operand, low, high, _has(children, "NOT"))

    def in_pred(self, children: list[Any]) -> ast.InList:
        values = _values(children)
        return ast.InList(values[0], tuple(values[1:]), _has(children, "NOT"))

    def null_pred(self, children: list[Any]) -> ast.IsNull:
        return ast.IsNull(_values(children)[0], _has(children, "NOT"))

    # ------------------------------------------------------------------------------------------- values

    def time_value(self, children: list[Any]) -> ast.Literal | TimeExpr:
        base, *offsets = children
        if isinstance(base, ast.Literal) and not offsets:
            return base
        if isinstance(base, ast.Literal):
            base = base.value
        return TimeExpr(base, tuple(offsets))

    def time_offset(self, children: list[Any]) -> tuple[int, Duration]:
        sign, token = children
        try:
            duration = Duration.parse(str(token))
        except ValueError as exc:  # pragma: no cover - the DURATION terminal only lexes valid text
            raise _error_at(token, str(exc)) from None
        return (-1 if sign == "-" else 1, duration)

    def int_atom(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(int(children[0]), str(children[0]))

    def int_atom_plus(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(int(children[1]), str(children[1]))

    def neg_int_atom(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(-int(children[1]), "-" + str(children[1]))

    def datetime_atom(self, children: list[Any]) -> DateTimeText:
        token = children[0]
        try:
            return DateTimeText.parse(str(token))
        except ValueError as exc:
            raise _error_at(token, str(exc)) from None

    def now_atom(self, children: list[Any]) -> Now:
        return Now()

    def float_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(float(children[0]), str(children[0]))

    def float_value_plus(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(float(children[1]), str(children[1]))

    def neg_float_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(-float(children[1]), "-" + str(children[1]))

    def string_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(_unquote_string(str(children[0])), str(children[0]))

    def true_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(True, "true")

    def false_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(False, "false")

    def null_value(self, children: list[Any]) -> ast.Literal:
        return ast.Literal(None, "null")

    # -------------------------------------------------------------------------------------------- paths

    def path(self, children: list[Any]) -> ast.Path:
        nodes = [str(child) for child in children if child.type != "DOT"]
        if nodes[0].lower() == "root":
            nodes[0] = "root"
        return ast.Path(tuple(nodes))

    def suffix_path(self, children: list[Any]) -> ast.Path:
        return ast.Path(tuple(str(child) for child in children if child.type != "DOT"))

    def soft_keyword(self, children: list[Any]) -> Token:
        return children[0]

    def hard_keyword(self, children: list[Any]) -> Token:
        return children[0]

    # ----------------------------------------------------------------------------------------- metadata

    def show_databases(self, children: list[Any]) -> ast.ShowDatabases:
        return ast.ShowDatabases(*_values(children))

    def show_devices(self, children: list[Any]) -> ast.ShowDevices:
        return ast.ShowDevices(*_values(children))

    def show_timeseries(self, children: list[Any]) -> ast.ShowTimeseries:
        return ast.ShowTimeseries(*_values(children))

    def count_timeseries(self, children: list[Any]) -> ast.CountTimeseries:
        return ast.CountTimeseries(*_values(children))

    def count_devices(self, children: list[Any]) -> ast.CountDevices:
        return ast.CountDevices(*_values(children))

    def create_database(self, children: list[Any]) -> ast.CreateDatabase:
        return ast.CreateDatabase(_values(children)[0])

    def _create_timeseries(
        self, path: ast.Path, data_type: tuple[str, Token] | None, attributes: list[tuple[str, str, Token]]
    ) -> ast.CreateTimeseries:
        given: dict[str, tuple[str, Token]] = {}
        if data_type is not None:
            given["DATATYPE"] = data_type
        for key, value, token in attributes:
            if key in given:
                raise _error_at(token, f"{key} given twice")
            given[key] = (value, token)
        if "DATATYPE" not in given:
            raise ParseError(f"CREATE TIMESERIES {path}: DATATYPE is required")
        return ast.CreateTimeseries(
            path,
            given["DATATYPE"][0].upper(),
            given["ENCODING"][0].upper() if "ENCODING" in given else None,
            given["COMPRESSOR"][0].upper() if "COMPRESSOR" in given else None,
        )

    def create_timeseries_with(self, children: list[Any]) -> ast.CreateTimeseries:
        values = _values(children)
        return self._create_timeseries(values[0], None, values[1:])

    def create_timeseries_short(self, children: list[Any]) -> ast.CreateTimeseries:
        values = _values(children)
        return self._create_timeseries(values[0], values[1], values[2:])

    def attribute(self, children: list[Any]) -> tuple[str, str, Token]:
        key, _, (value, _token) = children
        return (key, value, children[1])

    def attribute_key(self, children: list[Any]) -> str:
        key = str(children[0]).upper()
        return _SOFT_TO_CANONICAL.get(key, key)

    def attribute_word(self, children: list[Any]) -> tuple[str, Token]:
        token = children[0]
        text = _unquote_string(str(token)) if token.type == "STRING" else str(token)
        return (text, token)

    # ------------------------------------------------------------------------------------------- writes

    def insert_stmt(self, children: list[Any]) -> ast.Insert:
        values = _values(children)
        device = values[0]
        columns = [value for value in values[1:] if isinstance(value, str)]
        rows = [value for value in values[1:] if isinstance(value, tuple)]
        time_positions = [index for index, column in enumerate(columns) if column is _TIME_COLUMN]
        if len(time_positions) > 1:
            raise ParseError(f"INSERT INTO {device}: the time column is given {len(time_positions)} times")
        names = tuple("time" if column is _TIME_COLUMN else column for column in columns)
        for number, row in enumerate(rows, 1):
            if len(row) != len(columns):
                raise ParseError(
                    f"INSERT INTO {device}: row {number} has {len(row)} values for {len(columns)} columns"
                )
        return ast.Insert(
            device, names, time_positions[0] if time_positions else None, tuple(rows), _has(children, "ALIGNED")
        )

    def insert_column(self, children: list[Any]) -> str:
        token = children[0]
        if token.type in ("TIME", "TIMESTAMP"):
            return _TIME_COLUMN
        return str(token)

    def insert_row(self, children: list[Any]) -> tuple[ast.Literal | TimeExpr, ...]:
        return tuple(_values(children))

    def delete_data(self, children: list[Any]) -> ast.DeleteData:
        values = _values(children)
        where = None
        if values and isinstance(values[-1], tuple):
            where = values.pop()[1]
        return ast.DeleteData(tuple(values), where)

    def delete_timeseries(self, children: list[Any]) -> ast.DeleteTimeseries:
        return ast.DeleteTimeseries(tuple(_values(children)))

    def set_ttl(self, children: list[Any]) -> ast.SetTTL:
        path, ttl = _values(children)
        return ast.SetTTL(path, ttl)

    def ttl_value(self, children: list[Any]) -> int | None:
        token = children[0]
        return None if token.type == "INF" else int(token)

    def unset_ttl(self, children: list[Any]) -> ast.UnsetTTL:
        return ast.UnsetTTL(_values(children)[0])

    # -------------------------------------------------------------------- users, roles, privileges

    def principal(self, children: list[Any]) -> str:
        token = children[0]
        text = str(token)
        if token.type == "STRING":
            return _unquote_string(text)
        return _unquote_name(text)

    def create_user(self, children: list[Any]) -> ast.CreateUser:
        return ast.CreateUser(_values(children)[0], _unquote_string(str(children[-1])))

    def alter_user(self, children: list[Any]) -> ast.AlterUserPassword:
        return ast.AlterUserPassword(_values(children)[0], _unquote_string(str(children[-1])))

    def drop_user(self, children: list[Any]) -> ast.DropUser:
        return ast.DropUser(_values(children)[0])

    def create_role(self, children: list[Any]) -> ast.CreateRole:
        return ast.CreateRole(_values(children)[0])

    def drop_role(self, children: list[Any]) -> ast.DropRole:
        return ast.DropRole(_values(children)[0])

    def privilege_list(self, children: list[Any]) -> tuple[str, ...]:
        return tuple(str(child).upper() for child in children if child.type == "NAME")

    def on_paths(self, children: list[Any]) -> list[ast.Path]:
        return _values(children)

    def grantee(self, children: list[Any]) -> _Grantee:
        return _Grantee(str(children[0]).lower(), _values(children)[0])

    def grant_option(self, children: list[Any]) -> bool:
        return True

    def _privilege_statement(self, children: list[Any]) -> tuple[tuple[str, ...], tuple[ast.Path, ...], str, str]:
        values = _values(children)
        paths = tuple(values[1]) if isinstance(values[1], list) else ()
        grantee = next(value for value in values if isinstance(value, _Grantee))
        return values[0], paths, grantee.kind, grantee.name

    def grant_privileges(self, children: list[Any]) -> ast.GrantPrivileges:
        privileges, paths, kind, name = self._privilege_statement(children)
        return ast.GrantPrivileges(privileges, paths, kind, name, _values(children)[-1] is True)

    def revoke_privileges(self, children: list[Any]) -> ast.RevokePrivileges:
        return ast.RevokePrivileges(*self._privilege_statement(children))

    def grant_role(self, children: list[Any]) -> ast.GrantRole:
        role, user = _values(children)
        return ast.GrantRole(role, user)

    def revoke_role(self, children: list[Any]) -> ast.RevokeRole:
        role, user = _values(children)
        return ast.RevokeRole(role, user)

    def list_user(self, children: list[Any]) -> ast.ListUser:
        return ast.ListUser(*_values(children))

    def list_role(self, children: list[Any]) -> ast.ListRole:
        return ast.ListRole(*_values(children))

    def list_privileges(self, children: list[Any]) -> ast.ListPrivileges:
        grantee = _values(children)[0]
        return ast.ListPrivileges(grantee.kind, grantee.name)


#: Marks the time column among INSERT's columns (a str so it sorts with the measurement names).
_TIME_COLUMN = "\x00time"

def parser_cache_file() -> str | bool:
    """Where the grammar analysis is cached between processes: the user's cache directory.

    Building the LALR tables takes about 0.2 s; loading them takes a few ms, which is what a short-lived
    ``iotdb sql -e`` notices. Lark keys the file by a hash of the grammar, its options, its own version and
    Python's, and rebuilds (and rewrites it) when any of them differ or the file is unreadable. The file is
    a pickle, so it lives in a directory only this user writes (``$XDG_CACHE_HOME`` or ``~/.cache``), never
    in a shared temporary directory; if that directory cannot be made, the parser is built without a cache.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "iotdb-py"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(directory, os.W_OK):
        return False
    return str(directory / "sql-parser.lark-cache")


@functools.cache
def _get_parser() -> tuple[lark.Lark, frozenset[str]]:
    """The compiled parser (built once per process) and the keywords that may start a path."""
    grammar = resources.files("iotdb_core.query").joinpath("grammar.lark").read_text(encoding="utf-8")
    parser = lark.Lark(
        grammar,
        cache=parser_cache_file(),
        parser="lalr",
        lexer="contextual",
        postlex=_PassThrough(),
        transformer=_Builder(),
        propagate_positions=False,
        maybe_placeholders=False,
    )
    soft = frozenset(
        symbol.name for rule in parser.rules if rule.origin.name == "soft_keyword" for symbol in rule.expansion
    )
    return parser, soft


def parse(sql: str) -> ast.Statement:
    """Parse one statement (an optional trailing ``;``). Raises ParseError (700) with line and column."""
    if not isinstance(sql, str):
        raise ParseError(f"a statement must be text, got {type(sql).__name__}")
    if not sql.strip():
        raise ParseError("empty statement")
    try:
        return cast(ast.Statement, _get_parser()[0].parse(sql))  # the _Builder transformer's result
    except UnexpectedInput as exc:
        raise _translate(exc, sql) from None
    except VisitError as exc:  # an error raised by a rule callback, wrapped by lark
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise ParseError("statement is nested too deeply") from None


def _describe(names: set[str] | frozenset[str]) -> str:
    names = set(names)
    if len(names) > 1 and names - _CONTINUATIONS:
        names -= _CONTINUATIONS
    if "NAME" in names:
        soft = _get_parser()[1]
        names = {name for name in names if name not in _NODE_TERMINALS and name not in soft}
        names.add("NAME")
    shown = sorted({_DISPLAY.get(name, name) for name in names}, key=lambda text: (text[0] in "'a", text))
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown)


def _got(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    text = str(token)
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text) if "'" not in text else '"' + text + '"'


def _translate(exc: UnexpectedInput, sql: str) -> ParseError:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        line, column = exc.line, exc.column
        if token.type == "$END":
            line, column = _end_position(sql)
        try:
            expected = set(exc.accepts or exc.expected or ())
        except Exception:  # pragma: no cover - accepts() re-runs the parser; fall back to the raw table
            expected = set(exc.expected or ())
        if not expected:
            return ParseError(f"unexpected {_got(token)}", line, column)
        return ParseError(f"expected {_describe(expected)}, got {_got(token)}", line, column)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = sql[pos] if pos is not None and 0 <= pos < len(sql) else ""
        if char in ("'", '"'):
            message = "unterminated string"
        elif char == "`":
            message = "unterminated `quoted` name"
        else:
            message = f"unexpected character {char!r}"
        return ParseError(message, exc.line, exc.column)
    if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports end of input as UnexpectedToken
        line, column = _end_position(sql)
        return ParseError("unexpected end of input", line, column)
    return ParseError(str(exc))  # pragma: no cover


def _end_position(sql: str) -> tuple[int, int]:
    stripped = sql.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column
