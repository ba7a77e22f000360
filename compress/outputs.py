"""Model outputs of any structure: one tensor, or tuples, lists and dicts of tensors.

Compression must not assume ``(batch, classes)`` logits. :func:`output_leaves` names every
tensor of an output (``"0"``, ``"logits"``, ``"heads.1"``); :func:`describe_output` prints
their shapes; :func:`output_distillation_loss` matches a student's outputs to a teacher's leaf
by leaf (mean squared error), which needs no labels; :func:`output_energy` reduces any output to
a scalar (for Taylor importance without a task loss); :func:`accuracy_not_applicable` says why
top-1 accuracy does not apply to an output, or None when it does; :func:`producing_layers`
finds the layers whose output channels reach a model output, which pruning must keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from nas.errors import UserError

__all__ = [
    "accuracy_not_applicable",
    "describe_output",
    "is_class_logits",
    "output_distillation_loss",
    "output_energy",
    "output_leaves",
    "output_shapes",
    "producing_layers",
]


def _collect(value: Any, path: str, leaves: dict[str, torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        leaves[path or "output"] = value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, f"{path}.{key}" if path else str(key), leaves)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect(item, f"{path}.{index}" if path else str(index), leaves)
    else:
        where = f"output {path!r}" if path else "output"
        raise UserError(
            f"the model's {where} is a {type(value).__name__}, not a tensor: compression needs "
            "a forward that returns tensors, or tuples, lists or dicts of tensors"
        )


def output_leaves(output: Any) -> dict[str, torch.Tensor]:
    """Every tensor of ``output`` by its path (``"output"`` for a single tensor), in order."""
    leaves: dict[str, torch.Tensor] = {}
    _collect(output, "", leaves)
    if not leaves:
        raise UserError("the model's output holds no tensor; compression needs tensor outputs")
    return leaves


def _shape(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(["N", *(str(int(v)) for v in tensor.shape[1:])]) + ")"


def output_shapes(output: Any) -> dict[str, tuple[int, ...]]:
    """The shape of every output tensor by its path."""
    return {path: tuple(int(v) for v in leaf.shape) for path, leaf in output_leaves(output).items()}


def describe_output(output: Any) -> str:
    """``(N, 3, 32, 32)`` for one tensor, ``tuple: 0 (N, 10), 1 (N, 4)`` for several."""
    leaves = output_leaves(output)
    if isinstance(output, torch.Tensor):
        return _shape(output)
    kind = "dict" if isinstance(output, Mapping) else type(output).__name__
    return f"{kind}: " + ", ".join(f"{path} {_shape(leaf)}" for path, leaf in leaves.items())


def is_class_logits(output: Any, labels: torch.Tensor | None) -> bool:
    """Whether cross-entropy of ``output`` against ``labels`` is a task loss: one tensor of
    ``(N, classes, ...)`` scores and integer labels of shape ``(N, ...)`` below ``classes``."""
    if labels is None or not isinstance(output, torch.Tensor) or output.ndim < 2:
        return False
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        return False
    if tuple(labels.shape) != (output.shape[0], *output.shape[2:]):
        return False
    return labels.numel() == 0 or (
        int(labels.min()) >= 0 and int(labels.max()) < int(output.shape[1])
    )


def accuracy_not_applicable(output: Any, num_classes: int | None) -> str | None:
    """Why top-1 accuracy does not apply to ``output`` (None when it is ``(N, num_classes)``
    logits); ``num_classes`` is None when there are no labels."""
    if num_classes is None:
        return "the images have no labels"
    description = describe_output(output)
    if not isinstance(output, torch.Tensor):
        count = len(output_leaves(output))
        return f"the model has {count} outputs ({description}), not one tensor of class logits"
    if output.ndim != 2:
        return f"the model's output is {description}, not (N, {num_classes}) class logits"
    if int(output.shape[1]) != num_classes:
        return f"the model's output is {description} but the data set has {num_classes} classes"
    return None


def output_distillation_loss(student: Any, teacher: Any) -> torch.Tensor:
    """Mean over the teacher's output tensors of the mean squared error of the student's
    matching tensor (same path and shape); needs no labels."""
    student_leaves = output_leaves(student)
    teacher_leaves = output_leaves(teacher)
    if list(student_leaves) != list(teacher_leaves):
        raise UserError(
            f"student outputs {', '.join(student_leaves)} do not match teacher outputs "
            f"{', '.join(teacher_leaves)}"
        )
    losses = []
    for path, target in teacher_leaves.items():
        value = student_leaves[path]
        if not target.is_floating_point():
            continue  # integer outputs (e.g. predicted indices) carry no gradient
        if value.shape != target.shape:
            raise UserError(
                f"student output {path!r} has shape {tuple(value.shape)} but the teacher's has "
                f"{tuple(target.shape)}"
            )
        losses.append(functional.mse_loss(value, target.detach()))
    if not losses:
        raise UserError("the teacher has no floating-point output to distil")
    return torch.stack(losses).mean()


def output_energy(output: Any) -> torch.Tensor:
    """The sum over floating-point output tensors of their mean square: a scalar that any
    output reduces to, so gradients (e.g. for Taylor importance) need no labels."""
    values = [
        leaf.pow(2).mean() for leaf in output_leaves(output).values() if leaf.is_floating_point()
    ]
    if not values:
        raise UserError("the model has no floating-point output to differentiate")
    return torch.stack(values).sum()


def _floating_clones(inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return tuple(
        x.detach().clone().requires_grad_(True) if x.is_floating_point() else x for x in inputs
    )


def producing_layers(
    model: nn.Module, inputs: Sequence[torch.Tensor], layer_types: tuple[type, ...]
) -> list[nn.Module]:
    """The ``layer_types`` modules whose outputs reach a model output through autograd without
    passing through another such module (the layers that set the output's channels).

    Raises :class:`UserError` when a floating-point output does not depend on autograd at all.
    """
    by_function: dict[Any, nn.Module] = {}

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.grad_fn is not None:
            by_function.setdefault(output.grad_fn, module)

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, layer_types)]
    try:
        with torch.enable_grad():
            output = model(*_floating_clones(inputs))
    finally:
        for hook in hooks:
            hook.remove()
    found: list[nn.Module] = []
    seen: set[Any] = set()
    for path, leaf in output_leaves(output).items():
        if not leaf.is_floating_point():
            continue
        if leaf.grad_fn is None:
            raise UserError(
                f"the model's output {path!r} cannot be traced: it does not depend on the input "
                "or the weights through autograd (a .detach(), .numpy() or no_grad in forward?)"
            )
        stack = [leaf.grad_fn]
        while stack:
            function = stack.pop()
            if function is None or function in seen:
                continue
            seen.add(function)
            module = by_function.get(function)
            if module is not None:
                if all(module is not m for m in found):
                    found.append(module)
                continue
            stack.extend(after for after, _ in function.next_functions if after is not None)
    return found
