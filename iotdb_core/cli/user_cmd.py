"""``iotdb user add|passwd|delete|list``: manage the users of a data directory."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from iotdb_core.auth import AuthError, UserStore
from iotdb_core.cli.arguments import add_location_arguments, settings_from


def register(subparsers: Any) -> None:
    """Add the subcommand and its actions."""
    parser = subparsers.add_parser(
        "user", help="add, change, delete or list users",
        description="Manage the users who may connect over MQTT and REST. Passwords are stored as salted "
        "scrypt hashes in <data_dir>/users.json. The first start creates root/root.",
    )
    add_location_arguments(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("add", "create a user"), ("passwd", "change a user's password")):
        action = actions.add_parser(name, help=help_text, description=help_text.capitalize() + ".")
        action.add_argument("name", help="user name")
        action.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of standard input")
    delete = actions.add_parser("delete", help="delete a user", description="Delete a user.")
    delete.add_argument("name", help="user name")
    actions.add_parser("list", help="list user names", description="List user names.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Carry out the requested action."""
    settings = settings_from(args)
    store = UserStore.open(Path(settings.data_dir))
    if args.action == "list":
        for name in store.names():
            print(name)
        return 0
    if args.action == "delete":
        store.delete(args.name)
        print(f"deleted user {args.name!r}")
        return 0
    password = _read_password(args.password_stdin)
    if args.action == "add":
        store.add(args.name, password)
        print(f"added user {args.name!r}")
    else:
        store.set_password(args.name, password)
        print(f"changed the password of {args.name!r}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AuthError("no terminal to ask for the password; pass --password-stdin and pipe it in")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise AuthError("the two passwords differ")
    return first
