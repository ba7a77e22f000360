"""Calibration images without data: synthesized from a model's batch-norm statistics (ZeroQ).

Every batch norm layer remembers the mean and variance of what it saw in training. Starting
from noise, :func:`batch_norm_images` adjusts a batch of images by gradient descent until the
statistics each batch norm layer sees on them match the ones it remembers (ZeroQ's "distilled
data", Cai et al., 2020). int8 activation ranges calibrated on such images are meant to be those
of the data the model was trained on, when no training images are at hand (``nas quantize
--calib batch-norm``). ``experiments/calibration.py`` measures them against training images
and plain noise.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from nas.errors import UserError

__all__ = ["BATCH_NORM_DATA", "batch_norm_images"]

logger = logging.getLogger(__name__)

# The ``--calib`` value that asks for images synthesized from batch norm statistics.
BATCH_NORM_DATA = "batch-norm"

_EPS = 1e-5


def _statistics_loss(
    norms: list[nn.modules.batchnorm._BatchNorm], losses: list[torch.Tensor]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Hooks that append, for every layer in ``norms``, the distance between the batch
    statistics of its input and its running statistics to ``losses``."""

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(module, nn.modules.batchnorm._BatchNorm)
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean = x.mean(dim=dims)
        std = torch.sqrt(x.var(dim=dims, unbiased=False) + _EPS)
        target_mean = torch.as_tensor(module.running_mean)
        target_std = torch.sqrt(torch.as_tensor(module.running_var) + _EPS)
        losses.append(
            torch.linalg.vector_norm(mean - target_mean)
            + torch.linalg.vector_norm(std - target_std)
        )

    return [m.register_forward_pre_hook(hook) for m in norms]


def batch_norm_images(
    model: nn.Module,
    shape: tuple[int, int, int],
    *,
    count: int = 256,
    steps: int = 100,
    lr: float = 0.1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``count`` float32 images of ``shape`` (C, H, W) whose batch statistics at every batch norm
    layer of ``model`` approach its running mean and standard deviation, after ``steps`` Adam
    steps from seeded standard-normal noise; ``model`` is left unchanged. ``progress(done,
    total)`` is called after every step."""
    if count < 2 or steps < 1:
        raise UserError(f"need at least 2 images and 1 step, got {count} and {steps}")
    network = copy.deepcopy(model).eval()
    norms = [
        m
        for m in network.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.running_mean is not None
        and m.running_var is not None
    ]
    if not norms:
        raise UserError(
            f"{type(model).__name__} has no batch norm statistics to synthesize calibration "
            "images from; give calibration images with --calib DATA"
        )
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn((count, *shape), generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([images], lr=lr)
    losses: list[torch.Tensor] = []
    handles = _statistics_loss(norms, losses)
    try:
        for step in range(steps):
            losses.clear()
            optimizer.zero_grad()
            network(images)
            loss = torch.stack(losses).sum()
            loss.backward()
            optimizer.step()
            if step in (0, steps - 1):
                logger.info("batch-norm images, step %d: statistics distance %.4f", step, loss)
            if progress is not None:
                progress(step + 1, steps)
    finally:
        for handle in handles:
            handle.remove()
    return images.detach().numpy().astype(np.float32)
