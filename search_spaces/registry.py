"""The built-in spaces, and lookup of a space by name or by file path."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from search_spaces.errors import SpaceError
from search_spaces.io import load_space
from search_spaces.spec import Space

__all__ = ["DEFAULT_SPACE", "SPACE_NAMES", "get_space"]

_BUILTIN = Path(__file__).with_name("builtin")
SPACE_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in _BUILTIN.glob("*.yaml")))
DEFAULT_SPACE = "mbv3-28"


@lru_cache(maxsize=None)
def _builtin(name: str) -> Space:
    return load_space(_BUILTIN / f"{name}.yaml")


def get_space(name_or_path: str | Path) -> Space:
    """A built-in space by name, or a user's space from a YAML/JSON file."""
    text = str(name_or_path)
    if text in SPACE_NAMES:
        return _builtin(text)
    if text.endswith((".yaml", ".yml", ".json")) or Path(text).exists():
        return load_space(text)
    raise SpaceError(
        f"unknown space {text!r}; choose one of {', '.join(SPACE_NAMES)} or give a .yaml/.json file"
    )
