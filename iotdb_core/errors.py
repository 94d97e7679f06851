"""The exceptions the core raises to its callers; each message says what was wrong and where."""

from __future__ import annotations


class IoTDBError(Exception):
    """Base of every error this project reports to a user instead of a traceback."""


class ConfigError(IoTDBError):
    """The configuration cannot be used: a bad value, a bad file, or an unusable plugin choice."""


class PluginError(IoTDBError):
    """A plugin or payload formatter could not be loaded or registered."""


class FormatError(IoTDBError):
    """A payload formatter rejected a payload; the message says what is wrong and where in the payload."""
