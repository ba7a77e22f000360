"""Supernet checkpoints: safetensors weights plus a JSON description; loading never unpickles.

A checkpoint directory holds ``checkpoint.json`` (format, space, schedule, training config,
completed epochs, per-epoch history, library versions, and the names of the weight files) and
the safetensors files it names. Each save writes new weight files first and replaces
``checkpoint.json`` last, by rename, so a run killed at any moment leaves the previous complete
checkpoint in place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from nas.errors import UserError, first_line
from nas.files import atomic_write_json, temporary_path
from nas.measure import library_versions
from nas.supernet import Supernet
from search_spaces import Space, SpaceError, space_from_dict, space_to_dict, subspace_problem

__all__ = [
    "CHECKPOINT_FILE",
    "FORMAT",
    "Checkpoint",
    "init_weights",
    "load_checkpoint",
    "load_supernet",
    "load_weights",
    "save_checkpoint",
    "supernet_from_weights",
]

logger = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.json"
FORMAT = "nas-supernet/1"


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    temporary = temporary_path(path)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(temporary))
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], Any]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            key = f"{index}/{name}"
            if torch.is_tensor(value):
                tensors[key] = value
            else:
                scalars[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], description: Any) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *description["scalars"].items()]:
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": description["param_groups"]}


class Checkpoint:
    """What a checkpoint directory holds, read without unpickling anything."""

    def __init__(self, directory: Path, metadata: dict[str, Any]) -> None:
        self.directory = directory
        self.metadata = metadata

    @property
    def space(self) -> Space:
        try:
            return space_from_dict(self.metadata["space"])
        except (KeyError, SpaceError) as exc:
            raise UserError(f"{self.directory / CHECKPOINT_FILE}: bad space: {exc}") from None

    @property
    def epoch(self) -> int:
        return int(self.metadata["epoch"])

    def weights(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        return self._tensors(self.metadata["weights"], device)

    def optimizer_state(self, device: torch.device | str = "cpu") -> dict[str, Any] | None:
        name = self.metadata.get("optimizer")
        if not name:
            return None
        return _optimizer_state(self._tensors(name, device), self.metadata["optimizer_state"])

    def _tensors(self, name: str, device: torch.device | str) -> dict[str, torch.Tensor]:
        path = self.directory / name
        if not path.is_file():
            raise UserError(f"{path}: missing; the checkpoint in {self.directory} is incomplete")
        try:
            return load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            reason = first_line(exc)
            raise UserError(f"{path}: not a readable safetensors file ({reason})") from None


def save_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    space: Space,
    epoch: int,
    extra: dict[str, Any],
) -> None:
    """Save ``model`` (and ``optimizer``) after ``epoch`` completed epochs, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    previous = _read_metadata(directory) if (directory / CHECKPOINT_FILE).exists() else None
    weights = f"weights-{epoch:04d}.safetensors"
    _save_tensors(model.state_dict(), directory / weights)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "epoch": epoch,
        "weights": weights,
        "space": space_to_dict(space),
        "versions": library_versions(),
        **extra,
    }
    if optimizer is not None:
        tensors, description = _optimizer_tensors(optimizer)
        metadata["optimizer"] = f"optimizer-{epoch:04d}.safetensors"
        metadata["optimizer_state"] = description
        _save_tensors(tensors, directory / metadata["optimizer"])
    atomic_write_json(directory / CHECKPOINT_FILE, metadata)
    if previous is not None:
        for key in ("weights", "optimizer"):
            stale = previous.get(key)
            if stale and stale != metadata.get(key):
                (directory / stale).unlink(missing_ok=True)
    logger.info("checkpoint after epoch %d saved in %s", epoch, directory)


def _read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(
            f"no checkpoint in {directory} ({CHECKPOINT_FILE} is missing); train one with "
            f"`nas train --out {directory}`"
        )
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = first_line(exc)
        raise UserError(f"{path}: corrupt checkpoint description ({reason})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise UserError(f"{path}: not a supernet checkpoint (expected format {FORMAT})")
    for key in ("epoch", "weights", "space"):
        if key not in metadata:
            raise UserError(f"{path}: corrupt checkpoint description (no {key!r})")
    return metadata


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read a checkpoint directory's description (weights are read on demand)."""
    path = Path(directory)
    return Checkpoint(path, _read_metadata(path))


def load_supernet(
    directory: str | Path, device: torch.device | str = "cpu", *, space: Space | None = None
) -> tuple[Any, Checkpoint]:
    """The trained :class:`~nas.supernet.Supernet` of a checkpoint directory, in eval mode.

    With ``space``, the supernet of that space: the checkpoint's own, or a sub-space of it
    (fewer precision or block-type choices, :func:`search_spaces.subspace_problem`) holding
    the part of the weights its modules use; any other space is a :class:`UserError`."""
    checkpoint = load_checkpoint(directory)
    target = checkpoint.space if space is None else space
    weights = checkpoint.weights(device)
    if target != checkpoint.space:
        problem = subspace_problem(target, checkpoint.space)
        if problem is not None:
            raise UserError(
                f"{checkpoint.directory} holds a supernet of space {checkpoint.space.name!r}, "
                f"which space {target.name!r} cannot use ({problem}); train one for it"
            )
    supernet = Supernet(target).to(device)
    if target != checkpoint.space:  # the sub-space's modules are a subset of the parent's
        expected = supernet.state_dict()
        weights = {key: value for key, value in weights.items() if key in expected}
    load_weights(supernet, weights, checkpoint.directory)
    return supernet.eval(), checkpoint


def init_weights(model: nn.Module, directory: str | Path, device: torch.device | str) -> None:
    """Start ``model`` (a supernet) from the trained supernet in ``directory``: of the same space,
    or of a space it narrows (fewer choices: fewer stages, say, as a few-shot split has). Each of
    the model's tensors is the parent's, or the leading channels of it where the parent has more
    (the channels a subnet of the parent uses: a 4-stage head reads the first 48 of the 64
    inputs); a tensor the parent lacks, or whose kernel differs, is a one-line error."""
    checkpoint = load_checkpoint(directory)
    weights = checkpoint.weights(device)
    expected = model.state_dict()
    picked: dict[str, torch.Tensor] = {}
    for key, tensor in expected.items():
        parent = weights.get(key)
        if parent is None or parent.dim() != tensor.dim():
            missing = "has no" if parent is None else "has another shape of"
            raise UserError(
                f"{checkpoint.directory}: the supernet there {missing} {key!r}; start from a "
                "supernet of this space or of one it narrows"
            )
        if parent.shape != tensor.shape:
            channels = min(2, tensor.dim())  # output and input channels; the rest is kernel
            wider = all(
                have >= want
                for have, want in zip(parent.shape[:channels], tensor.shape[:channels], strict=True)
            )
            if not wider or parent.shape[channels:] != tensor.shape[channels:]:
                raise UserError(
                    f"{checkpoint.directory}: {key!r} is {tuple(parent.shape)} there and "
                    f"{tuple(tensor.shape)} here; start from a supernet of this space or of one "
                    "it narrows (same kernels, at least as many channels)"
                )
            parent = parent[tuple(slice(0, size) for size in tensor.shape)]
        picked[key] = parent
    load_weights(model, picked, checkpoint.directory)


def supernet_from_weights(
    space: Space,
    weights: Mapping[str, torch.Tensor],
    device: torch.device | str = "cpu",
    *,
    where: str | Path = "the supernet's weights",
) -> Supernet:
    """A :class:`~nas.supernet.Supernet` of ``space`` holding ``weights`` (a state dict, as
    sent to Ray workers), on ``device``, in eval mode; ``where`` names the weights in errors."""
    supernet = Supernet(space).to(device)
    load_weights(supernet, weights, where)
    return supernet.eval()


def load_weights(
    model: nn.Module,
    weights: Mapping[str, torch.Tensor],
    source: str | Path,
    *,
    target: str = "the space's supernet",
) -> None:
    """Load ``weights`` strictly; missing, unexpected or reshaped keys are a one-line
    :class:`UserError` naming ``source`` and ``target``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
    details = []
    if missing:
        details.append(f"{len(missing)} missing key(s) (e.g. {missing[0]!r})")
    if unexpected:
        details.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[0]!r})")
    if wrong:
        key = wrong[0]
        details.append(
            f"{len(wrong)} of the wrong shape (e.g. {key!r}: {tuple(weights[key].shape)} in the "
            f"file, {tuple(expected[key].shape)} in the model)"
        )
    if details:
        raise UserError(f"{source}: weights do not match {target}: {'; '.join(details)}")
    model.load_state_dict(weights)
