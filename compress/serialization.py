"""Saving pruned (or any compressed) models without pickling: safetensors plus a graph JSON.

:func:`save_pruned` writes the weights to ``PATH`` (safetensors) and a description to
``PATH.json``: how to build the original model (a factory ``package.module:function``, or the
search space and arch of one of our subnets) and, for every convolution, normalisation and
linear layer, its constructor attributes after pruning (channels, kernel, stride, padding,
groups, bias; ``num_features``; ``in_features``/``out_features``). :func:`load_pruned` builds
the original model, reshapes those layers as described, and loads the weights strictly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.checkpoint import arch_of_card, load_state_dict_strict, read_card, space_of_card
from compress.factories import build_from_factory, factory_name
from nas.errors import UserError
from nas.files import atomic_write_bytes, atomic_write_json
from search_spaces import Arch, Space, get_space, space_to_dict

__all__ = ["FORMAT", "describe_layers", "load_pruned", "rebuild", "save_pruned"]

logger = logging.getLogger(__name__)

FORMAT = "pruned"
VERSION = 1

# Constructor attributes recorded per layer type; the int/tuple ones are restored on load.
_CONV = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "padding_mode",
    "output_padding",
)
_ATTRIBUTES: dict[type[nn.Module], tuple[str, ...]] = {
    nn.modules.conv._ConvNd: _CONV,
    nn.modules.batchnorm._BatchNorm: (
        "num_features",
        "eps",
        "momentum",
        "affine",
        "track_running_stats",
    ),
    nn.Linear: ("in_features", "out_features"),
    nn.GroupNorm: ("num_groups", "num_channels", "eps", "affine"),
    nn.LayerNorm: ("normalized_shape", "eps", "elementwise_affine"),
    nn.PReLU: ("num_parameters",),
}
# Attributes that change with pruning and that forward passes may read.
_RESTORED = {
    "in_channels",
    "out_channels",
    "groups",
    "num_features",
    "in_features",
    "out_features",
    "num_groups",
    "num_channels",
    "normalized_shape",
    "num_parameters",
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def describe_layers(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Constructor attributes of every conv, norm and linear layer, by module name."""
    layers: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        for kind, attributes in _ATTRIBUTES.items():
            if isinstance(module, kind):
                entry: dict[str, Any] = {"type": type(module).__name__}
                for attribute in attributes:
                    if hasattr(module, attribute):
                        entry[attribute] = _plain(getattr(module, attribute))
                if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear, nn.LayerNorm)):
                    entry["bias"] = getattr(module, "bias", None) is not None
                layers[name] = entry
                break
    return layers


def _set_tensor(model: nn.Module, key: str, tensor: torch.Tensor) -> None:
    owner_name, _, attribute = key.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    current = getattr(owner, attribute)
    if isinstance(current, nn.Parameter):
        replacement = nn.Parameter(torch.empty_like(tensor), requires_grad=current.requires_grad)
        setattr(owner, attribute, replacement)
    elif isinstance(current, torch.Tensor):
        owner.register_buffer(attribute, torch.empty_like(tensor))


def rebuild(
    model: nn.Module,
    layers: dict[str, dict[str, Any]],
    shapes: dict[str, torch.Tensor],
    source: str,
) -> nn.Module:
    """Reshape the layers of a freshly built ``model`` to the described, pruned ones."""
    for name, entry in layers.items():
        try:
            module = model.get_submodule(name) if name else model
        except AttributeError:
            raise UserError(
                f"{source}: the model has no layer {name!r}; the factory builds another model"
            ) from None
        if type(module).__name__ != entry.get("type"):
            raise UserError(
                f"{source}: layer {name!r} is a {type(module).__name__} in the rebuilt model but "
                f"a {entry.get('type')} in the description; the factory builds another model"
            )
        for attribute, value in entry.items():
            if attribute in _RESTORED and hasattr(module, attribute):
                setattr(module, attribute, tuple(value) if isinstance(value, list) else value)
    expected = model.state_dict()
    for key, tensor in shapes.items():
        if key in expected and expected[key].shape != tensor.shape:
            _set_tensor(model, key, tensor)
    return model


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def save_pruned(
    model: nn.Module,
    path: str | Path,
    *,
    factory: str | Callable[[], Any] | None = None,
    arch: Arch | None = None,
    space: Space | str | None = None,
    input_shape: tuple[int, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights to ``path`` (safetensors) and its description to ``path.json``.

    Give ``factory`` (what builds the unpruned model) or ``arch`` with its ``space`` (one of our
    subnets). The description is checked by rebuilding the model before anything is written.
    """
    from safetensors.torch import save as save_tensors

    target = Path(path)
    if (factory is None) == (arch is None):
        raise UserError("save_pruned needs exactly one of factory or arch (with its space)")
    description: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if factory is not None:
        description["factory"] = factory_name(factory)
    else:
        if space is None:
            raise UserError("save_pruned needs the space of the arch")
        space = get_space(space) if isinstance(space, str) else space
        assert arch is not None
        description["space"] = space.name
        description["space_definition"] = space_to_dict(space)
        description["arch"] = arch.to_dict()
    description["layers"] = describe_layers(model)
    description["params"] = int(sum(p.numel() for p in model.parameters()))
    if input_shape is not None:
        description["input_shape"] = [int(v) for v in input_shape]
    description.update(extra or {})
    weights = _weights(model)
    check = _build_original(description, target, None)
    rebuild(check, description["layers"], weights, str(target))
    load_state_dict_strict(check, weights, f"{target} (check before saving)")
    atomic_write_bytes(target, save_tensors(weights, metadata={"format": FORMAT}))
    atomic_write_json(target.with_name(target.name + ".json"), description)
    logger.info("saved %s (%d parameters) and its description", target, description["params"])
    return target


def _build_original(
    description: dict[str, Any], source: Path, factory: str | Callable[[], Any] | None
) -> nn.Module:
    if factory is not None:
        if isinstance(factory, str):
            return build_from_factory(factory)
        model = factory()
        if not isinstance(model, nn.Module):
            raise UserError(f"factory {factory!r} returned {type(model).__name__}, not a module")
        return model
    if "arch" in description:
        from nas.supernet.static import build_network

        return build_network(space_of_card(description, source), arch_of_card(description, source))
    if isinstance(description.get("factory"), str):
        return build_from_factory(description["factory"])
    raise UserError(f"{source}: the description names neither a factory nor an arch")


def load_pruned(
    path: str | Path,
    factory: str | Callable[[], Any] | None = None,
) -> nn.Module:
    """Rebuild a model written by :func:`save_pruned` (in eval mode).

    The factory or arch recorded in the description is used unless ``factory`` is given.
    """
    from compress.checkpoint import _read_safetensors  # shared reader with one-line errors

    file = Path(path)
    if not file.is_file():
        raise UserError(f"{file} does not exist")
    description = read_card(file)
    if description is None or description.get("format") != FORMAT:
        raise UserError(
            f"{file} has no pruned-model description {file.name}.json next to it; "
            "save it with save_pruned"
        )
    layers = description.get("layers")
    if not isinstance(layers, dict):
        raise UserError(f"{file}.json: the description has no 'layers'")
    weights = _read_safetensors(file)
    model = _build_original(description, file, factory)
    rebuild(model, layers, weights, str(file))
    load_state_dict_strict(model, weights, str(file))
    return model.eval()
