"""What the compression commands share: a loaded model's input shape, data at its resolution,
output paths that never overwrite an input, and writing a compressed model.

A model's input shape is ``--input-shape C,H,W``, else the shape recorded with it, else its
first convolution's channels at ``--resolution``. Images come from the data set when its
(square, grey or colour) images fit that shape; otherwise a one-line error says so, and
``--data random`` (:data:`RANDOM_DATA`) gives random images of any shape, only when asked.

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
from compress.images import Data, random_images
from nas.data import Dataset
from nas.errors import UserError
from nas.files import atomic_write_bytes, check_writable_directory
from search_spaces import Space

__all__ = [
    "COMPRESS_OUTPUTS",
    "DEFAULT_RESOLUTION",
    "RANDOM_DATA",
    "check_report_directory",
    "load_data",
    "load_model_data",
    "model_channels",
    "model_input_shape",
    "model_resolution",
    "output_path",
    "parse_input_shape",
    "save_model",
]

logger = logging.getLogger(__name__)
# The input size of a model that does not record its own.
DEFAULT_RESOLUTION = 32
# The --data value that asks for random images of the model's input shape (no labels).
RANDOM_DATA = "random"
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


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3,32,32"`` (or ``3x32x32``) as ``(3, 32, 32)``; one-line errors otherwise."""
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise UserError(
            f"--input-shape {text!r} must be three positive integers C,H,W (e.g. 3,32,32)"
        )
    return (values[0], values[1], values[2])


def model_input_shape(
    loaded: LoadedModel, input_shape: str | None, resolution: int | None
) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the model's inputs: ``input_shape`` (``"C,H,W"``), else the shape
    recorded with the model (resized to ``resolution``), else its first convolution's channels
    at ``resolution`` (default :data:`DEFAULT_RESOLUTION`); None when the channels are unknown."""
    own = loaded.input_shape
    if input_shape is not None:
        shape = parse_input_shape(input_shape)
        if own is not None and loaded.kind == "onnx" and shape != own:
            raise UserError(
                f"{loaded.path} takes {'x'.join(map(str, own))} inputs; --input-shape "
                f"{input_shape} does not fit"
            )
        if resolution is not None and shape[1:] != (resolution, resolution):
            raise UserError(
                f"--resolution {resolution} contradicts --input-shape {input_shape}; give one"
            )
        return shape
    size = model_resolution(loaded, resolution)
    if own is not None:
        return own if resolution is None else (own[0], size, size)
    channels = model_channels(loaded)
    return None if channels is None else (channels, size, size)


def load_model_data(
    source: str,
    shape: tuple[int, int, int] | None,
    seed: int,
    space: Space | None = None,
    *,
    resolution: int = DEFAULT_RESOLUTION,
) -> Data:
    """Images for a model taking ``shape`` inputs: the data set ``source`` when its images fit
    (square; grey and colour are converted), random images for :data:`RANDOM_DATA`, else a
    :class:`UserError` saying how to fix it. ``shape`` None (channels unknown) takes the data
    set's own channels at ``resolution``."""
    if source == RANDOM_DATA:
        if shape is None:
            raise UserError(
                f"--data {RANDOM_DATA} needs the model's input shape; pass --input-shape C,H,W"
            )
        logger.warning("using random images: accuracy cannot be measured on them")
        return random_images(shape, seed=seed)
    if shape is None:
        return load_data(source, resolution, seed, None, space)
    channels, height, width = shape
    if height != width or channels not in (1, 3):
        raise UserError(
            f"the data set {source} has square grey or colour images, but the model takes "
            f"{channels}x{height}x{width} inputs; give a data set of that shape, or --data "
            f"{RANDOM_DATA} for random images (then accuracy is not measured)"
        )
    return load_data(source, height, seed, channels, space)


def output_path(requested: str | None, source: Path, suffix: str, inputs: Sequence[Path]) -> Path:
    """The output path (default: ``source`` with ``suffix``); refused when it (or its
    .json/.onnx companions) is an input file."""
    out = Path(requested) if requested else source.with_name(source.stem + suffix)
    companions = (
        out,
        out.with_name(out.name + ".json"),
        out.with_suffix(".onnx"),
        out.with_suffix(".bin"),  # an OpenVINO IR's weights
        out.with_suffix(".report.json"),
    )
    written = {p.resolve() for p in companions}
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
    model: nn.Module, out: Path, loaded: LoadedModel, shape: tuple[int, ...]
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
