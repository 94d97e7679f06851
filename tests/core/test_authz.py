"""The authorizer: pattern matching against a simple model, privileges of users and roles, and its caches."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotdb_core.auth import AuthError, UserStore
from iotdb_core.authz import AccessDenied, Privilege, covers, matches, overlaps, parse_pattern
from iotdb_core.formatter import Row

NODES = st.sampled_from(["a", "b", "c"])
PATTERN_NODES = st.sampled_from(["a", "b", "c", "*", "**"])
paths = st.lists(NODES, min_size=1, max_size=5).map(lambda nodes: ("root", *nodes))
patterns = st.lists(PATTERN_NODES, min_size=1, max_size=4).map(lambda nodes: ("root", *nodes))


def model_matches(pattern: tuple[str, ...], nodes: tuple[str, ...]) -> bool:
    """The reference: a pattern as a regular expression over the dotted path."""
    parts = {"*": r"[^.]+", "**": r"[^.]+(?:\.[^.]+)*"}
    regex = r"\.".join(parts.get(node, re.escape(node)) for node in pattern)
    return re.fullmatch(regex, ".".join(nodes)) is not None


def all_paths(max_depth: int = 6) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [("root",)]
    frontier: list[tuple[str, ...]] = [("root",)]
    for _ in range(max_depth):
        frontier = [(*path, node) for path in frontier for node in ("a", "b", "c", "d")]
        found.extend(frontier)
    return found


UNIVERSE = all_paths(5)
SUFFIXES = all_paths(4)


@given(patterns, paths)
def test_matches_agrees_with_the_regular_expression_model(pattern: tuple[str, ...], path: tuple[str, ...]) -> None:
    assert matches(pattern, path) == model_matches(pattern, path)


@settings(max_examples=200)
@given(patterns, patterns)
def test_covers_is_sound(outer: tuple[str, ...], inner: tuple[str, ...]) -> None:
    """Whenever covers() says so, every path the inner pattern matches is matched by the outer one."""
    if covers(outer, inner):
        assert all(model_matches(outer, path) for path in UNIVERSE if model_matches(inner, path))


def test_covers_recognises_the_usual_cases() -> None:
    assert covers(parse_pattern("root.**"), parse_pattern("root.sg.*.temp"))
    assert covers(parse_pattern("root.sg.**"), parse_pattern("root.sg.d1"))
    assert covers(parse_pattern("root.sg.*.temp"), parse_pattern("root.sg.d1.temp"))
    assert not covers(parse_pattern("root.sg.d1.**"), parse_pattern("root.sg.**"))
    assert not covers(parse_pattern("root.*.**"), parse_pattern("root.**"))


@settings(max_examples=200)
@given(patterns, st.lists(NODES, min_size=1, max_size=3).map(lambda nodes: ("root", *nodes)))
def test_overlaps_agrees_with_a_search_below_the_prefix(pattern: tuple[str, ...], prefix: tuple[str, ...]) -> None:
    # A match below the prefix, if any, needs no more extra nodes than the pattern has nodes.
    below = [(*prefix, *suffix[1:]) for suffix in SUFFIXES]
    assert overlaps(pattern, prefix) == any(model_matches(pattern, path) for path in below)


def test_parse_pattern_canonicalises_and_refuses_bad_ones() -> None:
    assert parse_pattern("root.sg.`d1`.**") == ("root", "sg", "d1", "**")
    with pytest.raises(ValueError, match="must start with 'root'"):
        parse_pattern("sg.d1")


# ------------------------------------------------------------------------------------ users and roles


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    users = UserStore.open(tmp_path)
    users.add("alice", "alice-pw")
    return users


def test_a_new_user_holds_nothing_and_root_everything(store: UserStore) -> None:
    can = store.authorizer.can
    assert not can("alice", Privilege.READ_DATA, "root.sg.d1.s1")
    assert not store.authorizer.has_global("alice", Privilege.MANAGE_USER)
    assert can("root", Privilege.WRITE_SCHEMA, "root.any.thing")
    assert store.authorizer.has_global("root", Privilege.MANAGE_USER)
    assert not can(None, Privilege.READ_DATA, "root.sg.d1.s1")


def test_grants_on_patterns_and_through_roles(store: UserStore) -> None:
    can = store.authorizer.can
    store.grant("user", "alice", [Privilege.READ_DATA], ["root.sg.*.temp"])
    assert can("alice", Privilege.READ_DATA, "root.sg.d1.temp")
    assert not can("alice", Privilege.READ_DATA, "root.sg.d1.hum")
    assert not can("alice", Privilege.WRITE_DATA, "root.sg.d1.temp")
    store.create_role("writer")
    store.grant("role", "writer", [Privilege.WRITE_DATA], ["root.sg.d2.**"])
    store.grant_role("writer", "alice")
    assert can("alice", Privilege.WRITE_DATA, "root.sg.d2.x.y")
    assert can("alice", Privilege.READ_DATA, "root.sg.d2.x"), "WRITE_DATA also reads, as in IoTDB"
    store.revoke_role("writer", "alice")
    assert not can("alice", Privilege.WRITE_DATA, "root.sg.d2.x.y")
    store.grant_role("writer", "alice")
    store.drop_role("writer")
    assert not can("alice", Privilege.WRITE_DATA, "root.sg.d2.x.y")
    assert store.roles_of("alice") == []


def test_revoke_clears_every_grant_within_the_pattern(store: UserStore) -> None:
    store.grant("user", "alice", [Privilege.READ_DATA, Privilege.WRITE_DATA], ["root.sg.d1", "root.sg.d2.**"])
    store.grant("user", "alice", [Privilege.READ_DATA], ["root.other.**"])
    store.revoke("user", "alice", [Privilege.READ_DATA, Privilege.WRITE_DATA], ["root.sg.**"])
    assert list(store.principal("user", "alice").grants) == ["root.other.**"]


def test_global_privileges_hold_on_root_only_and_root_is_fixed(store: UserStore) -> None:
    with pytest.raises(AuthError, match=r"granted on root\.\*\* only"):
        store.grant("user", "alice", [Privilege.MANAGE_USER], ["root.sg.**"])
    store.grant("user", "alice", [Privilege.MANAGE_USER], ["root.**"])
    assert store.authorizer.has_global("alice", Privilege.MANAGE_USER)
    with pytest.raises(AuthError, match="fixed"):
        store.revoke("user", "root", [Privilege.READ_DATA], ["root.**"])
    with pytest.raises(AuthError, match="administrator") as raised:
        store.delete("root")
    assert raised.value.code == 814


def test_check_names_the_privilege_and_paths_as_iotdb(store: UserStore) -> None:
    with pytest.raises(AccessDenied) as raised:
        store.authorizer.check("alice", Privilege.WRITE_DATA, ["root.ln.wf01.wt01.status"])
    assert raised.value.code == 803
    assert str(raised.value) == (
        "No permissions for this operation, please add privilege WRITE_DATA on [root.ln.wf01.wt01.status]"
    )


def test_the_cache_follows_every_change(store: UserStore) -> None:
    can = store.authorizer.can
    assert not can("alice", Privilege.READ_DATA, "root.sg.d1.s1")
    store.grant("user", "alice", [Privilege.READ_DATA], ["root.sg.**"])
    assert can("alice", Privilege.READ_DATA, "root.sg.d1.s1")
    store.revoke("user", "alice", [Privilege.READ_DATA], ["root.**"])
    assert not can("alice", Privilege.READ_DATA, "root.sg.d1.s1")


def test_writable_rows_trims_rows_to_what_the_user_may_write(store: UserStore) -> None:
    store.grant("user", "alice", [Privilege.WRITE_DATA], ["root.sg.*.temp", "root.sg.d2.**"])
    rows = [
        Row("root.sg.d1", 1, ("temp", "hum"), (1.0, 2.0)),
        Row("root.sg.d2", 1, ("x",), (3.0,)),
        Row("root.sg.d3", 1, ("hum",), (4.0,)),
    ]
    kept, refused = store.authorizer.writable_rows("alice", rows)
    assert kept == [Row("root.sg.d1", 1, ("temp",), (1.0,)), Row("root.sg.d2", 1, ("x",), (3.0,))]
    assert refused == ["root.sg.d1.hum", "root.sg.d3.hum"]
    assert store.authorizer.writable_rows("root", rows) == (rows, [])


def test_the_authorizer_is_importable_without_the_storage_engine() -> None:
    code = ("import sys, iotdb_core.auth, iotdb_core.authz; "
            "print(any(m.startswith('iotdb_core.storage') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
