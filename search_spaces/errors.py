"""Errors raised for malformed spaces and architectures."""

from __future__ import annotations

__all__ = ["ArchError", "SpaceError", "first_line"]


class SpaceError(ValueError):
    """A space definition is malformed; the message names the field."""


class ArchError(ValueError):
    """An architecture does not belong to a space; the message names the field."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), at most
    300 characters: what a one-line error message quotes of a low-level failure."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
