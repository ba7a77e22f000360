"""A pytest-free ``raises``, so the conformance checks run under any test runner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["raises"]


@contextmanager
def raises(expected: type[BaseException], *, match: str) -> Iterator[None]:
    """Assert that the block raises ``expected`` with a message that ``re.search`` matches."""
    try:
        yield
    except expected as exc:
        if re.search(match, str(exc)) is None:
            raise AssertionError(
                f"{type(exc).__name__} raised, but its message {str(exc)!r} does not match "
                f"{match!r}"
            ) from exc
    else:
        raise AssertionError(f"{expected.__name__} not raised (expected a match of {match!r})")
