"""Errors that describe bad user input.

The CLI turns every :class:`UserError` into one line on stderr and exit code 2; library callers
can catch them to tell input mistakes apart from bugs.
"""

from __future__ import annotations

from search_spaces.errors import first_line

__all__ = ["DataError", "NoSubnetMeets", "UserError", "first_line"]


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it."""


class DataError(UserError):
    """A data set is missing, empty, corrupt or of the wrong shape."""


class NoSubnetMeets(UserError):
    """No subnet of the space meets the targets with these measurement settings (runtime,
    threads, batch): predicted, or when measured."""
