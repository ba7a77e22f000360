"""Portable predictor files: JSON only, refit on load, never unpickled.

A file holds the predictor's kind, the space it was built for (as a dictionary), the
measurement settings, machine and library versions of its targets, and the predictor's own
:meth:`to_dict` (hyper-parameters, seed and training data). :func:`load_predictor` refits from
that data, deterministically, so a loaded predictor predicts exactly what the saved one did.
Files are written atomically (:func:`nas.files.atomic_write_text`).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.errors import UserError, first_line
from nas.files import atomic_write_text
from nas.measure import library_versions, machine_info
from nas.predictors.analytical import FlopsPredictor, ParamsPredictor
from nas.predictors.base import Predictor
from nas.predictors.learned import AccuracyPredictor, LearnedPredictor
from nas.predictors.records import same_machine
from nas.predictors.table import LatencyTable
from search_spaces import ArchError, Space, SpaceError, space_from_dict, space_to_dict

__all__ = [
    "FORMAT",
    "PREDICTOR_KINDS",
    "MachineMismatchWarning",
    "load_predictor",
    "save_predictor",
]

logger = logging.getLogger(__name__)
FORMAT = "nas-predictor"
_VERSION = 1
PREDICTOR_KINDS: Mapping[str, type[Predictor]] = {
    cls.kind: cls
    for cls in (FlopsPredictor, ParamsPredictor, LatencyTable, LearnedPredictor, AccuracyPredictor)
}


class MachineMismatchWarning(UserWarning):
    """A latency predictor is used on another machine than the one its data was measured on."""


def _describe(machine: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in machine.items())


def save_predictor(
    predictor: Predictor,
    path: str | Path,
    *,
    settings: Mapping[str, Any] | None = None,
    machine: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
) -> Path:
    """Write ``predictor`` as JSON to ``path`` atomically; returns the path.

    ``settings``, ``machine`` and ``versions`` describe how the targets were measured; by default
    a lookup table's own (from its records), else for latency predictors this machine and these
    library versions, and for accuracy predictors no machine.
    """
    file = Path(path)
    latency = predictor.target == "latency"
    payload = {
        "format": FORMAT,
        "version": _VERSION,
        "kind": predictor.kind,
        "space": space_to_dict(predictor.space),
        "settings": dict(settings or getattr(predictor, "settings", None) or {}),
        "machine": dict(
            machine or getattr(predictor, "machine", None) or (machine_info() if latency else {})
        ),
        "versions": dict(versions or getattr(predictor, "versions", None) or library_versions()),
        "predictor": predictor.to_dict(),
    }
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    try:
        atomic_write_text(file, text)
    except OSError as exc:
        raise UserError(f"cannot write predictor file {file}: {exc.strerror or exc}") from None
    logger.info("saved %s predictor to %s", predictor.kind, file)
    return file


def _plain(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(data))


def _check_space(file: Path, saved: Any, space: Space | None) -> Space:
    if not isinstance(saved, Mapping):
        raise UserError(f"predictor file {file} has no space definition")
    if space is None:
        try:
            return space_from_dict(saved)
        except SpaceError as exc:
            raise UserError(f"predictor file {file} has a bad space: {first_line(exc)}") from None
    if _plain(space_to_dict(space)) != _plain(saved):
        name = saved.get("name")
        if name == space.name:
            raise UserError(
                f"predictor file {file} was built for another definition of space {name!r}; "
                "refit it for this space"
            )
        raise UserError(
            f"predictor file {file} was built for space {name!r}, not {space.name!r}; "
            "load it with that space or refit"
        )
    return space


def load_predictor(path: str | Path, space: Space | None = None) -> Predictor:
    """Read a predictor file and refit the predictor from the data it holds.

    Raises :class:`UserError` for a missing, unreadable, non-JSON or corrupt file, an unknown
    kind, or a file built for another space than ``space`` (when given). Warns with
    :class:`MachineMismatchWarning` when a latency predictor's data comes from another machine.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read predictor file {file}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = first_line(exc)
        raise UserError(f"{file} is not a predictor file (not valid JSON: {reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f'{file} is not a predictor file (no "format": "{FORMAT}")')
    if data.get("version") != _VERSION:
        raise UserError(
            f"{file} is a version {data.get('version')!r} predictor file; "
            f"this toolkit reads version {_VERSION}"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in PREDICTOR_KINDS:
        raise UserError(
            f"{file} holds an unknown predictor kind {kind!r}; known kinds: "
            f"{', '.join(PREDICTOR_KINDS)}"
        )
    space = _check_space(file, data.get("space"), space)
    saved_machine = data.get("machine") or {}
    here = machine_info()
    if (
        isinstance(saved_machine, Mapping)
        and saved_machine
        and not same_machine(saved_machine, here)
    ):
        message = (
            f"predictor {file} was fit to measurements from another machine "
            f"({_describe(saved_machine)}); this machine is ({_describe(here)}); "
            "its latency predictions may not hold here"
        )
        warnings.warn(message, MachineMismatchWarning, stacklevel=2)
    try:
        return PREDICTOR_KINDS[kind].from_dict(data["predictor"], space)
    except UserError as exc:
        raise UserError(f"predictor file {file}: {first_line(exc)}") from None
    except (KeyError, TypeError, ValueError, AttributeError, ArchError) as exc:
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        raise UserError(f"predictor file {file} is corrupt ({reason})") from None
