from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces as ss
from nas.supernet.static import build_network


def _count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-adds of convolutions and linear layers, counted on the running module."""
    total = 0

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups
            per_output *= module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", ss.SPACE_NAMES)
def test_analytical_counts_match_the_built_module(name: str) -> None:
    space = ss.get_space(name)
    rng = np.random.default_rng(0)
    count = 3 if name == "mbv3-imagenet" else 12
    archs = [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(count)]
    for arch in archs:
        network = build_network(space, arch)
        shape = (space.in_channels, arch.resolution, arch.resolution)
        params = sum(p.numel() for p in network.parameters())
        macs = _count_macs(network, shape)
        assert abs(params - space.params(arch)) <= 0.01 * params
        assert abs(macs - space.flops(arch)) <= 0.01 * macs
        assert params == space.params(arch) and macs == space.flops(arch)  # exact, in fact


def test_network_output_shape_and_residuals() -> None:
    space = ss.get_space("tiny")
    arch = space.largest()
    network = build_network(space, arch)
    out = network(torch.randn(2, 1, arch.resolution, arch.resolution))
    assert out.shape == (2, space.num_classes)
    shapes = ss.layer_shapes(space, arch)
    residuals = [block.residual for block in network.blocks]  # type: ignore[attr-defined]
    assert residuals == [b.residual for b in shapes.blocks]
    assert any(residuals) and not all(residuals)


def test_network_rejects_an_arch_outside_the_space() -> None:
    space = ss.get_space("tiny")
    arch = ss.get_space("mbv3-small").largest()
    with pytest.raises(ss.ArchError):
        build_network(space, arch)
