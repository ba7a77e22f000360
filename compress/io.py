"""What the compression commands share: a loaded model's input shape, data at its resolution,
output paths that never overwrite an input, and writing a compressed model.

Used by :mod:`compress.cli`; library callers with their own models use :mod:`compress.pipeline`
and :func:`compress.serialization.save_pruned` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from compress.checkpoint import LoadedModel
from nas.data import Dataset
from nas.errors import UserError
from nas.files import atomic_write_bytes, check_writable_directory
from search_spaces import Space

__all__ = [
    "COMPRESS_OUTPUTS",
    "DEFAULT_RESOLUTION",
    "check_report_directory",
    "load_data",
    "model_channels",
    "model_resolution",
    "output_path",
    "save_model",
]

logger = logging.getLogger(__name__)
# The input size of a model that does not record its own.
DEFAULT_RESOLUTION = 32
# The files nas compress writes in its report directory.
COMPRESS_OUTPUTS = (
    "pruned.safetensors",
    "pruned.safetensors.json",
    "pruned.onnx",
    "int8.onnx",
    "report.json",
    "report.md",
    "report.png",
)


def model_channels(loaded: LoadedModel) -> int | None:
    """The input channels of a model: recorded with it, else its first convolution's."""
    if loaded.input_shape is not None:
        return loaded.input_shape[0]
    if loaded.module is None:
        return None
    for module in loaded.module.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    return None


def model_resolution(loaded: LoadedModel, requested: int | None) -> int:
    """``requested``, else the model's own input size, else :data:`DEFAULT_RESOLUTION`; an
    ONNX graph refuses another size than its own."""
    own = loaded.input_shape[-1] if loaded.input_shape is not None else None
    if requested is not None and own is not None and requested != own and loaded.kind == "onnx":
        raise UserError(
            f"{loaded.path} takes {own}x{own} inputs; --resolution {requested} does not fit"
        )
    return requested or own or DEFAULT_RESOLUTION


def load_data(
    source: str, resolution: int, seed: int, channels: int | None, space: Space | None = None
) -> Dataset:
    """The data set ``source`` at ``resolution``, grey or colour to match ``channels``; stored
    at the space's largest resolution when a space is given (so subnets can resize down)."""
    from nas.data import load_dataset

    grayscale = None if channels not in (1, 3) else channels == 1
    stored = resolution if space is None else max(resolution, *space.resolution.values)
    dataset = load_dataset(source, resolution=stored, seed=seed, grayscale=grayscale)
    return dataset.at_resolution(resolution)


def output_path(requested: str | None, source: Path, suffix: str, inputs: Sequence[Path]) -> Path:
    """The output path (default: ``source`` with ``suffix``); refused when it (or its
    .json/.onnx companions) is an input file."""
    out = Path(requested) if requested else source.with_name(source.stem + suffix)
    written = {
        p.resolve() for p in (out, out.with_name(out.name + ".json"), out.with_suffix(".onnx"))
    }
    for path in inputs:
        for candidate in (path, path.with_name(path.name + ".json")):
            if candidate.exists() and candidate.resolve() in written:
                raise UserError(
                    f"--out {out} would overwrite the input {candidate}; choose another"
                )
    check_writable_directory(out.parent)
    return out


def check_report_directory(out: Path, source: Path) -> None:
    """Refuse a report directory that is ``source`` or whose files would overwrite it."""
    written = {(out / name).resolve() for name in COMPRESS_OUTPUTS}
    for candidate in (source, source.with_name(source.name + ".json")):
        if out.resolve() == candidate.resolve() or (
            candidate.exists() and candidate.resolve() in written
        ):
            raise UserError(f"--out {out} would overwrite the input {candidate}; choose another")
    check_writable_directory(out)


def save_model(
    model: nn.Module, out: Path, loaded: LoadedModel, shape: tuple[int, int, int]
) -> list[Path]:
    """Write ``model`` (compressed from ``loaded``) as reloadable weights at ``out`` when its
    factory or arch is known, and as ONNX beside it; returns the files written."""
    from compress.serialization import save_pruned
    from nas.measure import export_onnx

    written = []
    if loaded.factory is not None:
        written.append(save_pruned(model, out, factory=loaded.factory, input_shape=shape))
    elif loaded.space is not None and loaded.arch is not None:
        written.append(
            save_pruned(model, out, arch=loaded.arch, space=loaded.space, input_shape=shape)
        )
    else:
        logger.warning(
            "%s has no factory or arch, so only the ONNX graph is written; pass --factory to "
            "also get reloadable weights",
            loaded.path,
        )
    onnx_path = out.with_suffix(".onnx")
    example = torch.zeros(1, *shape)
    written.append(atomic_write_bytes(onnx_path, export_onnx(model, example)))
    return written
