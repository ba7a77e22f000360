"""Training one static network alone: the baseline that supernet weights are compared with."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from nas.data import Dataset, batches, resize_images

__all__ = ["train_network"]


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
) -> nn.Module:
    """Train ``network`` from its current weights with SGD (Nesterov momentum 0.9) and a cosine
    learning rate over all steps; images are resized to ``resolution`` when given."""
    x_train = dataset.x_train if resolution is None else resize_images(dataset.x_train, resolution)
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(
        network.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    steps = math.ceil(len(x_train) / batch_size) * epochs
    rng = np.random.default_rng(seed)
    step = 0
    network.train()
    for _ in range(epochs):
        order = batches(
            x_train, dataset.y_train, batch_size=batch_size, seed=int(rng.integers(2**31))
        )
        for images, labels in order:
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
            optimizer.zero_grad(set_to_none=True)
            logits = network(torch.as_tensor(images, device=device))
            target = torch.as_tensor(labels, device=device)
            functional.cross_entropy(logits, target, label_smoothing=label_smoothing).backward()
            optimizer.step()
            step += 1
    return network.eval()
