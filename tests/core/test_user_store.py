"""The user file as several processes share it: reloads, change notices, migration, the CLI's guard."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iotdb_core.auth import USERS_FILE, UserStore, hash_password
from iotdb_core.authz import Privilege


def iotdb(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def wait_until(predicate: object, timeout: float = 1.0) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_changes_by_another_process_apply_within_a_second(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    store.add("dev", "first-pw")
    assert store.verify("dev", "first-pw")  # remembered from now on
    changes: list[frozenset[str]] = []
    store.on_change(changes.append)
    store.watch()
    try:
        changed = iotdb("user", "--data-dir", str(tmp_path), "passwd", "dev", "--password-stdin", stdin="second\n")
        assert changed.returncode == 0, changed.stderr
        wait_until(lambda: not store.verify("dev", "first-pw"))
        assert store.verify("dev", "second")
        assert frozenset({"dev"}) in changes
        added = iotdb("user", "add", "--data-dir", str(tmp_path), "other", "--password-stdin", stdin="other-pw\n")
        assert added.returncode == 0, added.stderr
        wait_until(lambda: store.verify("other", "other-pw"))
        assert iotdb("user", "delete", "dev", "--data-dir", str(tmp_path)).returncode == 0
        wait_until(lambda: "dev" not in store.names())
        assert frozenset({"dev"}) in changes[-1:]
    finally:
        store.close()


def test_changes_of_two_processes_are_not_lost(tmp_path: Path) -> None:
    """Each change reloads the file under the lock first: another writer's change survives."""
    server_side = UserStore.open(tmp_path)
    cli_side = UserStore(tmp_path)
    cli_side.add("from-cli", "cli-pass")
    server_side.add("from-server", "srv-pass")  # without a refresh in between
    assert UserStore(tmp_path).names() == ["from-cli", "from-server", "root"]


def test_a_corrupt_file_keeps_the_users_loaded_before(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = UserStore.open(tmp_path)
    store.add("dev", "dev-pass")
    store.watch(interval=0.02)
    try:
        with caplog.at_level(logging.ERROR, logger="iotdb.auth"):
            (tmp_path / USERS_FILE).write_text("{half written")
            wait_until(lambda: "is not a valid user file" in caplog.text)
        assert store.verify("dev", "dev-pass")
        assert caplog.text.count("is not a valid user file") == 1, "said once, not at every poll"
    finally:
        store.close()


def test_version_1_files_are_migrated_keeping_the_access_users_had(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    users = {"root": hash_password("root"), "sensor": hash_password("sensor-pw")}
    (tmp_path / USERS_FILE).write_text(json.dumps({"version": 1, "users": users}))
    with caplog.at_level(logging.WARNING, logger="iotdb.auth"):
        store = UserStore.open(tmp_path)
    assert "format version 1" in caplog.text and "sensor" in caplog.text
    assert store.verify("sensor", "sensor-pw")
    assert store.authorizer.can("sensor", Privilege.WRITE_DATA, "root.sg.d1.s1")
    assert store.authorizer.has_global("sensor", Privilege.MANAGE_USER)
    store.create_role("reader")
    saved = json.loads((tmp_path / USERS_FILE).read_text())
    assert saved["version"] == 2
    assert saved["roles"] == {"reader": {"privileges": {}}}
    assert "root.**" in saved["users"]["sensor"]["privileges"]


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / USERS_FILE).write_text(json.dumps({"version": 9, "users": {}}))
    result = iotdb("user", "--data-dir", str(tmp_path), "list")
    assert result.returncode == 2
    assert "format version 9 is newer" in result.stderr


def test_the_cli_refuses_a_directory_without_a_database(tmp_path: Path) -> None:
    mistyped = tmp_path / "dtaa"
    result = iotdb("user", "--data-dir", str(mistyped), "list")
    assert result.returncode == 2
    assert "holds no database" in result.stderr and "--create" in result.stderr
    assert not mistyped.exists()
    created = iotdb("user", "list", "--create", "--data-dir", str(mistyped))
    assert created.returncode == 0, created.stderr
    assert created.stdout.split() == ["root"]


def test_concurrent_verifies_and_changes_stay_consistent(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    store.add("dev", "pass-0")
    errors: list[str] = []

    def verify() -> None:
        for _ in range(50):
            if not (store.verify("dev", "pass-0") or store.verify("dev", "pass-1")):
                errors.append("neither password worked")

    thread = threading.Thread(target=verify)
    thread.start()
    store.set_password("dev", "pass-1")
    thread.join()
    assert not errors
    assert not store.verify("dev", "pass-0")
