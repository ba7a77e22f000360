"""Counting what compression changes: parameters, multiply-adds and bytes.

Latency is not timed here: :mod:`nas.measure` is the one place that times things.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from nas.errors import UserError

__all__ = ["count_flops", "count_params", "parameter_bytes"]


def count_params(model: nn.Module) -> int:
    """Number of (distinct) parameters."""
    seen: set[int] = set()
    total = 0
    for parameter in model.parameters():
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return total


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers as stored (float32: four per value)."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def count_flops(model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> int:
    """Multiply-adds of one forward pass on ``example_inputs`` (the project's FLOPs unit)."""
    example = example_inputs if isinstance(example_inputs, torch.Tensor) else list(example_inputs)
    if isinstance(example, list) and len(example) == 1:
        example = example[0]
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            macs, _ = tp.utils.count_ops_and_params(model, example)
    except Exception as exc:  # the user's forward may raise anything
        raise UserError(f"cannot count the FLOPs of {type(model).__name__}: {exc}") from None
    finally:
        model.train(was_training)
    return int(macs)
