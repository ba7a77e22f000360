"""Memory layout of training: NHWC (``channels_last``) or the usual NCHW.

On CPU, mkldnn's depthwise-convolution backward is 2-3x faster on NHWC tensors, which makes a
sandwich step of the default space about 1.7x faster (README "Supernet training"). The layout
changes how a step computes, not what it computes (up to float rounding).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

__all__ = ["as_layout", "batch_in_layout"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def as_layout(module: ModuleT, channels_last: bool) -> ModuleT:
    """``module`` with its 4-d weights in NHWC (``channels_last``) or NCHW, converted in place.

    Lazy modules, whose weights have no shape yet, are left as they are.
    """
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in module.parameters()):
        return module
    layout = torch.channels_last if channels_last else torch.contiguous_format
    module.to(memory_format=layout)  # type: ignore[call-overload]
    return module


def batch_in_layout(batch: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-d image batch in NHWC when ``channels_last``; anything else unchanged."""
    if channels_last and batch.dim() == 4:
        return batch.contiguous(memory_format=torch.channels_last)
    return batch
