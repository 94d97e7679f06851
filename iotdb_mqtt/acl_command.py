"""``iotdb acl list|grant|revoke``: the MQTT topic rules of a data directory (see :mod:`iotdb_mqtt.acl`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from iotdb_core.cli.arguments import add_data_dir_argument, settings_from
from iotdb_mqtt.acl import ACCESS_KINDS, ANONYMOUS, AclError, TopicAcl


def register(subparsers: Any) -> None:
    """Add the subcommand and its actions."""
    parser = subparsers.add_parser(
        "acl", help="list, grant or revoke MQTT topic access",
        description="Manage which MQTT topics each user may publish to (write) and subscribe to (read). root may "
        "use every topic; any other user only what is granted. Patterns are topic filters in which %u stands "
        f"for the user name and %c for the client id; the user {ANONYMOUS!r} holds the rules of clients "
        "without a user name. A running server applies changes within a second.",
    )
    _add_location(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the rules", description="Show the rules, of one user or all.")
    listing.add_argument("user", nargs="?", help="only this user's rules")
    _add_location(listing)
    grant = actions.add_parser("grant", help="allow a user a topic pattern",
                               description="Allow USER to read, write or readwrite topics matching PATTERN.")
    grant.add_argument("user", help=f"user name, or {ANONYMOUS}")
    grant.add_argument("access", choices=ACCESS_KINDS, help="read: subscribe; write: publish; readwrite: both")
    grant.add_argument("pattern", help="topic filter, e.g. 'devices/%%u/#'")
    _add_location(grant)
    revoke = actions.add_parser("revoke", help="remove a rule", description="Remove USER's rule on PATTERN.")
    revoke.add_argument("user")
    revoke.add_argument("pattern")
    _add_location(revoke)
    parser.set_defaults(handler=run)


def _add_location(parser: Any) -> None:
    """``--config`` and ``--data-dir``, accepted before and after the action."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="properties file, or a conf directory holding one")
    add_data_dir_argument(parser, "data directory (overrides data_dir)")


def run(args: argparse.Namespace) -> int:
    """Carry out the requested action."""
    data_dir = Path(settings_from(args).data_dir)
    if not data_dir.is_dir():
        raise AclError(f"data directory {data_dir} does not exist (give --data-dir or --config)")
    acl = TopicAcl(data_dir)
    if args.action == "list":
        users = [args.user] if args.user else acl.users()
        for user in users:
            for rule in acl.rules_of(user):
                print(f"{user}\t{rule.access}\t{rule.pattern}")
        return 0
    if args.action == "grant":
        acl.grant(args.user, args.access, args.pattern)
        print(f"granted {args.access} on {args.pattern!r} to {args.user!r}")
        return 0
    if not acl.revoke(args.user, args.pattern):
        raise AclError(f"{args.user!r} has no rule on {args.pattern!r}")
    print(f"revoked {args.user!r}'s rule on {args.pattern!r}")
    return 0
