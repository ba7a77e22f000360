"""Data-parallel training's view of a step: which slice of the batch a worker trains, and how
the workers' gradients, losses and batch-norm statistics are combined."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["Shard", "Step"]


@dataclass(frozen=True)
class Shard:
    """This process's part of data-parallel training: worker ``rank`` of ``world_size`` trains
    on its contiguous slice of every batch (every worker draws the same batches and subnets),
    and ``reduce(model, loss, loss_share, grad_share)`` sums every worker's gradients (each
    times ``grad_share``) and loss (times ``loss_share``, the worker's part of the batch) and
    returns the batch's loss. With ``batch_sum`` (a differentiable sum of a tensor over the
    workers) batch norm normalises with the statistics of the whole batch and each worker
    scales its loss by its share before the backward pass, so a step is the one a single
    process takes on the whole batch; without it, batch norm uses each worker's own slice, as
    plain DDP does."""

    rank: int
    world_size: int
    reduce: Callable[[nn.Module, float, float, float], float]
    batch_sum: Callable[[torch.Tensor], torch.Tensor] | None = None

    def split(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, Step]:
        """This worker's images and labels of a batch, and how :func:`_train_step` runs on them."""
        start = len(labels) * self.rank // self.world_size
        stop = len(labels) * (self.rank + 1) // self.world_size
        share = (stop - start) / max(len(labels), 1)
        # A batch smaller than the workers leaves some without images: they cannot join the
        # batch-norm sums of layers they do not run, so that step keeps local statistics.
        if self.batch_sum is not None and self.world_size > 1 and len(labels) >= self.world_size:
            sync = functools.partial(_weighted_reduce, self.reduce, share, 1.0)
            return images[start:stop], labels[start:stop], Step(sync, share, self.batch_sum)
        sync = functools.partial(_weighted_reduce, self.reduce, share, share)
        return images[start:stop], labels[start:stop], Step(sync)


@dataclass(frozen=True)
class Step:
    """How one worker's part of a data-parallel step runs: ``sync`` combines the workers'
    gradients and losses after the backward passes; ``loss_scale`` multiplies the loss before
    them; ``batch_sum``, when set, synchronises batch norm."""

    sync: Callable[[nn.Module, float], float]
    loss_scale: float = 1.0
    batch_sum: Callable[[torch.Tensor], torch.Tensor] | None = None


def _weighted_reduce(
    reduce: Callable[[nn.Module, float, float, float], float],
    loss_share: float,
    grad_share: float,
    model: nn.Module,
    loss: float,
) -> float:
    return reduce(model, loss, loss_share, grad_share)
