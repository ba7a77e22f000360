"""Training one static network: the shared loop for stand-alone training, fine-tuning and
distillation (``compress`` passes its own loss)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from nas.data import Dataset, batches, epoch_images, resize_images
from nas.supernet.static import build_network
from nas.train.layout import as_layout, batch_in_layout
from search_spaces import Arch, Space

__all__ = ["Loss", "Recipe", "train_from_scratch", "train_network"]

logger = logging.getLogger(__name__)
# loss(network, images, labels) -> scalar tensor
Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def train_network(
    network: nn.Module,
    dataset: Dataset,
    *,
    epochs: int,
    lr: float = 0.1,
    batch_size: int = 64,
    resolution: int | None = None,
    label_smoothing: float = 0.1,
    weight_decay: float = 5e-5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    loss: Loss | None = None,
    progress: Callable[[int, int], None] | None = None,
    channels_last: bool = True,
    images_per_epoch: int | None = None,
) -> nn.Module:
    """Train ``network`` from its current weights with SGD (Nesterov momentum 0.9) and a cosine
    learning rate over all steps; images are resized to ``resolution`` when given.

    ``loss`` replaces the default cross-entropy (with ``label_smoothing``); ``progress(done,
    total)`` is called after every step. With ``channels_last`` the network's weights and the
    images are NHWC while it trains (faster depthwise convolutions on CPU); the network is
    returned in eval mode, its weights contiguous again. ``images_per_epoch`` draws that many
    training images afresh every epoch (seeded), as supernet training does; None uses them all.
    """
    x_train = dataset.x_train if resolution is None else resize_images(dataset.x_train, resolution)
    torch.manual_seed(seed)
    if channels_last:  # otherwise the network keeps whatever layout it came in
        as_layout(network, channels_last=True)
    parameters = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        parameters, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )

    def cross_entropy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(model(images), labels, label_smoothing=label_smoothing)

    compute = loss or cross_entropy
    per_epoch = len(x_train) if images_per_epoch is None else min(images_per_epoch, len(x_train))
    total = math.ceil(per_epoch / batch_size) * epochs
    rng = np.random.default_rng(seed)
    step = 0
    network.train()
    for epoch in range(epochs):
        losses = []
        seed_here = int(rng.integers(2**31))
        x_epoch, y_epoch = epoch_images(
            x_train, dataset.y_train, images_per_epoch, np.random.default_rng([seed, epoch])
        )
        for images, labels in batches(x_epoch, y_epoch, batch_size=batch_size, seed=seed_here):
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / max(total, 1)))
            optimizer.zero_grad(set_to_none=True)
            batch = batch_in_layout(torch.as_tensor(images, device=device), channels_last)
            value = compute(network, batch, torch.as_tensor(labels, device=device))
            value.backward()
            optimizer.step()
            losses.append(float(value.detach()))
            step += 1
            if progress is not None:
                progress(step, total)
        logger.info("epoch %d/%d: loss %.4f", epoch + 1, epochs, float(np.mean(losses)))
    if channels_last:
        as_layout(network, channels_last=False)
    return network.eval()


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How a subnet is trained from scratch: the supernet's own recipe when it comes from
    :meth:`from_checkpoint` (same epochs, images per epoch, batch, peak learning rate, label
    smoothing and weight decay), so stand-alone and inherited accuracies compare fairly."""

    epochs: int
    lr: float = 0.1
    batch_size: int = 64
    images_per_epoch: int | None = None
    label_smoothing: float = 0.1
    weight_decay: float = 5e-5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(
                f"a recipe needs epochs >= 1, batch_size >= 1 and lr > 0, got {self.epochs}, "
                f"{self.batch_size} and {self.lr}"
            )

    @classmethod
    def from_checkpoint(cls, metadata: Mapping[str, Any]) -> Recipe:
        """The recipe of the supernet whose ``checkpoint.json`` metadata is given."""
        phases = metadata["schedule"]["phases"]
        config = metadata["config"]
        return cls(
            epochs=sum(int(phase["epochs"]) for phase in phases),
            lr=float(phases[0]["lr"]),
            batch_size=int(config["batch_size"]),
            images_per_epoch=config.get("images_per_epoch"),
            label_smoothing=float(config["label_smoothing"]),
            weight_decay=float(config["weight_decay"]),
        )


def train_from_scratch(
    space: Space,
    arch: Arch,
    dataset: Dataset,
    recipe: Recipe,
    *,
    seed: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """A new network for ``arch`` (initialised from ``seed``) trained with ``recipe`` at the
    arch's resolution; returned in eval mode."""
    torch.manual_seed(seed)
    network = build_network(space, arch).to(device)
    return train_network(
        network,
        dataset,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        resolution=arch.resolution,
        label_smoothing=recipe.label_smoothing,
        weight_decay=recipe.weight_decay,
        seed=seed,
        device=device,
        images_per_epoch=recipe.images_per_epoch,
    )
