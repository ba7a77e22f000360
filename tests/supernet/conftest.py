from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from nas.supernet import Supernet
from search_spaces import Arch, Space, get_space


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny convolutions run far faster on one thread than on two contended cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> Space:
    return get_space("tiny")


@pytest.fixture(scope="module")
def small() -> Space:
    return get_space("mbv3-small")


def images(space: Space, arch: Arch, batch: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    size = (batch, space.in_channels, arch.resolution, arch.resolution)
    return torch.randn(size, generator=generator)


def randomize(net: Supernet, seed: int, archs: int = 4, batch: int = 4) -> None:
    """Perturb every weight, make kernel transforms non-identity and fill BN statistics.

    BN statistics come from train-mode forwards (momentum None) on random images of a few
    sampled subnets, then of the largest one (momentum 1, so that it is calibrated and its
    outputs stay of order one); the supernet is left in eval mode with the largest active.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in net.named_parameters():
            scale = 0.2 if "matrices" in name else 0.1
            param.add_(scale * torch.randn(param.shape, generator=generator))
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    rng = np.random.default_rng(seed)
    net.train()
    with torch.no_grad():
        for index in range(archs + 1):
            if index == archs:
                for module in net.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.momentum = 1.0
            arch = net.set_max() if index == archs else net.sample_active(rng)
            net(images(net.space, arch, batch, seed + index))
    net.eval()
    net.set_max()
