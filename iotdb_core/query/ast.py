"""Statements as the parser produces them: immutable dataclasses, paths still as written.

Paths are kept as the written nodes (``Path.nodes``); they are joined, validated and matched against the
schema by the executor, which also resolves time literals (:mod:`iotdb_core.query.timeexpr`).
"""

from __future__ import annotations

from dataclasses import dataclass

from iotdb_core.query.timeexpr import Duration, TimeExpr

# ----------------------------------------------------------------------------------------------- paths


@dataclass(frozen=True, slots=True)
class Path:
    """A path as written: its nodes, each in written form (``a``, ```a.b```, ``*``, ``**``)."""

    nodes: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.nodes)

    def join(self, suffix: Path) -> Path:
        """This path followed by ``suffix``'s nodes (IoTDB's FROM-prefix + SELECT-suffix)."""
        return Path(self.nodes + suffix.nodes)

    @property
    def has_wildcard(self) -> bool:
        return any(node in ("*", "**") for node in self.nodes)


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: integer, floating-point number, text, boolean, or None for ``null``. ``text`` is as written."""

    value: bool | int | float | str | None
    text: str

    def __str__(self) -> str:
        return self.text


#: What a comparison may compare against: a constant, a time expression (``now() - 1d``) or a series.
Value = Literal | TimeExpr


class TimeColumn:
    """The ``time`` / ``timestamp`` column in a predicate."""

    _instance: TimeColumn | None = None

    def __new__(cls) -> TimeColumn:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TIME"

    __str__ = __repr__


TIME = TimeColumn()

# ------------------------------------------------------------------------------------------ predicates


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``; ``op`` is one of ``= != < <= > >=``; ``left`` is the time column or a series."""

    left: TimeColumn | Path
    op: str
    right: Literal | TimeExpr | Path

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, slots=True)
class Between:
    """``operand [NOT] BETWEEN low AND high`` (both ends inclusive)."""

    operand: TimeColumn | Path
    low: Value
    high: Value
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.operand} {'NOT ' if self.negated else ''}BETWEEN {self.low} AND {self.high}"


@dataclass(frozen=True, slots=True)
class InList:
    """``operand [NOT] IN (v1, v2, ...)``."""

    operand: TimeColumn | Path
    values: tuple[Value, ...]
    negated: bool = False

    def __str__(self) -> str:
        inside = ", ".join(str(v) for v in self.values)
        return f"{self.operand} {'NOT ' if self.negated else ''}IN ({inside})"


@dataclass(frozen=True, slots=True)
class IsNull:
    """``path IS [NOT] NULL``."""

    path: Path
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.path} IS {'NOT ' if self.negated else ''}NULL"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Predicate, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(str(o) for o in self.operands) + ")"


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Predicate, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(str(o) for o in self.operands) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Predicate

    def __str__(self) -> str:
        return f"NOT {self.operand}"


Predicate = Compare | Between | InList | IsNull | And | Or | Not

# ------------------------------------------------------------------------------------------------ SELECT


@dataclass(frozen=True, slots=True)
class SeriesItem:
    """A raw select expression: a suffix path (``s1``, ``*``, ``d1.s1``), with an optional alias."""

    path: Path
    alias: str | None = None


#: Aggregate functions, by the name written in SQL (upper case).
AGGREGATES = (
    "COUNT",
    "SUM",
    "AVG",
    "MIN_VALUE",
    "MAX_VALUE",
    "FIRST_VALUE",
    "LAST_VALUE",
    "MIN_TIME",
    "MAX_TIME",
    "EXTREME",
)


@dataclass(frozen=True, slots=True)
class AggregateItem:
    """``FUNCTION(suffix path)``, with an optional alias; ``function`` is upper case, one of AGGREGATES."""

    function: str
    path: Path
    alias: str | None = None


SelectItem = SeriesItem | AggregateItem


@dataclass(frozen=True, slots=True)
class GroupBy:
    """``GROUP BY ([start, end), interval[, step])``: windows ``[start + k*step, start + k*step + interval)``."""

    start: Literal | TimeExpr
    end: Literal | TimeExpr
    interval: Duration | int
    step: Duration | int | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """``FILL(PREVIOUS)``, ``FILL(LINEAR)`` or ``FILL(<constant>)``; ``mode`` is PREVIOUS, LINEAR or CONSTANT."""

    mode: str
    value: Literal | TimeExpr | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """A SELECT statement (``last`` for ``SELECT LAST``)."""

    items: tuple[SelectItem, ...]
    from_paths: tuple[Path, ...]
    where: Predicate | None = None
    group_by: GroupBy | None = None
    fill: Fill | None = None
    order_desc: bool = False
    limit: int | None = None
    offset: int = 0
    slimit: int | None = None
    soffset: int = 0
    align_by_device: bool = False
    last: bool = False

    @property
    def is_aggregate(self) -> bool:
        return any(isinstance(item, AggregateItem) for item in self.items)


# -------------------------------------------------------------------------------------------- metadata


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class ShowDevices:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class ShowTimeseries:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class CountTimeseries:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class CountDevices:
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class CreateDatabase:
    path: Path


@dataclass(frozen=True, slots=True)
class CreateTimeseries:
    """``CREATE TIMESERIES path WITH DATATYPE=..., ENCODING=..., COMPRESSOR=...`` (names upper case)."""

    path: Path
    data_type: str
    encoding: str | None = None
    compressor: str | None = None


# --------------------------------------------------------------------------------------------- writes


@dataclass(frozen=True, slots=True)
class Insert:
    """``INSERT INTO device(time, m1, m2) VALUES (...), ...``.

    ``time_index`` is the position of the time column in ``columns`` (None: the rows carry no time, and
    the statement's ``now()`` is used); ``columns`` holds the measurement nodes as written (the time
    column's entry is ``"time"``). Each row has one value per column.
    """

    device: Path
    columns: tuple[str, ...]
    time_index: int | None
    rows: tuple[tuple[Literal | TimeExpr, ...], ...]
    aligned: bool = False


@dataclass(frozen=True, slots=True)
class DeleteData:
    """``DELETE FROM path[, path] [WHERE time filter]``."""

    paths: tuple[Path, ...]
    where: Predicate | None = None


@dataclass(frozen=True, slots=True)
class DeleteTimeseries:
    """``DELETE TIMESERIES path[, path]``."""

    paths: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class SetTTL:
    """``SET TTL TO path ttl`` (milliseconds; ``INF`` is None: no expiry)."""

    path: Path
    ttl_ms: int | None


@dataclass(frozen=True, slots=True)
class UnsetTTL:
    """``UNSET TTL TO path``."""

    path: Path


# ------------------------------------------------------------------------------ users, roles, privileges


@dataclass(frozen=True, slots=True)
class CreateUser:
    """``CREATE USER name 'password'``."""

    name: str
    password: str


@dataclass(frozen=True, slots=True)
class AlterUserPassword:
    """``ALTER USER name SET PASSWORD 'password'``."""

    name: str
    password: str


@dataclass(frozen=True, slots=True)
class DropUser:
    """``DROP USER name``."""

    name: str


@dataclass(frozen=True, slots=True)
class CreateRole:
    """``CREATE ROLE name``."""

    name: str


@dataclass(frozen=True, slots=True)
class DropRole:
    """``DROP ROLE name``."""

    name: str


@dataclass(frozen=True, slots=True)
class GrantPrivileges:
    """``GRANT p[, p] [ON path[, path]] TO USER|ROLE name [WITH GRANT OPTION]``; names as written."""

    privileges: tuple[str, ...]
    paths: tuple[Path, ...]
    kind: str
    name: str
    grant_option: bool = False


@dataclass(frozen=True, slots=True)
class RevokePrivileges:
    """``REVOKE p[, p] [ON path[, path]] FROM USER|ROLE name``."""

    privileges: tuple[str, ...]
    paths: tuple[Path, ...]
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class GrantRole:
    """``GRANT ROLE role TO user``."""

    role: str
    user: str


@dataclass(frozen=True, slots=True)
class RevokeRole:
    """``REVOKE ROLE role FROM user``."""

    role: str
    user: str


@dataclass(frozen=True, slots=True)
class ListUser:
    """``LIST USER [OF ROLE role]``."""

    of_role: str | None = None


@dataclass(frozen=True, slots=True)
class ListRole:
    """``LIST ROLE [OF USER user]``."""

    of_user: str | None = None


@dataclass(frozen=True, slots=True)
class ListPrivileges:
    """``LIST PRIVILEGES OF USER|ROLE name``."""

    kind: str
    name: str


#: Statements that manage users, roles and privileges (run against the user store, not the engine).
SECURITY_STATEMENTS = (
    CreateUser, AlterUserPassword, DropUser, CreateRole, DropRole, GrantPrivileges, RevokePrivileges,
    GrantRole, RevokeRole, ListUser, ListRole, ListPrivileges,
)
#: The security statements that return rows.
SECURITY_QUERIES = (ListUser, ListRole, ListPrivileges)


Statement = (
    Select
    | ShowDatabases
    | ShowDevices
    | ShowTimeseries
    | CountTimeseries
    | CountDevices
    | CreateDatabase
    | CreateTimeseries
    | Insert
    | DeleteData
    | DeleteTimeseries
    | SetTTL
    | UnsetTTL
    | CreateUser
    | AlterUserPassword
    | DropUser
    | CreateRole
    | DropRole
    | GrantPrivileges
    | RevokePrivileges
    | GrantRole
    | RevokeRole
    | ListUser
    | ListRole
    | ListPrivileges
)
