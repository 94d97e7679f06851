"""Arguments several subcommands share: where the configuration and the data directory are."""

from __future__ import annotations

import argparse
from typing import Any

from iotdb_core.config import Settings, load_settings, resolve_config_path


def add_location_arguments(parser: Any, *, data_dir: bool = True) -> None:
    """Add ``--config`` and (unless ``data_dir`` is False) ``--data-dir``."""
    parser.add_argument("--config", metavar="PATH", help="properties file, or a conf directory holding one")
    if data_dir:
        add_data_dir_argument(parser, "data directory (overrides data_dir)")


def add_data_dir_argument(parser: Any, help_text: str) -> None:
    """Add ``--data-dir`` with no default, so a value given before the subcommand (``iotdb --data-dir D
    query ...``) is not overwritten; the parser's commands are marked as taking one."""
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help=help_text)
    parser.set_defaults(takes_data_dir=True)


def data_dir_override(args: argparse.Namespace) -> dict[str, str]:
    """``{"data_dir": ...}`` when ``--data-dir`` was given, for ``load_settings``/``configure`` overrides."""
    value = getattr(args, "data_dir", None)
    return {"data_dir": value} if value else {}


def settings_from(args: argparse.Namespace) -> Settings:
    """The core settings named by ``--config`` and ``--data-dir`` (no plugins loaded)."""
    return load_settings(resolve_config_path(getattr(args, "config", None)), overrides=data_dir_override(args))
