"""Errors raised for malformed spaces and architectures."""

from __future__ import annotations

__all__ = ["ArchError", "SpaceError"]


class SpaceError(ValueError):
    """A space definition is malformed; the message names the field."""


class ArchError(ValueError):
    """An architecture does not belong to a space; the message names the field."""
