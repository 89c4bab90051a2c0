"""User-facing errors.

Every error a user can cause with bad input (a malformed file, a wrong config value, an
unknown id) is raised as :class:`MfmrecError`. The CLI prints its message as one line
and exits with code 2, without a traceback; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class MfmrecError(Exception):
    """An error caused by the user's input; its message names the file/field/value."""

    exit_code = 2


class DataError(MfmrecError):
    """Bad data on disk: a malformed line, a missing file, a wrong column type."""


class ConfigError(MfmrecError):
    """A config field with a wrong type or value, or an unknown key."""


def located(path: object, message: str, line: int | None = None) -> str:
    """Format ``path[:line]: message`` as the one-line error text."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return f"{where}: {message}"
