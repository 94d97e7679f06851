"""Users: salted hashes on disk, the default user, and the `iotdb user` command."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from iotdb_core.auth import USERS_FILE, AuthError, UserStore


def test_first_open_creates_root_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="iotdb.auth"):
        store = UserStore.open(tmp_path)
    assert store.names() == ["root"]
    assert store.verify("root", "root")
    assert "default password" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="iotdb.auth"):
        UserStore.open(tmp_path)
    assert caplog.text == ""


def test_passwords_are_salted_hashes_never_plain_text(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    store.add("device1", "s3cret-pass")
    store.add("device2", "s3cret-pass")
    raw = (tmp_path / USERS_FILE).read_text()
    assert "s3cret-pass" not in raw
    users = json.loads(raw)["users"]
    assert users["device1"]["scheme"] == "scrypt"
    assert users["device1"]["salt"] != users["device2"]["salt"]
    assert users["device1"]["hash"] != users["device2"]["hash"]


def test_verify_rejects_wrong_unknown_and_missing_credentials(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    store.add("dev", "right-one")
    assert store.verify("dev", "right-one")
    assert store.verify("dev", b"right-one")
    assert store.verify("dev", "right-one")
    assert not store.verify("dev", "wrong-one")
    assert not store.verify("nobody", "right-one")
    assert not store.verify("dev", None)
    assert not store.verify(None, "right-one")
    assert not store.verify("dev", b"\xff\xfe")


def test_password_change_invalidates_the_old_password(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    assert store.verify("root", "root")
    store.set_password("root", "a-better-one")
    assert not store.verify("root", "root")
    assert UserStore.open(tmp_path).verify("root", "a-better-one")


def test_invalid_requests_say_what_is_wrong(tmp_path: Path) -> None:
    store = UserStore.open(tmp_path)
    with pytest.raises(AuthError, match="already exists"):
        store.add("root", "whatever")
    with pytest.raises(AuthError, match="4 to 256 characters"):
        store.add("dev", "abc")
    with pytest.raises(AuthError, match="user name 'a b'"):
        store.add("a b", "long-enough")
    with pytest.raises(AuthError, match="no user named 'ghost'"):
        store.delete("ghost")
    with pytest.raises(AuthError, match="only user"):
        store.delete("root")


def test_corrupt_user_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / USERS_FILE).write_text("{not json")
    with pytest.raises(AuthError, match="is not a valid user file"):
        UserStore.open(tmp_path)


def iotdb(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iotdb_core.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_user_command_round_trip(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = iotdb("user", "--data-dir", data, "--create", "add", "sensor", "--password-stdin", stdin="pass-word\n")
    assert added.returncode == 0, added.stderr
    listed = iotdb("user", "--data-dir", data, "list")
    assert listed.stdout.split() == ["root", "sensor"]
    assert UserStore.open(Path(data)).verify("sensor", "pass-word")
    changed = iotdb("user", "--data-dir", data, "passwd", "sensor", "--password-stdin", stdin="new-word\n")
    assert changed.returncode == 0
    assert UserStore.open(Path(data)).verify("sensor", "new-word")
    deleted = iotdb("user", "--data-dir", data, "delete", "sensor")
    assert deleted.returncode == 0
    assert iotdb("user", "--data-dir", data, "list").stdout.split() == ["root"]


def test_user_command_without_terminal_or_stdin_flag_explains(tmp_path: Path) -> None:
    result = iotdb("user", "--data-dir", str(tmp_path), "add", "x1234")
    assert result.returncode == 2
    assert "pass --password-stdin" in result.stderr
    assert "Traceback" not in result.stderr
