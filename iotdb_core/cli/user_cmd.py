"""``iotdb user add|passwd|delete|list``: manage the users of a data directory.

A running server notices the change within a second (it watches ``users.json``). The command refuses a
directory that holds no database — a mistyped ``--data-dir`` must not quietly get a fresh ``root``/``root`` —
unless ``--create`` is given.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from iotdb_core.auth import USERS_FILE, AuthError, UserStore
from iotdb_core.cli.arguments import add_data_dir_argument, settings_from


def register(subparsers: Any) -> None:
    """Add the subcommand and its actions."""
    parser = subparsers.add_parser(
        "user", help="add, change, delete or list users",
        description="Manage the users who may connect over MQTT and REST. Passwords are stored as salted "
        "scrypt hashes in <data_dir>/users.json; a running server applies changes within a second. The first "
        "start of `iotdb serve` creates root/root. Roles and privileges are managed with SQL (GRANT, REVOKE).",
    )
    _add_common(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("add", "create a user (with no privileges)"), ("passwd", "change a user's password")):
        action = actions.add_parser(name, help=help_text, description=help_text.capitalize() + ".")
        action.add_argument("name", help="user name")
        action.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of standard input")
        _add_common(action)
    delete = actions.add_parser("delete", help="delete a user", description="Delete a user.")
    delete.add_argument("name", help="user name")
    _add_common(delete)
    _add_common(actions.add_parser("list", help="list user names", description="List user names."))
    parser.set_defaults(handler=run)


def _add_common(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--data-dir`` and ``--create``, accepted before and after the action."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="properties file, or a conf directory holding one")
    add_data_dir_argument(parser, "data directory (overrides data_dir)")
    parser.add_argument("--create", action="store_true", default=argparse.SUPPRESS,
                        help="start a user file in a directory that holds no database yet")


def run(args: argparse.Namespace) -> int:
    """Carry out the requested action."""
    settings = settings_from(args)
    password = _read_password(args.password_stdin) if args.action in ("add", "passwd") else ""
    store = _open(Path(settings.data_dir), create=getattr(args, "create", False))
    if args.action == "list":
        for name in store.names():
            print(name)
        return 0
    if args.action == "delete":
        store.delete(args.name)
        print(f"deleted user {args.name!r}")
        return 0
    if args.action == "add":
        store.add(args.name, password)
        print(f"added user {args.name!r} (no privileges yet: GRANT them with SQL as root)")
    else:
        store.set_password(args.name, password)
        print(f"changed the password of {args.name!r}")
    return 0


def _holds_database(data_dir: Path) -> bool:
    from iotdb_core.storage.manifest import MANIFEST  # noqa: PLC0415
    from iotdb_core.storage.recovery import WAL_DIR  # noqa: PLC0415 - the engine's layout, only for this check

    return (data_dir / USERS_FILE).is_file() or (data_dir / MANIFEST).is_file() or (data_dir / WAL_DIR).is_dir()


def _open(data_dir: Path, *, create: bool) -> UserStore:
    if not create and not _holds_database(data_dir):
        raise AuthError(
            f"{data_dir.resolve()} holds no database (no {USERS_FILE}); check --data-dir or data_dir, "
            "or pass --create to start a user file there"
        )
    return UserStore.open(data_dir)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AuthError("no terminal to ask for the password; pass --password-stdin and pipe it in")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise AuthError("the two passwords differ")
    return first
