"""Accuracy of subnets taken from a supernet, after batch-norm recalibration.

Running statistics inherited from the supernet are those of whichever subnets it last trained,
which are wrong for most others (small subnets most of all). :func:`evaluate` therefore takes
the subnet out of the supernet as a static network, re-estimates its batch-norm statistics on a
few training batches, and only then measures accuracy; the supernet itself is untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from nas.data import Dataset, resize_images
from nas.supernet.fake_quant import simulate_bf16, simulate_int8
from search_spaces import Arch, Space, int8_blocks, precision_blocks

__all__ = [
    "accuracy",
    "arch_space",
    "calibration_images",
    "cross_entropy",
    "evaluate",
    "recalibrate_batch_norm",
    "recalibrated",
]

_SPLITS = ("train", "val", "test")


def _batches(x: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [x[start : start + batch_size] for start in range(0, len(x), batch_size)]


@torch.no_grad()
def recalibrate_batch_norm(
    network: nn.Module,
    images: np.ndarray,
    *,
    batch_size: int = 100,
    device: torch.device | str = "cpu",
) -> None:
    """Re-estimate every batch norm's running statistics as an exact average over ``images``."""
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    was_training = network.training
    network.eval()
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative moving average: every batch counts equally
        module.train()
    try:
        for batch in _batches(images, batch_size):
            network(torch.as_tensor(batch, device=device))
    finally:
        for module, (momentum, training) in zip(norms, saved, strict=True):
            module.momentum = momentum
            module.train(training)
        network.train(was_training)


@torch.no_grad()
def _mean_over_images(
    network: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    total: Callable[[torch.Tensor, torch.Tensor], float],
    batch_size: int,
    device: torch.device | str,
) -> float:
    """``total(logits, labels)`` summed over batches of ``network``'s outputs in eval mode,
    divided by the number of images; the network's mode is restored."""
    was_training = network.training
    network.eval()
    summed = 0.0
    try:
        for start in range(0, len(x), batch_size):
            logits = network(torch.as_tensor(x[start : start + batch_size], device=device))
            summed += total(logits, torch.as_tensor(y[start : start + batch_size], device=device))
    finally:
        network.train(was_training)
    return summed / max(len(x), 1)


def accuracy(
    network: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> float:
    """Top-1 accuracy of ``network`` (in eval mode) on ``x``/``y``."""

    def correct(logits: torch.Tensor, labels: torch.Tensor) -> float:
        return float((logits.argmax(dim=1) == labels).sum())

    return _mean_over_images(network, x, y, correct, batch_size, device)


def cross_entropy(
    network: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> float:
    """Mean negative log-likelihood of the labels under ``network`` (in eval mode) on ``x``/``y``:
    a finer measure than accuracy where many networks classify the same images right."""

    def summed(logits: torch.Tensor, labels: torch.Tensor) -> float:
        return float(functional.cross_entropy(logits, labels, reduction="sum"))

    return _mean_over_images(network, x, y, summed, batch_size, device)


def calibration_images(dataset: Dataset, resolution: int, size: int, seed: int = 0) -> np.ndarray:
    """A seeded random subset of ``size`` training images (in their order in the split),
    resized to ``resolution``: what batch norm and int8 ranges are calibrated on."""
    rng = np.random.default_rng(seed)
    count = min(size, len(dataset.x_train))
    chosen = rng.choice(len(dataset.x_train), size=count, replace=False)
    return resize_images(dataset.x_train[np.sort(chosen)], resolution)


def arch_space(supernet: nn.Module) -> Space:
    """The space of a :class:`nas.supernet.Supernet`."""
    space = getattr(supernet, "space", None)
    if not isinstance(space, Space):
        raise TypeError(f"expected a Supernet, got {type(supernet).__name__}")
    return space


def recalibrated(
    supernet: nn.Module,
    arch: Arch,
    dataset: Dataset,
    *,
    calibration_size: int = 500,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """``arch`` taken out of ``supernet`` (a :class:`nas.supernet.Supernet`) as a static network,
    its batch norm re-estimated on a seeded random subset of ``calibration_size`` training
    images resized to the arch's resolution; its int8 stages, if any, then simulated
    (:func:`nas.supernet.fake_quant.simulate_int8`, ranges calibrated on the same images), and
    its bf16 stages (:func:`nas.supernet.fake_quant.simulate_bf16`)."""
    network: nn.Module = supernet.extract(arch)  # type: ignore[operator]
    calibration = calibration_images(dataset, arch.resolution, calibration_size, seed)
    recalibrate_batch_norm(network, calibration, device=device)
    space = arch_space(supernet)
    int8 = int8_blocks(space, arch)
    if int8:
        network = simulate_int8(network, int8, calibration, device=device)  # type: ignore[arg-type]
    bf16 = precision_blocks(space, arch, "bf16")
    if bf16:
        network = simulate_bf16(network, bf16)  # type: ignore[arg-type]
    return network


def evaluate(
    supernet: nn.Module,
    arch: Arch,
    dataset: Dataset,
    *,
    split: str = "val",
    calibration_size: int = 500,
    seed: int = 0,
    device: torch.device | str = "cpu",
    limit: int | None = None,
) -> float:
    """Accuracy of ``arch`` on ``split`` (its first ``limit`` images when given) after
    recalibrating its batch norm on training images (:func:`recalibrated`); images are resized
    to the arch's resolution."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    network = recalibrated(
        supernet, arch, dataset, calibration_size=calibration_size, seed=seed, device=device
    )
    x, y = getattr(dataset, f"x_{split}")[:limit], getattr(dataset, f"y_{split}")[:limit]
    return accuracy(network, resize_images(x, arch.resolution), y, device=device)
