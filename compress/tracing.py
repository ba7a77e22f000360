"""What pruning needs to know of a model before it prunes: which layers run, which produce the
outputs, which torch-pruning's trace reaches, and where a failing forward pass stops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from compress.outputs import output_leaves, producing_layers
from nas.errors import UserError, first_line

__all__ = [
    "PRUNABLE",
    "as_inputs",
    "check_traced",
    "map_ignored",
    "output_layers",
    "run_locating",
    "run_recording",
]

# The layers structured pruning removes channels from.
PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


def as_inputs(example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def run_locating(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Any:
    """Run ``model``; on failure raise a UserError naming the last layer entered."""
    names = {id(m): n for n, m in model.named_modules()}
    entered: list[str] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _args: entered.append(names[id(mod)]))
        for m in model.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            return model(*inputs)
    except Exception as exc:  # any shape or type error from the user's forward
        where = f"at layer {entered[-1]!r}" if entered else "before any layer"
        raise UserError(f"{type(model).__name__} fails {where} ({first_line(exc)})") from None
    finally:
        for hook in hooks:
            hook.remove()


def run_recording(
    model: nn.Module, inputs: tuple[torch.Tensor, ...]
) -> tuple[Any, list[nn.Module]]:
    """The output of ``model`` and its convolution and linear layers in the order they ran."""
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in model.modules()
        if isinstance(m, PRUNABLE)
    ]
    try:
        output = run_locating(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return output, order


def output_layers(
    model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]
) -> list[nn.Module]:
    """The layers that produce the outputs: every convolution or linear layer whose output
    reaches a model output (each tensor of a tuple or dict) without passing through another."""
    inputs = as_inputs(example_inputs)
    was_training = model.training
    model.eval()
    try:
        output_leaves(run_locating(model, inputs))  # a failing forward names its layer
        return producing_layers(model, inputs, PRUNABLE)
    finally:
        model.train(was_training)


def map_ignored(
    original: nn.Module, pruned: nn.Module, ignored: Sequence[nn.Module | str]
) -> list[nn.Module]:
    names = {id(m): n for n, m in original.named_modules()}
    mapped = []
    for layer in ignored:
        if isinstance(layer, str):
            name = layer
        elif id(layer) in names:
            name = names[id(layer)]
        else:
            raise UserError(f"ignored layer {type(layer).__name__} is not part of the model")
        try:
            mapped.append(pruned.get_submodule(name))
        except AttributeError:
            raise UserError(f"ignored layer {name!r} is not part of the model") from None
    return mapped


def check_traced(
    model: nn.Module, graph: Any, executed: Sequence[nn.Module], ignored: Sequence[nn.Module]
) -> None:
    """Layers that run but that torch-pruning's trace does not reach cannot be pruned safely."""
    skip = {id(m) for layer in ignored for m in layer.modules()}
    traced = {id(m) for m in graph.module2node}
    ran = {id(m) for m in executed}
    for name, module in model.named_modules():
        if id(module) in ran and id(module) not in traced and id(module) not in skip:
            raise UserError(
                f"torch-pruning cannot trace layer {name!r} ({type(module).__name__}): its output "
                "does not reach the model output through autograd (a .detach(), .numpy() or "
                "no_grad in forward?); fix the forward or pass the layer in ignored_layers"
            )
