"""Spaces to and from plain dictionaries, JSON and YAML files.

The built-in spaces are YAML files read by the same code as a user's own, so every space is
defined once, by data, and validated the same way. A stage's ``precision`` is written only when
it is not the default fp32-only choice, so the dictionary (and any digest of it) of a space
without precision choices is as it was before precision existed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from search_spaces.errors import SpaceError, first_line
from search_spaces.spec import Choice, HeadSpec, Space, StageSpec, StemSpec

__all__ = ["load_space", "save_space", "space_from_dict", "space_to_dict"]


def _plain(value: Any) -> Any:
    if isinstance(value, Choice):
        return list(value.values)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def space_to_dict(space: Space) -> dict[str, Any]:
    """A JSON- and YAML-ready dictionary; :func:`space_from_dict` inverts it exactly."""
    data: dict[str, Any] = _plain(space)
    for spec, stage in zip(space.stages, data["stages"], strict=True):
        if not spec.has_precision:
            del stage["precision"]
        if not spec.has_block_type:
            del stage["block_type"]
        for name in ("se", "activation"):  # one value: a scalar, as before choices existed
            if len(stage[name]) == 1:
                stage[name] = stage[name][0]
    return data


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpaceError(f"{where} has unknown keys {unknown}; allowed: {sorted(fields)}")
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise SpaceError(f"{where} is missing {missing}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        field_type = str(fields[name].type)
        if field_type == "Choice":
            if not isinstance(value, (list, tuple)):
                value = [value]
            try:
                value = Choice(tuple(value))
            except SpaceError as exc:
                raise SpaceError(f"{where}.{name}: {exc}") from None
        values[name] = value
    return cls(**values)


def space_from_dict(data: Mapping[str, Any]) -> Space:
    """Build and validate a space; errors name the offending field."""
    if not isinstance(data, Mapping):
        raise SpaceError(f"a space must be a mapping, got {type(data).__name__}")
    fields = dict(data)
    if "stages" in fields:
        stages = fields["stages"]
        if not isinstance(stages, (list, tuple)):
            raise SpaceError("space.stages must be a list of stage mappings")
        fields["stages"] = tuple(_build(StageSpec, s, f"stages[{i}]") for i, s in enumerate(stages))
    if "stem" in fields:
        fields["stem"] = _build(StemSpec, fields["stem"], "stem")
    if "head" in fields:
        fields["head"] = _build(HeadSpec, fields["head"], "head")
    try:
        space: Space = _build(Space, fields, "space")
    except TypeError as exc:
        raise SpaceError(f"space: {exc}") from None
    return space


def load_space(path: str | Path) -> Space:
    """Read a space from a ``.yaml``/``.yml`` or ``.json`` file."""
    file = Path(path)
    if not file.is_file():
        raise SpaceError(f"space file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        reason = first_line(exc)
        raise SpaceError(f"space file {file} cannot be read as JSON/YAML: {reason}") from None
    try:
        return space_from_dict(data)
    except SpaceError as exc:
        raise SpaceError(f"space file {file}: {exc}") from None


def save_space(space: Space, path: str | Path) -> None:
    """Write a space as JSON or YAML (by suffix), atomically."""
    file = Path(path)
    data = space_to_dict(space)
    if file.suffix == ".json":
        text = json.dumps(data, indent=2)
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    temporary = file.with_name(file.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(file)
